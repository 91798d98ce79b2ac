/**
 * ctsft: Circuit-Targeted Supervised Fine-Tuning for Hugging Face language models, typed
 * from TypeScript and run by a Python/PyTorch runtime over ZeroMQ.
 *
 * @packageDocumentation
 */
export { Runtime, type CallOptions, type ConnectOptions, type RuntimeMode, type StartOptions } from "./api/runtime.ts";
export { RunStream, type Reply } from "./api/stream.ts";
export { Jobs, type AttachOptions } from "./api/jobs.ts";
export { Data, DatasetHandle, type DataInput } from "./api/data.ts";
export { Handle, handleId, type HandleId, type HandleLike } from "./api/handles.ts";
export { type DeltaLoadOptions, Deltas, type GenerateOptions, ModelHandle, Models, type PredictInput, type PredictOptions } from "./api/models.ts";
export { Circuits, FAITHFULNESS_WARN, rankHeads, scoreDiagnostics, Scoring, type BaselineOptions, type RankedHead, type ScoreOptions } from "./api/scoring.ts";
export { addClient, createKeys, readClientKeys, type ClientKeyFiles, type CreateKeysOptions } from "./api/keys.ts";
export { serveRuntime, type ServeOptions } from "./api/serve.ts";
export { ctsftHome, EXTRAS, setup, TORCH_PIN, type Extra, type SetupOptions, type SetupProgress, type SetupResult, type TorchVariant } from "./api/setup.ts";
export { sweep, type CellError, type CellOutcome, type SweepOptions, type SweepResult, type SweepWorker } from "./api/sweep.ts";
export { RayUnavailableError } from "./transport/launch-ray.ts";
export type { HeartbeatOptions } from "./transport/connection.ts";
export type { CtsftTrainOptions, EvaluateOptions, FullTrainOptions, LoraTrainOptions, NormsTrainOptions, TrainOptions } from "./api/runtime.ts";
export {
  BadRequestError,
  CancelledError,
  CtsftError,
  ForbiddenError,
  InternalError,
  NonFiniteError,
  NotFoundError,
  OutOfMemoryError,
  RuntimeLostError,
  VersionMismatchError,
  type ErrorInfo,
} from "./errors.ts";
export { EmbeddedUnavailableError } from "./transport/launch-embedded.ts";
export {
  ABLATION_BELOW,
  compareMethods,
  meanStd,
  type CompareFailure,
  type CompareMethod,
  type CompareOptions,
  type CompareResult,
  type CompareRow,
  type CompareRun,
  type CompareTarget,
  type Preservation,
} from "./api/compare.ts";
export { spearman, topKOverlap } from "./stats.ts";
export { loadAdaptConfig, parseAdaptConfig, runAdapt, type AdaptResult } from "./api/adapt.ts";
export { verdicts, writeReport, type ReportData, type Verdict } from "./report/index.ts";
export * from "./schema/index.ts";
