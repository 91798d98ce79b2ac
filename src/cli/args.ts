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

/** A numeric option, checked. */
export function num(value: string | undefined, flag: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new BadRequestError(`${flag} must be a number, got ${JSON.stringify(value)}`, { path: flag });
  return n;
}

/** `--data` as a dataset reference: `nusax:LANG[:SPLIT]` uses $CTSFT_NUSAX_DIR, anything
 * else is a file, resolved against the working directory (the runtime may run elsewhere). */
export function dataArg(value: string): { path: string } | { nusax: { lang: string; split: "train" | "valid" | "test" } } {
  const m = /^nusax:([a-z]+)(?::(train|valid|test))?$/.exec(value);
  if (m) return { nusax: { lang: m[1] as string, split: (m[2] ?? "train") as "train" | "valid" | "test" } };
  return { path: resolve(value) };
}
