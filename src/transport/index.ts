export type { Call } from "./call.ts";
export { Connection, type CurveKeys, type HeartbeatOptions } from "./connection.ts";
export { ipcEndpoints, tcpEndpoints, type Endpoints } from "./endpoints.ts";
export { EmbeddedUnavailableError, launchEmbedded } from "./launch-embedded.ts";
export { launchProcess } from "./launch-process.ts";
export { ensurePythonEnv, runtimePython, TORCH_PIN, type SetupOptions } from "./python-env.ts";
export { launchRay, RayUnavailableError, type LaunchedRay, type RayWorker } from "./launch-ray.ts";
