/**
 * Bridge benchmark: what the TypeScript <-> Python bridge costs, next to the two baselines it
 * must beat or approach.
 *
 * - Tiny round trip: `rt.ping()` in process mode, vs a Python child echoing JSON lines over
 *   stdio, vs a bare zeromq.js <-> pyzmq socket pair (the floor of any ZeroMQ design). The three
 *   are measured interleaved, in rounds, so the machine's noise hits all of them alike.
 * - 64 MiB float32 tensor, each direction on its own (the slower one is reported), vs the same
 *   bytes as base64 inside JSON lines over stdio, vs the bare ZeroMQ pair.
 * - A 100 000-event stream (`diagnose`), consumed with `for await`, checked for lost events.
 * - With `--breakdown`: the round trip layer by layer (bare Unix socket, bare ZeroMQ, ctsft
 *   server behind a bare client, ctsft `Connection`, `Runtime.ping`), interleaved the same way.
 *
 * Units: microseconds for latency; MB/s with MB = 2^20 bytes (MiB/s) for throughput.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Packr } from "msgpackr";
import { Dealer } from "zeromq";
import { PROTOCOL_VERSION, Runtime, type Tensor } from "../src/index.ts";
import { Connection, ipcEndpoints, runtimePython } from "../src/transport/index.ts";
import { runtimeEnv } from "../src/transport/python-env.ts";
import type { BenchOptions } from "./main.ts";

const HERE = dirname(fileURLToPath(import.meta.url));

/** Tunables, overridable by environment for quick runs (e.g. BENCH_RTT_ITERS=200). */
const RTT_ITERS = envInt("BENCH_RTT_ITERS", 2000);
const RTT_ROUNDS = 10;
// V8 keeps tiering up the SDK's call path for the first few thousand calls (background
// compilation competes for the 2 cores and shows as 1-10 ms stalls); measure after that.
const RTT_WARMUP = envInt("BENCH_RTT_WARMUP", 3000);
const TENSOR_BYTES = 64 << 20; // 64 MiB = 16 Mi float32
const TENSOR_REPS = envInt("BENCH_TENSOR_REPS", 5);
const TENSOR_WARMUP = 2;
const BASE64_REPS = envInt("BENCH_BASE64_REPS", 3);
const STREAM_COUNT = envInt("BENCH_STREAM_COUNT", 100_000);
const MIB = 1 << 20;

const TARGETS = {
  rtt_vs_stdio: "<= 1 (rtt_p50_us <= stdio_json_rtt_p50_us)",
  tensor_vs_raw: ">= 0.8",
  tensor_vs_base64: ">= 20",
  stream_lost: "== 0",
};

