import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** The directory holding this module's file: src/internal under tsx, dist/esm/internal in
 * the ESM build. The CommonJS build (scripts/build.mjs) compiles `module-dir.cjs.ts` in this
 * file's place, because CommonJS has no `import.meta`; keep the two exporting the same. */
export const MODULE_DIR: string = dirname(fileURLToPath(import.meta.url));
