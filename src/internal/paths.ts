import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Root of the installed ctsft package (holds package.json and py_runtime/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The runtime's Python sources, put on PYTHONPATH so the runtime always matches this SDK. */
export const PY_RUNTIME_DIR = resolve(PACKAGE_ROOT, "py_runtime");
