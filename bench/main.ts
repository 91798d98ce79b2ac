/**
 * Benchmark dispatcher: `npm run bench -- <name> [--json] [--flag ...]`.
 *
 * Each benchmark is a module in bench/ exporting `run(options): Promise<BenchResult>`. Progress
 * goes to stderr; stdout gets a human-readable table, or with `--json` one JSON object as the
 * last stdout line (figures measured in this run only). Other `--flags` go to the benchmark
 * (e.g. `bridge --breakdown`).
 */
/** What a benchmark returns: flat figures (numbers, strings, booleans, small objects). */
export type BenchResult = Record<string, unknown>;

/** What a benchmark receives: the flags given after its name, without `--json`. */
export interface BenchOptions {
  flags: Set<string>;
}

interface Bench {
  describe: string;
  flags: Record<string, string>;
  load: () => Promise<{ run: (options: BenchOptions) => Promise<BenchResult> }>;
}

const BENCHES: Record<string, Bench> = {
  bridge: {
    describe: "the TS <-> Python bridge: round trip, 64 MiB tensors, streams, vs stdio JSON and bare ZeroMQ",
    flags: { "--breakdown": "also time each layer of a round trip (unix socket, bare ZeroMQ, server, connection, API)" },
    load: () => import("./bridge.ts"),
  },
  scoring: {
    describe: "wall time of the cdt, ablation and attribution scorers vs one forward pass, same model/data/heads",
    flags: {},
    load: () => import("./scoring.ts"),
  },
  training: {
    describe: "step time and gradient+optimizer memory of full, ctsft/hook, ctsft/delta and lora on one model and batch",
    flags: {},
    load: () => import("./training.ts"),
  },
  transfer: {
    describe: "NusaX ind -> jav with 100 examples (needs CTSFT_NUSAX_DIR): every method, 3 seeds, forgetting and paired differences",
    flags: {},
    load: () => import("./transfer.ts"),
  },
  serve: {
    describe: "predict and generate through the SDK vs plain transformers in Python, delta swap vs checkpoint load, mixed-delta batch vs one call per delta",
    flags: {},
    load: () => import("./serve.ts"),
  },
  scale: {
    describe: "step time of 1 rank vs 2 gloo ranks (DDP, FSDP2) at the same per-rank batch, and the 6-run grid serial vs on 2 Ray workers",
    flags: { "--skip-grid": "only the ranks part (the grid needs the Ray extra and takes minutes)" },
    load: () => import("./scale.ts"),
  },
  faithfulness: {
    describe: "NusaX ind (needs CTSFT_NUSAX_DIR): Spearman cdt vs ablation, accuracy with the circuit vs random heads ablated",
    flags: {},
    load: () => import("./faithfulness.ts"),
  },
};

function usage(): never {
  process.stderr.write("usage: npm run bench -- <name> [--json] [--flag ...]\n\nbenchmarks:\n");
  for (const [name, b] of Object.entries(BENCHES)) {
    process.stderr.write(`  ${name.padEnd(10)} ${b.describe}\n`);
    for (const [flag, what] of Object.entries(b.flags)) process.stderr.write(`  ${"".padEnd(10)}   ${flag}: ${what}\n`);
  }
  process.exit(2);
}

const args = process.argv.slice(2);
const json = args.includes("--json");
const names = args.filter((a) => !a.startsWith("--"));
if (names.length !== 1) usage();
const name = names[0] as string;
const bench = BENCHES[name];
if (bench === undefined) {
  process.stderr.write(`unknown benchmark ${JSON.stringify(name)}\n`);
  usage();
}
const flags = new Set(args.filter((a) => a.startsWith("--") && a !== "--json"));
for (const f of flags) {
  if (!(f in bench.flags)) {
    process.stderr.write(`${name}: unknown flag ${f}\n`);
    usage();
  }
}

const started = performance.now();
const result = await (await bench.load()).run({ flags });
process.stderr.write(`bench ${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
if (json) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const width = Math.max(...Object.keys(result).map((k) => k.length));
  for (const [k, v] of Object.entries(result)) process.stdout.write(`${k.padEnd(width)}  ${typeof v === "object" ? JSON.stringify(v) : String(v)}\n`);
}
// Children and sockets are closed by the benchmark; do not wait on anything it forgot.
process.exit(0);
