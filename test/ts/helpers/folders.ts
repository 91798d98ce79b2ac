import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Every file under `dir` with its content, to compare before and after. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
      else out[`${prefix}${e.name}`] = readFileSync(join(d, e.name), "utf8");
    }
  };
  walk(dir, "");
  return out;
}

/** A user's folder: a file and a subfolder ctsft never wrote. Returns its snapshot. */
export function precious(dir: string): Record<string, string> {
  mkdirSync(join(dir, "sub"), { recursive: true });
  writeFileSync(join(dir, "thesis.txt"), "four years of work");
  writeFileSync(join(dir, "sub", "notes.md"), "notes");
  return snapshot(dir);
}
