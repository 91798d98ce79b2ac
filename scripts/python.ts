// Run the runtime's Python (managed venv or CTSFT_PYTHON) with the given arguments, from the
// repository root, with our sources on PYTHONPATH. Used by `npm run test:py` and `lint:py`.
import { spawnSync } from "node:child_process";
import { ensurePythonEnv, runtimeEnv } from "../src/transport/python-env.ts";

const python = await ensurePythonEnv();
const r = spawnSync(python, process.argv.slice(2), { stdio: "inherit", env: runtimeEnv() });
process.exit(r.status ?? 1);
