import { z } from "zod";
import { DataLoadRequest, DataLoadResult, SyntheticRequest, SyntheticResult } from "./data.ts";
import { CreateModelRequest, CreateModelResult, HandleRequest, LoadModelRequest, LoadModelResult, ModelInfo, ReleaseResult, SaveModelRequest, SaveResult, DeltaRequest, DeltaResult } from "./models.ts";
import { BaselineRequest, BaselineResult, Circuit, ScoreEvent, ScoreRequest, ScoresFile, SelectRequest } from "./scoring.ts";
import {
  DeltaInfo,
  DeltaListRequest,
  DeltaListResult,
  DeltaLoadRequest,
  DeltaUnloadRequest,
  DeltaUnloadResult,
  GenerateEvent,
  GenerateRequest,
  GenerateResult,
  PredictEvent,
  PredictRequest,
  PredictResult,
} from "./serving.ts";
import { EvaluateEvent, EvaluateRequest, EvaluateResult, TrainEvent, TrainRequest, TrainResult } from "./train.ts";

/**
 * The op table: the typed contract of every runtime operation. Each entry names the op's
 * request body, the body of its streamed events (ops that stream) and of its result. Adding
 * an op is one entry here plus one handler in `py_runtime/ctsft_runtime/ops/`.
 */

const Empty = z.object({}).strict();

/** One CUDA device as reported by the runtime. */
export const CudaDevice = z.object({
  index: z.number().int(),
  name: z.string(),
  totalMemory: z.number(),
  freeMemory: z.number(),
});

/** `info`: versions and devices of the runtime. */
export const RuntimeInfo = z.object({
  protocol: z.number().int(),
  runtimeVersion: z.string(),
  python: z.string(),
  pid: z.number().int(),
  executable: z.string(),
  platform: z.string(),
  torch: z.string(),
  transformers: z.string(),
  cuda: z.boolean(),
  devices: z.array(CudaDevice),
  device: z.string(),
  threads: z.number().int(),
});
export type RuntimeInfo = z.infer<typeof RuntimeInfo>;

/** `echo`: returns its payload and tensors unchanged (a round-trip check). */
export const EchoRequest = z
  .object({
    payload: z.unknown().optional(),
    /** Route tensors through `torch.frombuffer` and back on the runtime side. */
    viaTorch: z.boolean().optional(),
  })
  .strict();
/** Result of `echo`. */
export const EchoResult = z.object({ payload: z.unknown() });

/** `diagnose`: a streamed op for checking the bridge (events, delays, failures). */
export const DiagnoseRequest = z
  .object({
    /** @defaultValue `10` */
    count: z.number().int().min(0).max(10_000_000).default(10),
    /** @defaultValue `0` */
    intervalMs: z.number().min(0).default(0),
    /** @defaultValue `0` */
    payloadBytes: z.number().int().min(0).max(64 << 20).default(0),
    failAt: z.number().int().min(0).optional(),
    failCode: z.enum(["internal", "out_of_memory"]).optional(),
  })
  .strict();
/** A `diagnose` tick. */
export const DiagnoseEvent = z.object({
  type: z.literal("tick"),
  step: z.number().int(),
  total: z.number().int(),
});
/** Result of `diagnose`. */
export const DiagnoseResult = z.object({ count: z.number().int(), seconds: z.number() });

/** Control-socket `status`. `running` is the caller's own running job (null while the
 * runtime is idle or runs another client's job). */
export const StatusResult = z.object({
  pid: z.number().int(),
  running: z.object({ id: z.string(), op: z.string(), seconds: z.number() }).nullable(),
  stopping: z.boolean(),
  /** Remote mode, admin keys only: what the server holds for all its clients. */
  server: z.object({ clients: z.number().int(), models: z.number().int(), datasets: z.number().int(), jobs: z.number().int() }).optional(),
});
export type StatusResult = z.infer<typeof StatusResult>;

/** One of the caller's jobs, as `jobs.list` reports it. A job is a request's run: it keeps
 * running when its connection drops, and its stream can be re-attached from `firstSeq` on. */