export async function run(options: BenchOptions): Promise<Record<string, unknown>> {
  const started = new Date();
  const load = loadavg();
  log(`machine: ${cpus().length} cores, load average ${load.map((l) => l.toFixed(2)).join(" ")}`);
  const python = runtimePython();
  const cleanup: (() => unknown)[] = [];
  try {
    log("starting: ctsft runtime (process mode), stdio JSON child, bare pyzmq child");
    const rt = await Runtime.start();
    cleanup.push(() => rt.close());
    const stdio = new JsonLinesChild(python, join(HERE, "stdio_echo.py"));
    cleanup.push(() => stdio.close());
    const raw = await RawZmq.start(python, TENSOR_BYTES);
    cleanup.push(() => raw.close());
    await stdio.request({ op: "ping" }); // started and answering

    // -- tiny round trip --------------------------------------------------------------
    log(`round trip: ${RTT_ITERS} iterations each, interleaved in ${RTT_ROUNDS} rounds, after ${RTT_WARMUP} warm-up`);
    const rtt = await interleaved(
      {
        ctsft: () => rt.ping(),
        stdio: () => stdio.request({ op: "ping" }),
        raw: () => raw.ping(),
      },
      RTT_ITERS,
      RTT_ROUNDS,
      RTT_WARMUP,
    );
    for (const [k, s] of Object.entries(rtt)) log(`  ${k.padEnd(6)} p50 ${pct(s, 0.5).toFixed(1)} us  p99 ${pct(s, 0.99).toFixed(1)} us`);

    // -- 64 MiB tensor ----------------------------------------------------------------
    const x = new Float32Array(TENSOR_BYTES / 4);
    for (let i = 0; i < x.length; i += 1024) x[i] = i; // touched, and checkable after the echo
    const tensor: Tensor = { dtype: "float32", shape: [x.length], data: x };
    const xBytes = Buffer.from(x.buffer, x.byteOffset, x.byteLength);

    log(`64 MiB tensor: ${TENSOR_REPS} timed reps per direction after ${TENSOR_WARMUP} warm-up (median)`);
    // ctsft and the bare sockets alternate rep by rep, so background load hits both alike.
    const reps = await timedReps(
      {
        // node -> python: the request carries the tensor, the reply is tiny.
        toPy: () => rt.call("ping", {}, { tensors: { x: tensor } }),
        // python -> node: a tiny request, one streamed event carries 64 MiB.
        toNode: async () => {
          let events = 0;
          for await (const _ of rt.diagnose({ count: 1, payloadBytes: TENSOR_BYTES })) events++;
          if (events !== 1) throw new Error(`diagnose sent ${events} events, expected 1`);
        },
        echo: async () => {
          const reply = await rt.echo({}, { tensors: { x: tensor } });
          const y = reply.tensors.x?.data as Float32Array | undefined;
          if (y?.length !== x.length || y[1024] !== 1024 || y[x.length - 1024] !== x.length - 1024) throw new Error("echo returned a different tensor");
        },
        rawToPy: () => raw.sink(xBytes),
        rawToNode: () => raw.source(TENSOR_BYTES),
        rawEcho: () => raw.echo(xBytes),
      },
      TENSOR_REPS,
      TENSOR_WARMUP,
    );
    const ct = { toPy: reps.toPy, toNode: reps.toNode, echo: reps.echo };
    const rz = { toPy: reps.rawToPy, toNode: reps.rawToNode, echo: reps.rawEcho };
    log(`  ctsft    node->py ${ms(ct.toPy)}  py->node ${ms(ct.toNode)}  echo ${ms(ct.echo)}`);
    log(`  raw zmq  node->py ${ms(rz.toPy)}  py->node ${ms(rz.toNode)}  echo ${ms(rz.echo)}`);

    log(`64 MiB as base64 in JSON lines over stdio: ${BASE64_REPS} reps per direction (median)`);
    const b64 = await timedReps(
      {
        toPy: async () => {
          const r = await stdio.request({ op: "sink", b64: xBytes.toString("base64") });
          if (r.result?.bytes !== TENSOR_BYTES) throw new Error("stdio sink lost bytes");
        },
        toNode: async () => {
          const r = await stdio.request({ op: "source", n: TENSOR_BYTES });
          const data = Buffer.from(r.result?.b64 ?? "", "base64");
          if (data.length !== TENSOR_BYTES) throw new Error("stdio source lost bytes");
          void new Float32Array(data.buffer, data.byteOffset, data.length / 4); // what a caller would do
        },
      },
      BASE64_REPS,
      0,
    );
    log(`  base64   node->py ${ms(b64.toPy)}  py->node ${ms(b64.toNode)}`);

    // -- stream -----------------------------------------------------------------------
    log(`stream: diagnose({count: ${STREAM_COUNT}}) with for await`);
    let received = 0;
    let gaps = 0;
    let expected = 0;
    const t0 = performance.now();
    const stream = rt.diagnose({ count: STREAM_COUNT });
    for await (const ev of stream) {
      if (ev.step !== expected) gaps++;
      expected = ev.step + 1;
      received++;
    }
    const streamSeconds = (performance.now() - t0) / 1000;
    const streamResult = await stream.result;
    log(`  ${received} events in ${streamSeconds.toFixed(2)} s, ${gaps} gaps, result.count ${streamResult.body.count}`);

    const breakdown = options.flags.has("--breakdown") ? await layers(python, rt, stdio, raw, cleanup) : undefined;

    // -- figures ----------------------------------------------------------------------
    const mbs = (msMedian: number) => TENSOR_BYTES / MIB / (msMedian / 1000);
    const ctSlow = Math.max(median(ct.toPy), median(ct.toNode));
    const rzSlow = Math.max(median(rz.toPy), median(rz.toNode));
    const b64Slow = Math.max(median(b64.toPy), median(b64.toNode));
    const rttP50 = pct(rtt.ctsft, 0.5);
    const stdioP50 = pct(rtt.stdio, 0.5);
    const tensorMbs = mbs(ctSlow);
    const rawMbs = mbs(rzSlow);
    const b64Mbs = mbs(b64Slow);
    const stream_lost = STREAM_COUNT - received;
    return {
      bench: "bridge",
      rtt_p50_us: round(rttP50, 1),
      rtt_p99_us: round(pct(rtt.ctsft, 0.99), 1),
      stdio_json_rtt_p50_us: round(stdioP50, 1),
      stdio_json_rtt_p99_us: round(pct(rtt.stdio, 0.99), 1),
      raw_zmq_rtt_p50_us: round(pct(rtt.raw, 0.5), 1),
      raw_zmq_rtt_p99_us: round(pct(rtt.raw, 0.99), 1),
      rtt_overhead_vs_raw_zmq_us: round(rttP50 - pct(rtt.raw, 0.5), 1),
      rtt_iterations: rtt.ctsft.length,
      tensor64_mb_s: round(tensorMbs, 0),
      tensor64_method:
        "64 MiB float32, each direction timed alone, slower reported: node->py = ping carrying the tensor (tiny reply); " +
        "py->node = diagnose {count:1, payloadBytes:64 MiB} (tiny request, one event with a 64 MiB frame); median of reps",
      tensor64_to_py_ms: round(median(ct.toPy), 1),
      tensor64_to_node_ms: round(median(ct.toNode), 1),
      tensor64_echo_ms: round(median(ct.echo), 1),
      base64_json_mb_s: round(b64Mbs, 1),
      base64_json_to_py_ms: round(median(b64.toPy), 1),
      base64_json_to_node_ms: round(median(b64.toNode), 1),
      raw_zmq_mb_s: round(rawMbs, 0),
      raw_zmq_to_py_ms: round(median(rz.toPy), 1),
      raw_zmq_to_node_ms: round(median(rz.toNode), 1),
      raw_zmq_echo_ms: round(median(rz.echo), 1),
      mb_unit: "MiB (2^20 bytes)",
      stream_events_per_s: round(received / streamSeconds, 0),
      stream_lost,
      stream_gaps: gaps,
      rtt_vs_stdio: round(rttP50 / stdioP50, 2),
      rtt_vs_raw_zmq: round(rttP50 / pct(rtt.raw, 0.5), 2),
      tensor_vs_raw: round(tensorMbs / rawMbs, 2),
      tensor_vs_base64: round(tensorMbs / b64Mbs, 1),
      ...(breakdown === undefined ? {} : { breakdown }),
      targets: TARGETS,
      meets: {
        rtt_vs_stdio: rttP50 <= stdioP50,
        tensor_vs_raw: tensorMbs >= 0.8 * rawMbs,
        tensor_vs_base64: tensorMbs >= 20 * b64Mbs,
        stream_lost: stream_lost === 0,
      },
      node: process.version,
      python: rt.hello.python,
      pyzmq: raw.versions.pyzmq,
      libzmq_py: raw.versions.libzmq,
      zeromq_js: zeromqJsVersion(),
      cpus: cpus().length,
      loadavg_1m_at_start: round(load[0] ?? 0, 2),
      loadavg_1m_at_end: round(loadavg()[0] ?? 0, 2),
      timestamp: started.toISOString(),
    };
  } finally {
    for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
}

// -- round trip, layer by layer ---------------------------------------------------------

/**
 * p50 of a tiny round trip through each layer, interleaved: what each layer adds is the
 * difference to the one below. `server` and `connection` talk to a second ctsft runtime
 * process (same code as the one behind `api`), started here so a bare client can reach it.
 */
async function layers(python: string, rt: Runtime, stdio: JsonLinesChild, raw: RawZmq, cleanup: (() => unknown)[]): Promise<Record<string, unknown>> {
  log("breakdown: starting a bare Unix-socket echo and a second runtime for bare clients");
  const uds = await UdsEcho.start(python);
  cleanup.push(() => uds.close());
  const dir = mkdtempSync(join(tmpdir(), "ctsft-bench-"));
  const server = spawn(python, ["-m", "ctsft_runtime", "--ipc-dir", dir, "--parent-pid", String(process.pid)], { stdio: ["ignore", "ignore", "pipe"], env: runtimeEnv() });
  let serverLog = "";
  server.stderr?.on("data", (d: Buffer) => {
    serverLog = (serverLog + d.toString()).slice(-4000);
  });
  cleanup.push(async () => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server.once("exit", r));
      server.kill("SIGTERM");
      const timer = setTimeout(() => server.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const conn = await Connection.open({ endpoints: ipcEndpoints(dir), connectTimeoutMs: 30_000 }).catch((e: Error) => {
    throw new Error(`breakdown: the second runtime did not answer (${e.message}); its output:\n${serverLog}`);
  });
  cleanup.push(() => conn.close());
  // A bare client: a DEALER and plain msgpack, the least a client of this protocol can do.
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });
  const bare = new Dealer({ linger: 0 });
  bare.connect(ipcEndpoints(dir).main);
  cleanup.push(() => bare.close());
  let bareId = 0;
  const fns = {
    unix_socket: () => uds.ping(),
    stdio_json: () => stdio.request({ op: "ping" }),
    zmq_bare: () => raw.ping(),
    server: async () => {
      await bare.send([packr.pack({ v: PROTOCOL_VERSION, id: `bench-${++bareId}`, kind: "req", op: "ping", seq: 0, body: {}, bufs: [] })]);
      const [head] = await bare.receive();
      packr.unpack(head as Buffer);
    },
    connection: async () => {
      const call = conn.request("ping", {});
      await call.next();
      conn.release(call);
    },
    api: () => rt.ping(),
  };
  log(`breakdown: ${RTT_ITERS} round trips per layer, interleaved, after ${RTT_WARMUP} warm-up`);
  const t = await interleaved(fns, RTT_ITERS, RTT_ROUNDS, RTT_WARMUP);
  const p50 = Object.fromEntries(Object.entries(t).map(([k, s]) => [k, round(pct(s as number[], 0.5), 1)])) as Record<keyof typeof fns, number>;
  const added = {
    zeromq_vs_unix_socket: round(p50.zmq_bare - p50.unix_socket, 1),
    python_server: round(p50.server - p50.zmq_bare, 1),
    node_connection: round(p50.connection - p50.server, 1),
    node_api: round(p50.api - p50.connection, 1),
  };
  for (const [k, v] of Object.entries(p50)) log(`  ${k.padEnd(12)} p50 ${v.toFixed(1)} us`);
  for (const [k, v] of Object.entries(added)) log(`  + ${k.padEnd(22)} ${v.toFixed(1)} us`);
  return { p50_us: p50, added_us: added };
}

