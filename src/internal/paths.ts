import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { MODULE_DIR } from "./module-dir.ts";

/** The nearest folder at or above `from` whose package.json names the ctsft package: the
 * checkout when running src/ through tsx, the installed package when running dist/esm or
 * dist/cjs (whose own package.json, `{"type":"commonjs"}`, has no name). */
function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown }).name === "ctsft") return dir;
    } catch {
      // no package.json here, or not JSON: keep climbing
    }
    if (dirname(dir) === dir) throw new Error(`ctsft: no package.json naming "ctsft" above ${from}; the package is incomplete`);
  }
}

/** Root of the installed ctsft package (holds package.json and py_runtime/). */
export const PACKAGE_ROOT = findPackageRoot(MODULE_DIR);

/** The runtime's Python sources, put on PYTHONPATH so the runtime always matches this SDK. */
export const PY_RUNTIME_DIR = resolve(PACKAGE_ROOT, "py_runtime");

/** Whether `path` is `dir` or lies under it (lexically, both resolved): `..` or `../…`
 * climbs out, a name like `..cache` that merely begins with two dots does not. */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return !(rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel));
}
