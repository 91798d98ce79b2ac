import { resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { BadRequestError } from "../errors.ts";

/** Flags that take a whole number; every other numeric flag takes a real number. */
export const INTEGER_FLAGS: ReadonlySet<string> = new Set([
  "--epochs",
  "--batch-size",
  "--max-length",
  "--seed",
  "--seeds",
  "--lora-r",
  "--top-k",
  "--max-new-tokens",
  "--per-class",
  "--faithfulness",
  "--layers",
  "--heads",
  "--kv-heads",
  "--d-model",
  "--d-ff",
  "--vocab",
  "--max-models",
  "--max-jobs",
  "--max-message",
  "--job-buffer",
]);

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A numeric option, checked: plain decimal digits (`3`, `-1`; `5e-4`, `0.5` for real-valued
 * flags), nothing `Number()` would also accept (`""` is not 0, `0x1` is not 1, no `Infinity`,
 * no surrounding spaces). An integer flag (see `INTEGER_FLAGS`) takes digits only. */
export function num(value: string | undefined, flag: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const integer = INTEGER_FLAGS.has(flag);
  if (value === "") throw new BadRequestError(`${flag} needs a value: got an empty string`, { path: flag });
  const n = Number(value);
  if (!(integer ? INTEGER : DECIMAL).test(value) || !Number.isFinite(n)) {
    throw new BadRequestError(`${flag} must be ${integer ? "a whole number in decimal digits" : "a decimal number"}, got ${JSON.stringify(value)}`, { path: flag });
  }
  if (integer && !Number.isSafeInteger(n)) throw new BadRequestError(`${flag} is too large: ${value}`, { path: flag });
  return n;
}

/** `--data` as a dataset reference: `nusax:LANG[:SPLIT]` uses $CTSFT_NUSAX_DIR, anything
 * else is a file, resolved against the working directory (the runtime may run elsewhere). */
export function dataArg(value: string): { path: string } | { nusax: { lang: string; split: "train" | "valid" | "test" } } {
  const m = /^nusax:([a-z]+)(?::(train|valid|test))?$/.exec(value);
  if (m) return { nusax: { lang: m[1] as string, split: (m[2] ?? "train") as "train" | "valid" | "test" } };
  return { path: resolve(value) };
}

/** The long flag of an option spec: `"--batch-size <B>"` → `"--batch-size"`. */
function longFlag(flags: string): string {
  return /--[a-z0-9-]+/.exec(flags)?.[0] ?? flags;
}

/** A `num`-checked value as a commander argParser: a bad value is a usage error (exit 2)
 * whose message names the flag. */
export function numberParser(flag: string): (value: string) => number {
  return (value) => {
    try {
      return num(value, flag) as number;
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** A numeric option (`num` rules), with its default shown in `--help`. */
export function numberOption(flags: string, description: string, fallback?: number): Option {
  const o = new Option(flags, description).argParser(numberParser(longFlag(flags)));
  return fallback === undefined ? o : o.default(fallback);
}

/** A required option (missing → usage error). */
export function required(flags: string, description: string): Option {
  return new Option(flags, description).makeOptionMandatory();
}

/** `L:H,L:H,...` (a head list, zero-based layer and head numbers). */
export function headsParser(flag: string): (value: string) => [number, number][] {
  return (value) => {
    const heads = value.split(",").map((lh) => {
      const m = /^(\d+):(\d+)$/.exec(lh.trim());
      if (!m) throw new InvalidArgumentError(`${flag} takes LAYER:HEAD pairs separated by commas (e.g. 0:1,2:3), got ${JSON.stringify(value)}`);
      return [Number(m[1]), Number(m[2])] as [number, number];
    });
    return heads;
  };
}

/** Whether the user gave this option (not its default). */
export function given(cmd: Command, key: string): boolean {
  const source = cmd.getOptionValueSource(key);
  return source !== undefined && source !== "default";
}

/** A problem with the command line that the CLI sees without doing any work: reported like
 * commander's own errors (message, usage line) and exit code 2. */
export function usageError(cmd: Command, message: string): never {
  cmd.error(`error: ${message}`, { exitCode: 2, code: "ctsft.usage" });
}

/** `k=v,k=v` as a record; `identity` also takes a bare `k` as `k=k` (a field read from its own column). */
export function mapParser(flag: string, example: string, identity = false): (value: string) => Record<string, string> {
  return (value) => {
    const out: Record<string, string> = {};
    for (const part of value.split(",")) {
      const m = /^([^=]+)(?:=(.+))?$/.exec(part.trim());
      if (!m || (m[2] === undefined && !identity)) throw new InvalidArgumentError(`${flag} takes ${example}, got ${JSON.stringify(value)}`);
      const key = (m[1] as string).trim();
      if (key in out) throw new InvalidArgumentError(`${flag} names ${JSON.stringify(key)} twice`);
      out[key] = (m[2] ?? key).trim();
    }
    return out;
  };
}

/** What a pair-input task adds to a command that reads data: the template, the field → column map, the label map. */
export interface TaskFlags {
  template?: string;
  fields?: Record<string, string>;
  labelMap?: Record<string, string>;
}

/** `--template` (see {@link TaskFlags}); `\n` in it stands for a newline. */
export function templateOption(fallback = "the checkpoint's, else {text}\\nSentiment:"): Option {
  return new Option("--template <T>", `prompt template: one {text} slot, or with --fields one {field} slot per field; \\n stands for a newline (default: ${fallback})`).argParser(unescapeTemplate);
}

/** `--fields F=COL,...` (see {@link TaskFlags}). */
export function fieldsOption(fallback = "the checkpoint's"): Option {
  const example = "FIELD=COLUMN pairs separated by commas (e.g. premise=sentence1,hypothesis=sentence2)";
  return new Option("--fields <F=COL,...>", `pair-input tasks: the column each template field is read from (a bare F reads column F), e.g. premise,hypothesis (default: ${fallback})`).argParser(mapParser("--fields", example, true));
}

/** `--label-map RAW=LABEL,...` (see {@link TaskFlags}). */
export function labelMapOption(): Option {
  const example = "RAW=LABEL pairs separated by commas (e.g. e=entailment,n=neutral)";
  return new Option("--label-map <RAW=LABEL,...>", "rename the data's labels, e.g. e=entailment,n=neutral,c=contradiction (labels already so named stay)").argParser(mapParser("--label-map", example));
}

/** A shell gives `\n` as two characters; a template almost always means a newline. */
function unescapeTemplate(value: string): string {
  return value.replace(/\\n/g, "\n").replace(/\\t/g, "\t");
}

/** A `--data` reference with the command's `--fields` / `--label-map` (the runtime refuses them on NusaX splits, which are single-text). */
export function taskData(value: string, f: TaskFlags): ReturnType<typeof dataArg> & Pick<TaskFlags, "fields" | "labelMap"> {
  return { ...dataArg(value), fields: f.fields, labelMap: f.labelMap };
}
