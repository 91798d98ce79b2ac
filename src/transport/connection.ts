import { randomBytes } from "node:crypto";
import { Dealer } from "zeromq";
import { BadRequestError, CtsftError, errorFromWire, RuntimeLostError, VersionMismatchError } from "../errors.ts";
import type { Tensors } from "../schema/tensor.ts";
import { PROTOCOL_VERSION } from "../schema/version.ts";
import { ErrorBody, HelloBody, type Kind } from "../schema/wire.ts";
import { Call } from "./call.ts";
import type { Endpoints } from "./endpoints.ts";
import { decodeMessage, encodeMessage, type Message } from "./frames.ts";
import { SendQueue } from "./send-queue.ts";

/** CURVE keys (Z85 strings) for the remote mode. */
export interface CurveKeys {
  serverKey: string;
  publicKey: string;
  secretKey: string;
}

/** Liveness settings. Liveness is not a deadline: a long op never times out while pongs flow. */
export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
}

export interface ConnectionOptions {
  endpoints: Endpoints;
  curve?: CurveKeys | undefined;
  heartbeat?: Partial<HeartbeatOptions> | undefined;
  /** Messages buffered per call before reading pauses (back-pressure). */
  highWater?: number | undefined;
  /** How long to wait for the runtime's `hello`. */
  connectTimeoutMs?: number | undefined;
}

const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 500, timeoutMs: 3000 };

/** A connection to one runtime: three DEALER sockets, a receive loop per socket, the
 * handshake, heartbeat watchdog, and the table of in-flight calls. Knows nothing of CT-SFT. */
export class Connection {
  private readonly main: Dealer;
  private readonly control: Dealer;
  private readonly hb: Dealer;
  private readonly mainQ: SendQueue;
  private readonly controlQ: SendQueue;
  private readonly hbQ: SendQueue;
  private readonly calls = new Map<string, Call>();
  private readonly controlCalls = new Map<string, Call>();
  private readonly prefix = randomBytes(4).toString("hex");
  private counter = 0;
  private lastPong = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private lost: RuntimeLostError | undefined;
  /** The watchdog counts only after the handshake: before it, the connect timeout rules
   * (a cold runtime may take seconds to bind while Python starts). */
  private live = false;
  private closed = false;
  hello: HelloBody | undefined;

  private constructor(private readonly opts: ConnectionOptions) {
    const make = () => {
      const s = new Dealer({ linger: 0, immediate: false });
      if (opts.curve !== undefined) {
        s.curveServerKey = opts.curve.serverKey;
        s.curvePublicKey = opts.curve.publicKey;
        s.curveSecretKey = opts.curve.secretKey;
      }
      return s;
    };
    this.main = make();
    this.control = make();
    this.hb = make();
    this.main.connect(opts.endpoints.main);
    this.control.connect(opts.endpoints.control);
    this.hb.connect(opts.endpoints.heartbeat);
    this.mainQ = new SendQueue(this.main);
    this.controlQ = new SendQueue(this.control);
    this.hbQ = new SendQueue(this.hb);
  }

  /** Connect, start the receive loops and heartbeat, and complete the version handshake. */
  static async open(opts: ConnectionOptions): Promise<Connection> {
    const conn = new Connection(opts);
    void conn.receive(conn.main, conn.calls);
    void conn.receive(conn.control, conn.controlCalls);
    conn.startHeartbeat();
    try {
      await conn.handshake(opts.connectTimeoutMs ?? 60_000);
    } catch (e) {
      conn.lose(e instanceof CtsftError ? e.message : String(e));
      conn.close();
      throw e;
    }
    return conn;
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const call = this.send(this.main, this.mainQ, this.calls, "hello", "hello", { protocol: PROTOCOL_VERSION });
    const timer = setTimeout(() => call.fail(new RuntimeLostError(`no hello from the runtime within ${timeoutMs} ms`)), timeoutMs);
    try {
      const msg = await call.next();
      const hello = HelloBody.parse(msg.header.body);
      if (hello.protocol !== PROTOCOL_VERSION) {
        throw new VersionMismatchError(`runtime speaks protocol v${hello.protocol}, this SDK speaks v${PROTOCOL_VERSION}`);
      }
      this.hello = hello;
      this.lastPong = Date.now();
      this.live = true;
      if (hello.keepaliveMs !== undefined) this.startKeepalive(hello.keepaliveMs);
    } finally {
      clearTimeout(timer);
      this.calls.delete(call.id);
    }
  }

  /** Start a request on the main socket; its messages arrive on the returned call. */
  request(op: string, body: unknown, tensors?: Tensors): Call {
    return this.send(this.main, this.mainQ, this.calls, "req", op, body, tensors);
  }

  /** A request on the control socket (status, shutdown, cancel): answered even during compute. */
  async controlRequest(kind: Kind, op: string, body: unknown): Promise<unknown> {
    const call = this.send(this.control, this.controlQ, this.controlCalls, kind, op, body);
    try {
      return (await call.next()).header.body;
    } finally {
      this.controlCalls.delete(call.id);
    }
  }