// -- measurement helpers ----------------------------------------------------------------

/** Run each function `iters` times in total, alternating between them in `rounds` blocks
 * (in reverse order every other round, so no function always follows the same one). */
async function interleaved<K extends string>(fns: Record<K, () => Promise<unknown>>, iters: number, rounds: number, warmup: number): Promise<Record<K, number[]>> {
  const keys = Object.keys(fns) as K[];
  const out = {} as Record<K, number[]>;
  for (const k of keys) {
    out[k] = [];
    for (let i = 0; i < warmup; i++) await fns[k]();
  }
  const per = Math.ceil(iters / rounds);
  for (let r = 0; r < rounds; r++) {
    for (const k of r % 2 === 0 ? keys : [...keys].reverse()) {
      const fn = fns[k];
      const s = out[k];
      for (let i = 0; i < per && s.length < iters; i++) {
        const t = performance.now();
        await fn();
        s.push((performance.now() - t) * 1000);
      }
    }
  }
  return out;
}

/** Milliseconds per call of each function, alternating between them rep by rep. */
async function timedReps<K extends string>(fns: Record<K, () => Promise<unknown>>, reps: number, warmup: number): Promise<Record<K, number[]>> {
  const keys = Object.keys(fns) as K[];
  const out = {} as Record<K, number[]>;
  for (const k of keys) out[k] = [];
  for (let r = 0; r < warmup + reps; r++) {
    for (const k of keys) {
      const t = performance.now();
      await fns[k]();
      if (r >= warmup) out[k].push(performance.now() - t);
    }
  }
  return out;
}

