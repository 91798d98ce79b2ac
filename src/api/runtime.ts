import { z } from "zod";
import { BadRequestError } from "../errors.ts";
import { OPS, type OpEvent, type OpName, type OpRequest, type OpResult, StatusResult, type StreamingOp } from "../schema/ops.ts";
import type { Tensors } from "../schema/tensor.ts";
import type { CtsftTrainRequest, EvaluateRequest, FullTrainRequest, LoraTrainRequest, NormsTrainRequest } from "../schema/train.ts";
import type { HelloBody } from "../schema/wire.ts";
import { Connection, type CurveKeys, type HeartbeatOptions, launchEmbedded, launchProcess, tcpEndpoints } from "../transport/index.ts";
import { checkRanks } from "../transport/ranks.ts";
import { Data, type DataInput, dataRef } from "./data.ts";
import { type HandleLike, idOf } from "./handles.ts";
import { Jobs } from "./jobs.ts";
import { ModelHandle, Models } from "./models.ts";
import { Circuits, Scoring } from "./scoring.ts";
import { parse, type Reply, RunStream } from "./stream.ts";

/** Where the `train` and `evaluate` ops take ids, the SDK also takes handles and datasets. */
interface TrainData {
  /** The model to train (a handle from `models.load`, or its id). */
  model: HandleLike;
  /** Training set: a dataset handle, or a reference the runtime resolves (file, NusaX, synthetic). */
  data: DataInput;
  /** Validation set, evaluated after each epoch. */
  valid?: DataInput;
}
type Handled = "model" | "data" | "valid";

/** {@link Runtime.train} with `method: "full"` or no method: every parameter. */
export interface FullTrainOptions extends Omit<z.input<typeof FullTrainRequest>, Handled>, TrainData {}
/** {@link Runtime.train} with `method: "ctsft"`: the circuit's head slices plus every norm. */
export interface CtsftTrainOptions extends Omit<z.input<typeof CtsftTrainRequest>, Handled>, TrainData {}
/** {@link Runtime.train} with `method: "norms"`: norm parameters only. */
export interface NormsTrainOptions extends Omit<z.input<typeof NormsTrainRequest>, Handled>, TrainData {}
/** {@link Runtime.train} with `method: "lora"`: LoRA adapters through peft. */
export interface LoraTrainOptions extends Omit<z.input<typeof LoraTrainRequest>, Handled>, TrainData {}
/** {@link Runtime.train} request: the `train` op's per-method options, discriminated by `method`. */
export type TrainOptions = FullTrainOptions | CtsftTrainOptions | NormsTrainOptions | LoraTrainOptions;

/** {@link Runtime.evaluate} request, with handles accepted. */
export interface EvaluateOptions extends Omit<z.input<typeof EvaluateRequest>, "model" | "data"> {
  /** The model to evaluate. */
  model: HandleLike;
  /** One or more datasets; each gets its own report. */
  data: DataInput[];
}

/** How the runtime is started. */
export type RuntimeMode = "process" | "embedded" | "remote";

/** Options of {@link Runtime.start}. */
export interface StartOptions {
  /** `process` (default): a child `python -m ctsft_runtime`. `embedded`: inside this Node
   * process through node-calls-python (opt-in; see docs). */
  mode?: "process" | "embedded";
  /** Default device for the runtime's work: `auto` (CUDA when present), `cpu`, `cuda`, `cuda:N`. */
  device?: string;
  /** Liveness checks; a long op never times out while the runtime answers heartbeats. */
  heartbeat?: Partial<HeartbeatOptions>;
  /** Forward the runtime's log output to this process's stderr (process mode). */
  inheritStderr?: boolean;
  /**
   * Processes to run the runtime as (process mode): N > 1 starts N ranks under torchrun on this
   * host (one per GPU, `cuda:LOCAL_RANK`; gloo on CPU). Rank 0 answers, every rank runs each op,
   * and `train` spreads each batch over the ranks (`parallel: "ddp" | "fsdp"`). If a rank dies, the
   * runtime ends and pending calls fail with `RuntimeLostError`. See docs/guide.md, "Running on several GPUs".
   * @defaultValue `1`
   */
  ranks?: number;
}

/** Options of {@link Runtime.connect}. */
export interface ConnectOptions {
  /** The server's CURVE public key (Z85), from `ctsft keys`. */
  serverKey: string;
  /** This client's CURVE key pair (Z85); its public key must be authorized on the server. */
  clientKeys: { publicKey: string; secretKey: string };
  heartbeat?: Partial<HeartbeatOptions>;
  /** How long to wait for the server's hello (default 60 s). */
  connectTimeoutMs?: number;
}

/** Per-call options. */
export interface CallOptions {
  /** Tensors sent with the request as raw frames. */
  tensors?: Tensors;
  /** Cancels the operation (cooperatively, between steps) when aborted. */
  signal?: AbortSignal;
}

/**
 * A connection to a ctsft runtime: the one object of the SDK. Start one with
 * {@link Runtime.start} (local) or {@link Runtime.connect} (remote), and release it with
 * `close()` or `await using`.
 */
export class Runtime implements AsyncDisposable {
  private closing: Promise<void> | undefined;
  /** Load and create models. */
  readonly models: Models = new Models(this);
  /** Load datasets; write the synthetic task. */
  readonly data: Data = new Data(this);
  /** The mean baseline and head relevance scores. */
  readonly scoring: Scoring = new Scoring(this);
  /** Circuit selection. */
  readonly circuits: Circuits = new Circuits(this);
  /** This client's jobs: list them, re-attach to one from another connection. */
  readonly jobs: Jobs = new Jobs(() => this.conn);

  private constructor(
    /** How this runtime was started. */
    readonly mode: RuntimeMode,
    private readonly conn: Connection,
    private readonly stopper: () => Promise<void>,
  ) {}

