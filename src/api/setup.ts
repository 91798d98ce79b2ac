// The runtime's Python environment, as the SDK exports it (`import { setup } from "ctsft"`).
// `ctsft setup [--force]` is `setup({ force })`, printing `result.python`; the repository's
// own `npm run setup` is `setup({ dev: true })` (the test tools too).
export {
  ctsftHome,
  detectTorchVariant,
  envKey,
  lockHash,
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
