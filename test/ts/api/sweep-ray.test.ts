// The Ray executor against a real local Ray cluster (2 CPUs on 127.0.0.1, started and stopped
// here) and real runtimes: `adapt`'s grid run through `executor: { kind: "ray" }` gives the same
// per-run numbers as the serial executor on the same θ1 and seeds, every run executes in a
// Ray actor with the CPU Ray assigned it, a method configured to diverge fails in both
// executors alike while the other runs complete, a worker killed mid-grid costs only its own
// run, and progress arrives as runs finish.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AdaptResult, runAdapt } from "../../../src/api/adapt.ts";
import type { CompareRun } from "../../../src/api/compare.ts";
import { BadRequestError, RayUnavailableError, Runtime, sweep } from "../../../src/index.ts";
import type { AdaptConfigInput } from "../../../src/schema/adapt.ts";
import { type LocalRayCluster, startLocalRayCluster } from "../helpers/ray-cluster.ts";

// Agreement between executors. The serial runtime computes with torch's default thread count,
// a Ray worker with the one CPU Ray gave it (OMP_NUM_THREADS=1): summation orders differ, so
// losses agree to float32 rounding, not bit for bit.
const LOSS_TOL = 1e-4;

describe("sweeps on a local Ray cluster", () => {
  let cluster: LocalRayCluster;
  let rt: Runtime;
  let dir: string;
  let base: AdaptConfigInput;

  before(async () => {
    cluster = await startLocalRayCluster(2);
    rt = await Runtime.start();
    dir = mkdtempSync(join(tmpdir(), "ctsft-sweep-"));
    const files = (await rt.data.synthetic({ out: join(dir, "data"), languages: { src: 0, easy: 0.2 }, nTrain: 200, nValid: 48, nTest: 120 })).files as Record<string, Record<string, string>>;
    const f = (lang: string, split: string) => ({ path: files[lang]![split]! });
    const theta0 = (await rt.models.create({ family: "llama", layers: 2, heads: 4, kvHeads: 2, dModel: 32, corpus: [files.src!.train!, files.easy!.train!], vocab: 600, out: join(dir, "theta0") })).path;
    const model = await rt.models.load({ source: theta0 });
    await rt.train({ model, data: f("src", "train"), epochs: 2, lr: 3e-3, batchSize: 16 }).finalResult();
    const theta1 = (await model.save(join(dir, "theta1"))).path;
    await model.release();
    base = {
      model: theta1,
      competence: false,
      proxy: { name: "src", train: f("src", "train"), valid: f("src", "valid"), test: f("src", "test") },
      targets: [{ name: "easy", train: { ...f("easy", "train"), limit: 60 }, test: f("easy", "test") }],
      discovery: { perClass: 8 },
      scorer: "attribution",
      methods: ["full", "ctsft", "random", "norms"],
      seeds: [0, 1],
      // norms at lr 1e30 passes the config's checks and diverges at its first step: a run that
      // fails at train time, in whichever worker runs it.
      training: { epochs: 1, batchSize: 16, lr: { norms: 1e30 } },
      out: join(dir, "serial"),
    };
  });

  after(async () => {
    await rt?.close();
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs adapt's grid in Ray actors with the serial executor's numbers; the diverging runs fail alike, the rest complete", { timeout: 600_000 }, async (t) => {
    const serial = await runAdapt(rt, base);
    const progress: [number, number][] = [];
    const lines: string[] = [];
    const ray = await runAdapt(rt, { ...base, out: join(dir, "ray"), executor: { kind: "ray", address: cluster.address, resources: { numCpus: 1 }, root: dir } }, {
      log: (l) => lines.push(l),
      onRun: (done, total) => progress.push([done, total]),
    });

    // Where the runs executed: two Ray actors, one CPU each as Ray assigned it, not the local runtime.
    assert.equal(serial.executor.kind, "serial");
    assert.equal(ray.executor.kind, "ray");
    assert.equal(ray.executor.workers.length, 2);
    for (const w of ray.executor.workers) {
      assert.match(w.id, /^ray:/);
      assert.deepEqual(w.resources, { CPU: 1 });
      assert.notEqual(w.pid, rt.hello.pid);
    }
    const serialRuns = runsOf(serial);
    const rayRuns = runsOf(ray);
    assert.ok(serialRuns.every((r) => r.worker === `process:${rt.hello.pid}`));
    const rayPids = new Set(rayRuns.map((r) => r.worker));
    assert.deepEqual([...rayPids].sort(), ray.executor.workers.map((w) => w.id).sort(), "both workers ran cells");

    // The same grid, cell for cell: 3 methods × 2 seeds completed, norms failed on both seeds.
    const key = (r: { target: string; method: string; seed: number }) => `${r.target}/${r.method}/${r.seed}`;
    assert.deepEqual(rayRuns.map(key), serialRuns.map(key), "runs in grid order");
    assert.deepEqual(serialRuns.map(key), ["easy/full/0", "easy/ctsft/0", "easy/random/0", "easy/full/1", "easy/ctsft/1", "easy/random/1"]);
    let maxLossDiff = 0;
    for (const [i, s] of serialRuns.entries()) {
      const r = rayRuns[i]!;
      assert.ok(s.losses.length > 0 && r.losses.length === s.losses.length, key(s));
      for (const [j, loss] of s.losses.entries()) maxLossDiff = Math.max(maxLossDiff, Math.abs(r.losses[j]! - loss));
      for (const [j, loss] of s.losses.entries()) assert.ok(Math.abs(r.losses[j]! - loss) <= LOSS_TOL * Math.max(1, Math.abs(loss)), `${key(s)} step ${j}: ray ${r.losses[j]} vs serial ${loss}`);
      assert.equal(r.targetAcc, s.targetAcc, `${key(s)} target accuracy`);
      assert.equal(r.sourceAccAfter, s.sourceAccAfter, `${key(s)} source accuracy`);
      assert.equal(r.paramsFraction, s.paramsFraction);
      assert.deepEqual(r.heads, s.heads, `${key(s)} heads (random circuits are drawn in the worker, by seed)`);
      assert.ok(r.preservation && s.preservation && Math.abs((r.preservation.spearman ?? 0) - (s.preservation.spearman ?? 0)) < 1e-6);
    }
    t.diagnostic(`largest loss difference ray vs serial: ${maxLossDiff.toExponential(2)} (tolerance ${LOSS_TOL} relative); grid ${serial.seconds.toFixed(1)} s serial, ${ray.seconds.toFixed(1)} s ray (whole adapt, incl. scoring θ1 and the workers' start)`);
    for (const result of [serial, ray]) {
      assert.deepEqual(result.failed.map(key), ["easy/norms/0", "easy/norms/1"]);
      for (const f of result.failed) {
        assert.equal(f.error.name, "NonFiniteError");
        assert.equal(f.error.code, "non_finite");
        assert.match(f.error.message, /training diverged at step \d+/);
        assert.ok(result.warnings.some((w) => w.startsWith(`easy seed ${f.seed} norms failed (NonFiniteError): training diverged`)));
      }
      // Rows for what completed; the report is written and names the failures.
      assert.deepEqual(result.methods.map((m) => m.name), ["full", "ctsft", "random"]);
      assert.ok(result.methods.every((m) => m.seeds === 2));
      const md = readFileSync(result.report.markdown, "utf8");
      assert.match(md, /easy seed 1 norms failed \(NonFiniteError\)/);
      const saved = JSON.parse(readFileSync(join(result.out, "results.json"), "utf8"));
      assert.equal(saved.runs.length, 6);
      assert.equal(saved.failed.length, 2);
    }
    assert.deepEqual(
      ray.methods.map((m) => [m.name, m.target_acc, m.forgetting, m.target_vs_full]),
      serial.methods.map((m) => [m.name, m.target_acc, m.forgetting, m.target_vs_full]),
    );

    // Progress: one call per finished or failed run, as they finish, and the workers named.
    assert.deepEqual(progress, Array.from({ length: 8 }, (_, i) => [i + 1, 8]));
    assert.ok(lines.some((l) => /^ray: worker \d up on .* \(pid \d+, CPU 1\)$/.test(l)), lines.join("\n"));
    assert.ok(lines.some((l) => /^warning: easy seed \d norms failed: training diverged/.test(l)));
    assert.ok(existsSync(join(dir, "ray", "report.html")));
  });

  it("the sweep API spreads cells over the workers and keeps the others' results when one throws", { timeout: 300_000 }, async () => {
    const seen: number[] = [];
    const r = await sweep(
      [0, 1, 2, 3, 4, 5],
      async (worker, cell) => {
        if (cell === 3) throw new BadRequestError("cell 3 is refused");
        await worker.ping();
        return { cell, pid: worker.hello.pid };
      },
      { executor: { kind: "ray", address: cluster.address, root: dir }, onCell: (o) => seen.push(o.index) },
    );
    assert.equal(r.executor, "ray");
    assert.deepEqual(r.outcomes.map((o) => o.index), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5]);
    const bad = r.outcomes[3]!;
    assert.ok(!bad.ok && bad.error.name === "BadRequestError" && bad.error.code === "bad_request" && bad.error.message === "cell 3 is refused");
    const pids = new Set(r.outcomes.flatMap((o) => (o.ok ? [o.value.pid] : [])));
    assert.deepEqual([...pids].sort(), r.workers.map((w) => w.pid).sort());
  });

  it("a worker killed mid-grid: its cell fails with RuntimeLostError, the other worker runs every remaining cell", { timeout: 300_000 }, async () => {
    const lines: string[] = [];
    const r = await sweep(
      [0, 1, 2, 3, 4, 5],
      async (worker, cell) => {
        // The actor's process, as Ray started it (this test's own cluster): gone without a word.
        if (cell === 1) process.kill(worker.hello.pid, "SIGKILL");
        await worker.ping();
        return worker.hello.pid;
      },
      { executor: { kind: "ray", address: cluster.address, workers: 2, root: dir }, log: (l) => lines.push(l) },
    );
    const lost = r.outcomes[1]!;
    assert.ok(!lost.ok && lost.error.name === "RuntimeLostError", JSON.stringify(lost));
    const survivors = r.outcomes.filter((o) => o.index !== 1);
    assert.ok(survivors.every((o) => o.ok), JSON.stringify(survivors));
    const alive = r.workers.find((w) => w.id !== lost.worker)!;
    assert.deepEqual(new Set(survivors.slice(1).map((o) => (o.ok ? o.value : 0))), new Set([alive.pid]), "cells 2-5 all ran on the surviving worker");
    assert.ok(lines.some((l) => l.startsWith(`ray: worker ${lost.worker} lost`)), lines.join("\n"));
  });

  it("refuses paths outside the workers' root, resources the cluster lacks and a Ray that is not installed, before any work", { timeout: 120_000 }, async () => {
    await assert.rejects(
      runAdapt(rt, { ...base, out: join(dir, "outside"), executor: { kind: "ray", address: cluster.address, root: join(dir, "data") } }),
      (e: unknown) => e instanceof BadRequestError && e.path === "executor.root" && /lies outside the Ray workers' root/.test(e.message),
    );
    // A GPU on a CPU-only cluster: the driver says there is no room, naming what was asked and what is there.
    await assert.rejects(
      sweep([1], async () => 1, { executor: { kind: "ray", address: cluster.address, resources: { numGpus: 1 }, root: dir } }),
      (e: unknown) => e instanceof BadRequestError && e.path === "executor.resources" && /no room for a worker with CPU 1, GPU 1 \(available: .*CPU 2/.test(e.message),
    );
    // A CTSFT_PYTHON has its own overlays: none installed for this one, so Ray counts as missing.
    const saved = process.env.CTSFT_PYTHON;
    process.env.CTSFT_PYTHON = join(dir, "no-such-python");
    try {
      await assert.rejects(
        sweep([1], async () => 1, { executor: { kind: "ray", address: cluster.address, root: dir } }),
        (e: unknown) => e instanceof RayUnavailableError && e instanceof BadRequestError && /ctsft setup --with ray/.test(e.message),
      );
    } finally {
      if (saved === undefined) delete process.env.CTSFT_PYTHON;
      else process.env.CTSFT_PYTHON = saved;
    }
  });
});

function runsOf(result: AdaptResult): CompareRun[] {
  return JSON.parse(readFileSync(join(result.out, "results.json"), "utf8")).runs;
}