function pct(samples: number[], q: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? Number.NaN;
}
function median(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
const round = (v: number, digits: number) => Number(v.toFixed(digits));
const ms = (s: number[]) => `${median(s).toFixed(1)} ms`.padEnd(10);
const log = (line: string) => process.stderr.write(`bench bridge: ${line}\n`);

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : Math.max(1, Number.parseInt(v, 10) || fallback);
}

function zeromqJsVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(HERE, "..", "node_modules", "zeromq", "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "?";
  } catch {
    return "?";
  }
}

// -- baselines --------------------------------------------------------------------------

interface LineReply {
  id?: number;
  result?: { bytes?: number; b64?: string; error?: string };
}

/** A Python child speaking JSON lines over stdin/stdout (bench/stdio_echo.py). */
class JsonLinesChild {
  private readonly proc: ChildProcess;
  private chunks: Buffer[] = [];
  private readonly waiters: ((line: Buffer) => void)[] = [];
  private nextId = 0;

  constructor(python: string, script: string) {
    this.proc = spawn(python, [script], { stdio: ["pipe", "pipe", "inherit"] });
    this.proc.stdout?.on("data", (d: Buffer) => this.onData(d));
    this.proc.on("exit", () => {
      for (const w of this.waiters.splice(0)) w(Buffer.from('{"result":{"error":"stdio child exited"}}'));
    });
  }

