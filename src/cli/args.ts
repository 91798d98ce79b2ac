import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { BadRequestError } from "../errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with a usage line in every error. */
export function parse<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new BadRequestError(`${(e as Error).message}\nusage: ${usage}`);
  }
}

/** A required string option. */
export function need(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined || value === "") throw new BadRequestError(`${flag} is required\nusage: ${usage}`, { path: flag });
  return value;
}

/** Flags that take a whole number; every other numeric flag takes a real number. */
export const INTEGER_FLAGS: ReadonlySet<string> = new Set([
  "--epochs",
  "--batch-size",
  "--max-length",
  "--seed",
  "--seeds",
  "--lora-r",
  "--top-k",
  "--per-class",
  "--faithfulness",
  "--layers",
  "--heads",
  "--kv-heads",
  "--d-model",
  "--d-ff",
  "--vocab",
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
