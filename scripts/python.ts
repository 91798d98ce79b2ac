// Run the runtime's Python (the managed environment or CTSFT_PYTHON) with the given arguments,
// from the repository root, with our sources and the test tools (pytest, hypothesis, ruff: the
// dev lock, kept out of the environment users share) on PYTHONPATH. Used by `npm run test:py`
// and `lint:py`; `tsx scripts/python.ts --setup-only` just makes sure the environment is ready.
import { spawnSync } from "node:child_process";
import { runtimeEnv, setup } from "../src/transport/python-env.ts";

const env = await setup({ dev: true });
if (process.argv[2] === "--setup-only") {
  process.stdout.write(`${env.python}\n`);
  process.exit(0);
}
const r = spawnSync(env.python, process.argv.slice(2), { stdio: "inherit", env: runtimeEnv({}, { pythonPath: env.pythonPath }) });
process.exit(r.status ?? 1);