  request(msg: Record<string, unknown>): Promise<LineReply> {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      this.waiters.push((line) => resolve(JSON.parse(line.toString("utf8")) as LineReply));
      this.proc.stdin?.write(`${JSON.stringify({ id, ...msg })}\n`);
    });
  }

  private onData(d: Buffer): void {
    let start = 0;
    for (let nl = d.indexOf(10); nl !== -1; nl = d.indexOf(10, start)) {
      this.chunks.push(d.subarray(start, nl));
      const line = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      this.chunks = [];
      this.waiters.shift()?.(line);
      start = nl + 1;
    }
    if (start < d.length) this.chunks.push(d.subarray(start));
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.stdin?.end(`${JSON.stringify({ op: "quit" })}\n`);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }
}

/** A bare Unix-domain stream socket echoing bytes (bench/uds_echo.py): the kernel's floor. */
class UdsEcho {
  private waiter: (() => void) | undefined;
  private readonly msg = Buffer.alloc(64, 1);

  private constructor(
    private readonly proc: ChildProcess,
    private readonly sock: Socket,
    private readonly dir: string,
  ) {
    sock.on("data", () => {
      const w = this.waiter;
      this.waiter = undefined;
      w?.();
    });
  }

  static async start(python: string): Promise<UdsEcho> {
    const dir = mkdtempSync(join(tmpdir(), "ctsft-bench-"));
    const path = join(dir, "uds");
    const proc = spawn(python, [join(HERE, "uds_echo.py"), path], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      proc.stdout?.once("data", () => resolve());
      proc.once("exit", (code) => reject(new Error(`bench/uds_echo.py exited with code ${code}`)));
    });
    const sock = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", resolve);
      sock.once("error", reject);
    });
    return new UdsEcho(proc, sock, dir);
  }

  /** One 64-byte round trip (a 64-byte echo arrives in one chunk on a local stream socket). */
  ping(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.sock.write(this.msg);
    });
  }

  async close(): Promise<void> {
    const exited = this.proc.exitCode === null && this.proc.signalCode === null ? new Promise((r) => this.proc.once("exit", r)) : Promise.resolve();
    this.sock.end();
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A bare pyzmq ROUTER (bench/raw_zmq.py) and a bare zeromq.js DEALER: no ctsft code at all. */
class RawZmq {
  private constructor(
    private readonly proc: ChildProcess,
    private readonly sock: Dealer,
    private readonly dir: string,
    readonly versions: { pyzmq: string; libzmq: string },
  ) {}

  static async start(python: string, nbytes: number): Promise<RawZmq> {
    const dir = mkdtempSync(join(tmpdir(), "ctsft-bench-"));
    const endpoint = `ipc://${dir}/raw`;
    const proc = spawn(python, [join(HERE, "raw_zmq.py"), endpoint, String(nbytes)], { stdio: ["ignore", "pipe", "inherit"] });
    const ready = await new Promise<string>((resolve, reject) => {
      let out = "";
      proc.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0] as string);
      });
      proc.once("exit", (code) => reject(new Error(`bench/raw_zmq.py exited with code ${code}`)));
    });
    // "ready pyzmq=X libzmq=Y"
    const field = (k: string) => new RegExp(`${k}=(\\S+)`).exec(ready)?.[1] ?? "?";
    const sock = new Dealer({ linger: 0 });
    sock.connect(endpoint);
    return new RawZmq(proc, sock, dir, { pyzmq: field("pyzmq"), libzmq: field("libzmq") });
  }

  private async roundTrip(frames: Buffer[]): Promise<Buffer[]> {
    await this.sock.send(frames);
    return this.sock.receive();
  }

  async ping(): Promise<void> {
    await this.roundTrip([Buffer.from("ping")]);
  }

  async sink(data: Buffer): Promise<void> {
    await this.roundTrip([Buffer.from("sink"), data]);
  }

  async source(nbytes: number): Promise<void> {
    const [, data] = await this.roundTrip([Buffer.from("source")]);
    if (data?.length !== nbytes) throw new Error(`raw source sent ${data?.length} bytes`);
    void new Float32Array(data.buffer, data.byteOffset, data.length / 4); // what a caller would do
  }

  async echo(data: Buffer): Promise<void> {
    const [, back] = await this.roundTrip([Buffer.from("echo"), data]);
    if (back?.length !== data.length) throw new Error("raw echo lost bytes");
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      await Promise.race([this.roundTrip([Buffer.from("quit")]), new Promise((r) => setTimeout(r, 1000))]).catch(() => undefined);
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    this.sock.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