  /** Start a local runtime. Sets up its Python environment first if needed. */
  static async start(options: StartOptions = {}): Promise<Runtime> {
    const mode = options.mode ?? "process";
    const device = options.device ?? "auto";
    if (!/^(auto|cpu|cuda(:\d+)?|mps)$/.test(device)) {
      throw new BadRequestError(`device must be auto, cpu, cuda, cuda:N or mps, got ${JSON.stringify(device)}`, { path: "device" });
    }
    const ranks = checkRanks(options.ranks);
    if (mode === "embedded") {
      if (ranks > 1) throw new BadRequestError("ranks > 1 needs mode \"process\": torchrun starts one process per rank", { path: "ranks" });
      const e = await launchEmbedded({ device, heartbeat: options.heartbeat });
      return new Runtime("embedded", e.connection, () => e.stop());
    }
    if (mode !== "process") throw new BadRequestError(`mode must be "process" or "embedded", got ${JSON.stringify(mode)}`, { path: "mode" });
    const p = await launchProcess({ device, heartbeat: options.heartbeat, inheritStderr: options.inheritStderr, ranks });
    return new Runtime("process", p.connection, () => p.stop());
  }

  /** Connect to a runtime served elsewhere with `ctsft serve` (tcp + CURVE). */
  static async connect(endpoint: string, options: ConnectOptions): Promise<Runtime> {
    const conn = await Connection.open({
      endpoints: tcpEndpoints(endpoint),
      curve: { serverKey: options.serverKey, ...options.clientKeys } satisfies CurveKeys,
      heartbeat: options.heartbeat,
      connectTimeoutMs: options.connectTimeoutMs ?? 60_000,
    });
    return new Runtime("remote", conn, async () => conn.close());
  }

  /** What the runtime said on connect (protocol, versions, pid). */
  get hello(): HelloBody {
    return this.conn.hello as HelloBody;
  }

  /** Versions of Python, torch and transformers, and the CUDA devices. */
  async info(options?: CallOptions): Promise<OpResult<"info">> {
    return (await this.call("info", {}, options)).body;
  }

  /** A round trip through the runtime's request loop. */
  async ping(options?: CallOptions): Promise<void> {
    await this.call("ping", {}, options);
  }

  /** Send a payload and tensors; the runtime returns them unchanged. */
  echo(request: OpRequest<"echo">, options?: CallOptions): Promise<Reply<OpResult<"echo">>> {
    return this.call("echo", request, options);
  }

  /** A diagnostic stream of `count` events (for checking the bridge). */
  diagnose(request: OpRequest<"diagnose">, options?: CallOptions): RunStream<OpEvent<"diagnose">, OpResult<"diagnose">> {
    return this.stream("diagnose", request, options);
  }

  /** Fine-tune a model (full SFT): a stream of `start`, `step` and `epoch` events, then the result.
   * A {@link ModelHandle} passed as `model` has its `info` updated when the result arrives. */
  train(request: TrainOptions, options?: CallOptions): RunStream<OpEvent<"train">, OpResult<"train">> {
    const { model, data, valid, ...rest } = request;
    const body = { ...rest, model: idOf(model), data: dataRef(data), valid: valid && dataRef(valid) };
    const refresh = model instanceof ModelHandle ? (r: OpResult<"train">) => void (model.info = r.model) : undefined;
    return this.start("train", body, options ?? {}, OPS.train.event, refresh);
  }

  /** Accuracy, macro-F1, per-class counts and confusion matrix on each dataset. */
  evaluate(request: EvaluateOptions, options?: CallOptions): RunStream<OpEvent<"evaluate">, OpResult<"evaluate">> {
    const { model, data, ...rest } = request;
    return this.stream("evaluate", { ...rest, model: idOf(model), data: data.map(dataRef) }, options);
  }

  /** What the runtime is doing now, answered by its control thread even during compute. */
  async status(): Promise<StatusResult> {
    return parse(StatusResult, await this.conn.controlRequest("req", "status", {}), "status");
  }

  /** Call any op by name; the request is validated against its schema before it is sent. */
  async call<O extends OpName>(op: O, request: OpRequest<O>, options: CallOptions = {}): Promise<Reply<OpResult<O>>> {
    // A streaming op called this way has its events drained and discarded.
    const event = (OPS[op] as { event?: z.ZodType }).event;
    return this.start(op, request, options, event).finalResult();
  }

  /** Start a streaming op by name; iterate the events, then read `result`. */
  stream<O extends StreamingOp>(op: O, request: OpRequest<O>, options: CallOptions = {}): RunStream<OpEvent<O>, OpResult<O>> {
    const entry = OPS[op] as unknown as { event: z.ZodType<OpEvent<O>> };
    return this.start(op, request, options, entry.event);
  }

  private start<O extends OpName, E>(
    op: O,
    request: OpRequest<O>,
    options: CallOptions,
    event: z.ZodType<E> | undefined,
    onResult?: (body: OpResult<O>) => void,
  ): RunStream<E, OpResult<O>> {
    const entry = OPS[op];
    const checked = entry.request.safeParse(request);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      const path = ["body", ...(issue?.path ?? [])].join(".");
      throw new BadRequestError(`${op}: ${issue?.message} at ${path}`, { path });
    }
    const call = this.conn.request(op, checked.data, options.tensors);
    const schemas = { event: (event ?? z.never()) as z.ZodType<E>, result: entry.result as unknown as z.ZodType<OpResult<O>> };
    return new RunStream(this.conn, call, schemas, options.signal, onResult);
  }

  /** Stop the runtime (local modes) or disconnect (remote). Idempotent; always resolves. */
  close(): Promise<void> {
    this.closing ??= this.stopper().catch(() => undefined);
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
