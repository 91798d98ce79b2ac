// A small HTTP service on node:http: one base model in memory, one CT-SFT delta per language,
// each request routed to its language's delta. Concurrent /classify requests are gathered
// into one mixed-delta predict call (each row with its own delta), which is exact: the base
// weights never change, the delta is added per row.
//
//   npx tsx examples/serve-http/server.ts --config serve.json
//   npx tsx examples/serve-http/server.ts --model DIR --lang jav=DIR --lang sun=DIR [--lang src=base]
//                                         [--host 127.0.0.1] [--port 8080] [--no-batch] [--max-batch 64]
//
// serve.json: {"model": "theta1", "languages": {"jav": "jav/ctsft-delta", "sun": "sun", "src": null}, "port": 8080}
// (a language mapped to null, or to "base" on the command line, uses the base model).
//
//   POST /classify {"text": "...", "lang": "jav"}                  → {"label", "probs": {label: p}, "lang"}
//   POST /generate {"prompt": "...", "lang"?: "jav", "maxNewTokens"?: 32}
//        → text/event-stream: `event: token` {"text"} per decoded piece, then `event: done` {"text", "tokens", "finishReason"}
//   GET  /health                                     → {"ok", "languages", "inFlight", "classify": {"texts", "calls"}}
//
// Bad input is a 400 with {"error", "field"}. SIGTERM/SIGINT: stop accepting connections,
// finish the requests in flight, close the runtime, exit 0.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { BadRequestError, CancelledError, type ModelHandle, type Prediction, Runtime } from "../../src/index.ts";

// ---------------------------------------------------------------------------------------
// Configuration: a JSON file, or the same on the command line.

const Config = z
  .object({
    /** The base checkpoint (θ1) every delta was trained from. */
    model: z.string().min(1),
    /** Language → delta folder (a ctsft-delta folder or a checkpoint keeping one); null: the base model. */
    languages: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/), z.string().min(1).nullable()),
    host: z.string().default("127.0.0.1"),
    /** 0: any free port (the address is printed). */
    port: z.number().int().min(0).max(65535).default(8080),
    /** Gather concurrent /classify requests into one predict call. */
    batch: z.boolean().default(true),
    /** At most this many texts per gathered predict call. */
    maxBatch: z.number().int().min(1).default(64),
    device: z.string().default("auto"),
  })
  .strict();
type Config = z.output<typeof Config>;

function readConfig(argv: string[]): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      model: { type: "string" },
      lang: { type: "string", multiple: true },
      host: { type: "string" },
      port: { type: "string" },
      "no-batch": { type: "boolean" },
      "max-batch": { type: "string" },
      device: { type: "string" },
    },
  });
  let raw: Record<string, unknown> = {};
  let base = process.cwd();
  if (values.config !== undefined) {
    raw = JSON.parse(readFileSync(values.config, "utf8")) as Record<string, unknown>;
    base = dirname(resolve(values.config)); // paths in the file are relative to it
  }
  if (values.model !== undefined) raw.model = values.model;
  if (values.lang !== undefined) {
    raw.languages = Object.fromEntries(
      values.lang.map((kv) => {
        const eq = kv.indexOf("=");
        if (eq < 1) throw new Error(`--lang takes LANG=DIR (or LANG=base), got ${JSON.stringify(kv)}`);
        const dir = kv.slice(eq + 1);
        return [kv.slice(0, eq), dir === "base" ? null : dir];
      }),
    );
  }
  if (values.host !== undefined) raw.host = values.host;
  if (values.port !== undefined) raw.port = Number(values.port);
  if (values["no-batch"]) raw.batch = false;
  if (values["max-batch"] !== undefined) raw.maxBatch = Number(values["max-batch"]);
  if (values.device !== undefined) raw.device = values.device;
  const config = Config.parse(raw);
  config.model = resolve(base, config.model);
  for (const [lang, dir] of Object.entries(config.languages)) config.languages[lang] = dir === null ? null : resolve(base, dir);
  return config;
}

// ---------------------------------------------------------------------------------------
// Request bodies.

const ClassifyBody = z.object({ text: z.string().min(1), lang: z.string().min(1) }).strict();
const GenerateBody = z.object({ prompt: z.string().min(1), lang: z.string().min(1).optional(), maxNewTokens: z.number().int().min(1).max(512).default(32) }).strict();