  /** Receive the stream of job `jobId` (an earlier request of this client's, possibly from
   * another connection) from message `fromSeq` on; the call carries the job's id. */
  attach(jobId: string, op: string, fromSeq: number): Call {
    return this.send(this.main, this.mainQ, this.calls, "req", "jobs.attach", { job: jobId, fromSeq }, undefined, { id: jobId, op, fromSeq });
  }

  /** Ask the runtime to cancel request `id` (cooperative: it stops at its next step). */
  cancel(id: string): void {
    this.controlRequest("cancel", "cancel", { target: id }).catch(() => undefined);
  }

  /** Forget a finished call (its messages are no longer routed). */
  release(call: Call): void {
    this.calls.delete(call.id);
  }

  get isLost(): boolean {
    return this.lost !== undefined;
  }

  private send(
    sock: Dealer,
    q: SendQueue,
    table: Map<string, Call>,
    kind: Kind,
    op: string,
    body: unknown,
    tensors?: Tensors,
    attach?: { id: string; op: string; fromSeq: number },
  ): Call {
    const id = attach?.id ?? `${this.prefix}-${++this.counter}`;
    const call = new Call(id, attach?.op ?? op, this.opts.highWater ?? 1024);
    call.expectedSeq = attach?.fromSeq ?? 0;
    if (this.lost !== undefined) {
      call.fail(this.lost);
      return call;
    }
    table.set(id, call);
    q.send(encodeMessage({ v: PROTOCOL_VERSION, id, kind, op, seq: 0, body }, tensors)).catch((e: Error) => {
      call.fail(new RuntimeLostError(`could not send ${op}: ${e.message}`, { cause: e }));
    });
    return call;
  }

  private async receive(sock: Dealer, table: Map<string, Call>): Promise<void> {
    try {
      for await (const frames of sock) {
        let msg: Message;
        try {
          msg = decodeMessage(frames);
        } catch (e) {
          // A message we cannot decode cannot be routed; nothing is waiting on it.
          process.emitWarning(`ctsft: dropped an undecodable message from the runtime: ${(e as Error).message}`);
          continue;
        }
        this.lastPong = Date.now();
        const call = table.get(msg.header.id);
        if (call === undefined) continue;
        this.route(call, msg, table);
        // Back-pressure: stop reading while this call's consumer lags far behind.
        if (call.congested) await call.drained();
      }
    } catch (e) {
      if (!this.closed) this.lose(`socket failed: ${(e as Error).message}`);
    }
  }

  private route(call: Call, msg: Message, table: Map<string, Call>): void {
    const { kind, seq } = msg.header;
    if (kind === "event" || kind === "result" || (kind === "error" && seq > 0)) {
      if (seq !== call.expectedSeq) {
        table.delete(call.id);
        call.fail(new RuntimeLostError(`stream ${call.op} ${call.id}: expected seq ${call.expectedSeq}, got ${seq} (messages lost)`));
        return;
      }
      call.expectedSeq++;
    }
    if (kind === "error") {
      table.delete(call.id);
      const body = ErrorBody.safeParse(msg.header.body);
      call.fail(body.success ? errorFromWire(body.data, call.id) : new BadRequestError(`malformed error from runtime`));
      return;
    }
    if (kind === "result" || kind === "hello") table.delete(call.id);
    call.push(msg);
  }

  private startHeartbeat(): void {
    const hb = { ...DEFAULT_HEARTBEAT, ...this.opts.heartbeat };
    void (async () => {
      try {
        for await (const _ of this.hb) this.lastPong = Date.now();
      } catch {
        /* closed */
      }
    })();
    let lastTick = Date.now();
    const ping = setInterval(() => {
      const now = Date.now();
      // If our own event loop was blocked (a busy consumer), pongs could not be read either:
      // restart the clock rather than blame the runtime.
      if (now - lastTick > 2 * hb.intervalMs) this.lastPong = now;
      lastTick = now;
      this.hbQ.send([Buffer.from("ping")]).catch(() => undefined);
      const silent = now - this.lastPong;
      if (this.live && silent > hb.timeoutMs) this.lose(`the runtime did not answer heartbeats for ${silent} ms`);
    }, hb.intervalMs);
    ping.unref();
    this.timers.push(ping);
  }

  /** A remote server frees the handles of clients it has not heard from for a while: show
   * we are alive even when idle (a cheap `status` on the control socket). */
  private startKeepalive(everyMs: number): void {
    const timer = setInterval(() => {
      this.controlRequest("req", "status", {}).catch(() => undefined);
    }, everyMs);
    timer.unref();
    this.timers.push(timer);
  }

  /** Mark the runtime lost: every pending and future call fails with `RuntimeLostError`. */
  lose(reason: string): void {
    if (this.lost !== undefined) return;
    this.lost = new RuntimeLostError(reason);
    for (const table of [this.calls, this.controlCalls]) {
      for (const call of table.values()) call.fail(this.lost);
      table.clear();
    }
    for (const t of this.timers) clearInterval(t);
  }

  /** Close the sockets; pending calls fail with `RuntimeLostError`. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.lose("connection closed");
    this.closed = true;
    for (const s of [this.main, this.control, this.hb]) s.close();
  }
}