export const JobInfo = z.object({
  /** The request id (what `RunStream.id` returned). */
  id: z.string(),
  op: z.string(),
  state: z.enum(["queued", "running", "done", "failed", "cancelled"]),
  /** Oldest message still buffered (the buffer is bounded; older ones were dropped). */
  firstSeq: z.number().int().nonnegative(),
  /** Seq of the next message (events so far, plus one once the job has ended). */
  nextSeq: z.number().int().nonnegative(),
  /** A connection receives its stream now. */
  attached: z.boolean(),
  seconds: z.number(),
});
export type JobInfo = z.infer<typeof JobInfo>;
/** Control-socket `jobs.list`. */
export const JobsListResult = z.object({ jobs: z.array(JobInfo) });

/** Control-socket `cancel` (message kind `cancel`): stop request `target` of the same client. */
export const CancelRequest = z.object({ target: z.string() }).strict();
/** Result of `cancel`: false when the target had not started yet (it is refused when it starts). */
export const CancelResult = z.object({ cancelled: z.boolean() });
/** Result of control `shutdown`. */
export const ShutdownResult = z.object({ stopping: z.literal(true) });
/** `jobs.attach` (request socket, sent with the job's id as its request id): re-attach a job's stream. */
export const AttachRequest = z.object({ job: z.string(), fromSeq: z.number().int().nonnegative().default(0) }).strict();

/** Control-socket ops and `jobs.attach`: served by the runtime itself, not by op handlers.
 * `jobs.attach` answers with the attached job's own events and result. */
export const CONTROL_OPS = {
  status: { request: Empty, result: StatusResult },
  "jobs.list": { request: Empty, result: JobsListResult },
  shutdown: { request: Empty, result: ShutdownResult },
  cancel: { request: CancelRequest, result: CancelResult },
  "jobs.attach": { request: AttachRequest },
} as const;

/** The op table. `event` is present for ops that stream. */
export const OPS = {
  info: { request: Empty, result: RuntimeInfo },
  ping: { request: Empty, result: z.object({}) },
  echo: { request: EchoRequest, result: EchoResult },
  diagnose: { request: DiagnoseRequest, event: DiagnoseEvent, result: DiagnoseResult },
  "model.load": { request: LoadModelRequest, result: LoadModelResult },
  "model.info": { request: HandleRequest, result: ModelInfo },
  "model.save": { request: SaveModelRequest, result: SaveResult },
  "delta.apply": { request: DeltaRequest, result: DeltaResult },
  "delta.revert": { request: DeltaRequest, result: DeltaResult },
  "model.create": { request: CreateModelRequest, result: CreateModelResult },
  release: { request: HandleRequest, result: ReleaseResult },
  "data.load": { request: DataLoadRequest, result: DataLoadResult },
  "data.synthetic": { request: SyntheticRequest, result: SyntheticResult },
  train: { request: TrainRequest, event: TrainEvent, result: TrainResult },
  evaluate: { request: EvaluateRequest, event: EvaluateEvent, result: EvaluateResult },
  baseline: { request: BaselineRequest, event: ScoreEvent, result: BaselineResult },
  score: { request: ScoreRequest, event: ScoreEvent, result: ScoresFile },
  "circuit.select": { request: SelectRequest, result: Circuit },
  "deltas.load": { request: DeltaLoadRequest, result: DeltaInfo },
  "deltas.unload": { request: DeltaUnloadRequest, result: DeltaUnloadResult },
  "deltas.list": { request: DeltaListRequest, result: DeltaListResult },
  predict: { request: PredictRequest, event: PredictEvent, result: PredictResult },
  generate: { request: GenerateRequest, event: GenerateEvent, result: GenerateResult },
} as const;

/** Name of a runtime operation. */
export type OpName = keyof typeof OPS;
type Entry<O extends OpName> = (typeof OPS)[O];
/** What a caller passes for op `O` (defaults optional). */
export type OpRequest<O extends OpName> = z.input<Entry<O>["request"]>;
/** The parsed result body of op `O`. */
export type OpResult<O extends OpName> = z.output<Entry<O>["result"]>;
/** The parsed event body of streaming op `O`. */
export type OpEvent<O extends OpName> = Entry<O> extends { event: z.ZodType } ? z.output<Entry<O>["event"]> : never;
/** Ops that stream events before their result. */
export type StreamingOp = { [O in OpName]: Entry<O> extends { event: z.ZodType } ? O : never }[OpName];