/** A client error: answered with its status and `{error, field}`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

const MAX_BODY = 1 << 20;

async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`, "body");
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "body is not JSON", "body");
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue?.code === "unrecognized_keys" ? issue.keys[0] : issue?.path.join(".");
  throw new HttpError(400, issue?.message ?? "invalid body", field || "body");
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(`${JSON.stringify(body)}\n`);
}

// ---------------------------------------------------------------------------------------
// Classification, gathered: requests that arrive while a predict call runs go into the next
// one together (no timer: a lone request is sent at once; under load the batch grows).

interface Waiting {
  text: string;
  delta: string | null;
  resolve: (p: { labels: string[]; prediction: Prediction }) => void;
  reject: (e: unknown) => void;
}

class Classifier {
  private queue: Waiting[] = [];
  private running = false;
  /** Texts classified, and predict calls made for them (fewer calls: requests were gathered). */
  readonly stats = { texts: 0, calls: 0 };

  constructor(
    private readonly model: ModelHandle,
    private readonly config: Config,
  ) {}

  classify(text: string, delta: string | null): Promise<{ labels: string[]; prediction: Prediction }> {
    if (!this.config.batch) {
      this.stats.calls++;
      this.stats.texts++;
      return this.model.predict([text], { delta: [delta] }).then((r) => ({ labels: r.labels, prediction: r.predictions[0] as Prediction }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ text, delta, resolve, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.config.maxBatch);
      this.stats.calls++;
      this.stats.texts += batch.length;
      try {
        const r = await this.model.predict(
          batch.map((w) => w.text),
          { delta: batch.map((w) => w.delta), batchSize: this.config.maxBatch },
        );
        batch.forEach((w, i) => w.resolve({ labels: r.labels, prediction: r.predictions[i] as Prediction }));
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
    }
    this.running = false;
  }
}

// ---------------------------------------------------------------------------------------
// The service.

const config = readConfig(process.argv.slice(2));
const rt = await Runtime.start({ device: config.device });
const model = await rt.models.load({ source: config.model });
for (const [lang, dir] of Object.entries(config.languages)) if (dir !== null) await model.deltas.load(lang, dir);
const languages = Object.keys(config.languages);
const classifier = new Classifier(model, config);

/** The language's delta name (null: the base model); an unknown language is the client's error. */
function deltaOf(lang: string): string | null {
  if (!(lang in config.languages)) throw new HttpError(400, `unknown lang ${JSON.stringify(lang)}; this service knows ${languages.join(", ")}`, "lang");
  return config.languages[lang] === null ? null : lang;
}

async function classify(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJson(req, ClassifyBody);
  const { labels, prediction } = await classifier.classify(body.text, deltaOf(body.lang));
  sendJson(res, 200, { label: prediction.label, probs: Object.fromEntries(labels.map((l, i) => [l, prediction.probs[i]])), lang: body.lang, truncated: prediction.truncated });
}

async function generate(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJson(req, GenerateBody);
  const delta = body.lang === undefined ? undefined : deltaOf(body.lang);
  // A client that goes away stops its generation (within one token).
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort(new Error("the client disconnected"));
  });
  const stream = model.generate(body.prompt, { maxNewTokens: body.maxNewTokens, delta: delta ?? undefined, signal: abort.signal });
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const event = (name: string, data: unknown) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  try {
    for await (const e of stream) event("token", { text: e.text });
    const out = (await stream.result).body.outputs[0];
    event("done", out);
  } catch (e) {
    if (abort.signal.aborted) return; // nobody is listening
    event("error", { error: (e as Error).message });
  }
  res.end();
}

let inFlight = 0;
let stopping = false;
let drained: (() => void) | undefined;

const server = createServer((req, res) => {
  if (stopping) {
    res.setHeader("connection", "close");
    sendJson(res, 503, { error: "shutting down", field: null });
    return;
  }
  inFlight++;
  res.on("close", () => {
    if (--inFlight === 0) drained?.();
  });
  route(req, res).catch((e: unknown) => {
    const known = e instanceof HttpError ? e : e instanceof BadRequestError ? new HttpError(400, e.message, e.path ?? null) : undefined;
    if (!known && !(e instanceof CancelledError)) process.stderr.write(`serve-http: ${req.method} ${req.url}: ${(e as Error).stack ?? String(e)}\n`);
    if (res.headersSent) res.end();
    else if (known) sendJson(res, known.status, { error: known.message, field: known.field });
    else sendJson(res, 500, { error: (e as Error).message, field: null });
  });
});

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  if (path === "/health" && req.method === "GET") return sendJson(res, 200, { ok: true, languages, inFlight: inFlight - 1, classify: classifier.stats });
  if (path === "/classify" && req.method === "POST") return classify(req, res);
  if (path === "/generate" && req.method === "POST") return generate(req, res);
  if (path === "/health" || path === "/classify" || path === "/generate") throw new HttpError(405, `${req.method} is not allowed on ${path}`);
  throw new HttpError(404, `no route ${path}`);
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`${signal}: stopping (${inFlight} in flight)\n`);
  const closed = new Promise<void>((ok) => server.close(() => ok())); // stop accepting; idle keep-alive connections close
  if (inFlight > 0) await new Promise<void>((ok) => (drained = ok));
  server.closeAllConnections(); // every request is answered: what is left are idle keep-alive sockets
  await closed;
  await rt.close();
  process.stdout.write("stopped\n");
}
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void shutdown(signal));

server.listen(config.port, config.host, () => {
  const a = server.address();
  const port = typeof a === "object" && a !== null ? a.port : config.port;
  process.stdout.write(`listening on http://${config.host}:${port} (languages: ${languages.join(", ")}; batching ${config.batch ? `on, up to ${config.maxBatch}` : "off"})\n`);
});
