// examples/serve-http/server.ts as a user runs it (a child Node process on 127.0.0.1, any free
// port), with a real tiny base model and two real CT-SFT deltas: concurrent mixed-language
// /classify requests answer exactly what the SDK predicts with the same deltas (and are gathered
// into fewer predict calls), /generate streams server-sent events equal to the SDK's generate,
// bad input is a 400 naming the field, and SIGTERM finishes the request in flight, then exits 0.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ModelHandle, Runtime } from "../../../src/index.ts";
import { type Adapted, buildAdapted, closeTo } from "../helpers/adapted.ts";

const ROOT = resolve(new URL("../../..", import.meta.url).pathname);
const SERVER = join(ROOT, "examples", "serve-http", "server.ts");

const TEXTS = ["good great nice", "bad awful", "fine ok", "the movie was not good", "great", "terrible not nice at all", "nice", "not bad"];
/** Language → delta name on the SDK side (src: the base model). */
const LANGS = { src: null, easy: "easy", hard: "hard" } as const;

interface Sse {
  event: string;
  data: unknown;
}

/** POST a JSON body and read the server-sent events of the answer; `onEvent` sees each as it arrives. */
async function sse(url: string, body: unknown, onEvent?: (e: Sse) => void): Promise<{ status: number; events: Sse[] }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const events: Sse[] = [];
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") as unknown;
      events.push({ event, data });
      onEvent?.({ event, data });
    }
  }
  return { status: res.status, events };
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("examples/serve-http", { timeout: 180_000 }, () => {
  let rt: Runtime;
  let dir: string;
  let fx: Adapted;
  let sdk: ModelHandle;
  let child: ChildProcess;
  let url: string;
  let stdout = "";
  let stderr = "";

  before(async () => {
    rt = await Runtime.start({ device: "cpu" });
    dir = mkdtempSync(join(tmpdir(), "ctsft-serve-http-"));
    fx = await buildAdapted(rt, dir);
    sdk = await rt.models.load({ source: fx.theta1 });
    await sdk.deltas.load("easy", fx.deltas.easy as string);
    await sdk.deltas.load("hard", fx.deltas.hard as string);
    // Paths in the config are relative to it; one delta as its folder, one as the checkpoint keeping it.
    const config = join(dir, "serve.json");
    writeFileSync(config, JSON.stringify({ model: "theta1", languages: { src: null, easy: "theta2-easy/ctsft-delta", hard: "theta2-hard" }, port: 0, device: "cpu" }));
    child = spawn(process.execPath, ["--import", "tsx", SERVER, "--config", config], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    url = await new Promise<string>((ok, fail) => {
      child.stdout?.on("data", (d: Buffer) => {
        stdout += d.toString();
        const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)/m.exec(stdout);
        if (m) ok(m[1] as string);
      });
      child.once("exit", (code) => fail(new Error(`the server exited with ${code} before listening\n${stdout}\n${stderr}`)));
    });
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await rt?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("GET /health lists the languages", async () => {
    const res = await fetch(`${url}/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { ok: boolean; languages: string[] };
    assert.deepEqual(body.languages, ["src", "easy", "hard"]);
  });

  it("concurrent mixed-language /classify answers equal the SDK's predictions with the same deltas", async () => {
    const requests = TEXTS.flatMap((text) => Object.keys(LANGS).map((lang) => ({ text, lang: lang as keyof typeof LANGS })));
    const before = ((await (await fetch(`${url}/health`)).json()) as { classify: { calls: number; texts: number } }).classify;
    const answers = await Promise.all(requests.map((r) => post(`${url}/classify`, r)));
    const after = ((await (await fetch(`${url}/health`)).json()) as { classify: { calls: number; texts: number } }).classify;
    const want = await sdk.predict(
      requests.map((r) => r.text),
      { delta: requests.map((r) => LANGS[r.lang]) },
    );
    answers.forEach((a, i) => {
      assert.equal(a.status, 200, JSON.stringify(a.json));
      const p = want.predictions[i];
      assert.ok(p);
      assert.equal(a.json.label, p.label, `request ${i} ${JSON.stringify(requests[i])}`);
      assert.equal(a.json.lang, requests[i]?.lang);
      const probs = want.labels.map((l) => (a.json.probs as Record<string, number>)[l] as number);
      assert.ok(closeTo(probs, p.probs), `request ${i}: ${probs} vs ${p.probs}`);
    });
    assert.equal(after.texts - before.texts, requests.length);
    assert.ok(after.calls - before.calls < requests.length, `${requests.length} concurrent requests were gathered into ${after.calls - before.calls} predict calls`);
    // The deltas matter: some text is labelled differently by some language.
    assert.ok(
      TEXTS.some((_, t) => new Set(Object.keys(LANGS).map((_, l) => JSON.stringify(answers[t * 3 + l]?.json.probs))).size > 1),
      "the languages' answers differ",
    );
  });

  it("POST /generate streams server-sent token events equal to the SDK's generate", async () => {
    const { status, events } = await sse(`${url}/generate`, { prompt: "good great", lang: "easy", maxNewTokens: 12 });
    assert.equal(status, 200);
    const done = events.at(-1);
    assert.equal(done?.event, "done");
    const tokens = events.filter((e) => e.event === "token");
    assert.ok(tokens.length >= 1);
    const out = done?.data as { text: string; tokens: number; finishReason: string };
    assert.equal(tokens.map((e) => (e.data as { text: string }).text).join(""), out.text);
    const want = (await sdk.generate("good great", { maxNewTokens: 12, delta: "easy" }).finalResult()).body.outputs[0];
    assert.deepEqual(out, want);
  });

  it("bad input is a 400 naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ lang: "easy" }, "text"],
      [{ text: "", lang: "easy" }, "text"],
      [{ text: "good", lang: "klingon" }, "lang"],
      [{ text: "good", lang: "easy", extra: 1 }, "extra"],
      ["{not json", "body"],
    ];
    for (const [body, field] of cases) {
      const r = await post(`${url}/classify`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.field, field, JSON.stringify(r.json));
      assert.equal(typeof r.json.error, "string");
    }
    const g = await post(`${url}/generate`, { prompt: "good", maxNewTokens: 0 });
    assert.equal(g.status, 400);
    assert.equal(g.json.field, "maxNewTokens");
    assert.equal((await fetch(`${url}/nowhere`)).status, 404);
  });

  it("SIGTERM: the generation in flight finishes, new connections are refused, exit 0", async () => {
    let signalled = false;
    const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)));
    const { events } = await sse(`${url}/generate`, { prompt: "good", maxNewTokens: 200 }, (e) => {
      if (e.event === "token" && !signalled) {
        signalled = true;
        child.kill("SIGTERM");
      }
    });
    assert.ok(signalled);
    const done = events.at(-1);
    assert.equal(done?.event, "done", JSON.stringify(done));
    assert.equal((done?.data as { tokens: number }).tokens, 200, "the request in flight ran to its end");
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /^SIGTERM: stopping \(1 in flight\)$/m);
    assert.match(stdout, /^stopped$/m);
    await assert.rejects(fetch(`${url}/health`), "nothing listens any more");
  });
});
