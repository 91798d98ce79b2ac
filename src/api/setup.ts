export { ensurePythonEnv as setup, runtimePython, TORCH_PIN, type SetupOptions } from "../transport/python-env.ts";
