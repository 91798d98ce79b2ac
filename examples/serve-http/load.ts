// A load generator for server.ts: N /classify requests, C at a time, languages in turn;
// prints requests per second and latency percentiles (and what /health says about gathering).
//
//   npx tsx examples/serve-http/load.ts http://127.0.0.1:8080 --langs jav,sun,src [--requests 512] [--concurrency 64] [--text "…"]
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    langs: { type: "string" },
    requests: { type: "string", default: "512" },
    concurrency: { type: "string", default: "64" },
    text: { type: "string", multiple: true },
  },
});
const url = positionals[0];
if (url === undefined || values.langs === undefined) {
  process.stderr.write("usage: load.ts URL --langs a,b,… [--requests N] [--concurrency C] [--text T…]\n");
  process.exit(2);
}
const langs = values.langs.split(",");
const texts = values.text ?? ["the food was good and the service was great", "not good at all, a bad place", "it was fine, nothing special"];
const total = Number(values.requests);
const concurrency = Number(values.concurrency);

async function health(): Promise<{ classify: { texts: number; calls: number } }> {
  return (await (await fetch(`${url}/health`)).json()) as { classify: { texts: number; calls: number } };
}

const before = (await health()).classify;
const latencies: number[] = [];
let next = 0;
let failed = 0;
async function worker(): Promise<void> {
  for (let i = next++; i < total; i = next++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/classify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: texts[i % texts.length], lang: langs[i % langs.length] }),
    });
    await res.arrayBuffer();
    if (res.status !== 200) failed++;
    latencies.push(performance.now() - t0);
  }
}
const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (performance.now() - started) / 1000;
const after = (await health()).classify;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]?.toFixed(1);
process.stdout.write(
  `${JSON.stringify({
    requests: total,
    concurrency,
    failed,
    req_s: total / seconds,
    p50_ms: Number(pct(50)),
    p95_ms: Number(pct(95)),
    predict_calls: after.calls - before.calls,
    texts_per_call: (after.texts - before.texts) / Math.max(1, after.calls - before.calls),
  })}\n`,
);
