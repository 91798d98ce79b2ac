// The runtime's Python environment, as the SDK exports it (`import { setup } from "ctsft"`).
// `ctsft setup [--force] [--with ray]` is `setup({ force, with })`, printing `result.python`;
// the repository's own scripts add `dev: true` (the test tools) and `with: ["ray"]` (its tests
// start a local Ray cluster).
export {
  ctsftHome,
  detectTorchVariant,
  EXTRAS,
  type Extra,
  envKey,
  lockHash,
  runtimeEnv,
  runtimePython,
  setup,
  TORCH_CPU_INDEX,
  TORCH_PIN,
  TORCH_VERSION,
  venvDir,
  type SetupOptions,
  type SetupProgress,
  type SetupResult,
  type TorchVariant,
} from "../transport/python-env.ts";
