// CT-SFT and its baselines through the SDK against a real runtime: head-masked training,
// sparse delta artifacts (apply / revert / merge), LoRA via peft, and typed bad input.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { tinySetup } from "../../../bench/fixture.ts";
import { BadRequestError, type ModelHandle, Runtime } from "../../../src/index.ts";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const cli = async (...args: string[]) => JSON.parse((await promisify(execFile)(process.execPath, [BIN, ...args, "--json"])).stdout.trim().split("\n").at(-1) as string);

describe("CT-SFT training, artifacts and baselines", () => {
  let rt: Runtime;
  let dir: string;
  let files: Record<string, Record<string, string>>;
  let theta1: string;
  let circuit: string;
  const easy = () => ({ path: (files.easy as Record<string, string>).train as string, limit: 60 });
  const test = () => [{ path: (files.easy as Record<string, string>).test as string }];
  const logits = async (m: ModelHandle) =>
    (await rt.evaluate({ model: m, data: test(), predictions: true }).finalResult()).body.results[0]?.predictions?.map((p) => p.logits);

  before(async () => {
    rt = await Runtime.start();
    let model: ModelHandle;
    ({ dir, files, model } = await tinySetup(rt, { layers: 2, heads: 4, kvHeads: 2, dModel: 32, nTrain: 150 }));
    theta1 = (await model.save(join(dir, "theta1"))).path;
    const scores = join(dir, "scores.json");
    await rt.scoring.score({ model, data: { path: (files.src as Record<string, string>).valid as string }, method: "ablation", out: scores }).finalResult();
    circuit = (await rt.circuits.select({ scores, topK: 2, out: join(dir, "circuit.json") })).path as string;
    await model.release();
  });
  after(async () => {
    await rt?.close();
  });

  it("trains only the circuit and the norms, and the delta reproduces θ2 exactly", async () => {
    const model = await rt.models.load({ source: theta1 });
    const { body } = await rt.train({ model, data: easy(), method: "ctsft", circuit, kv: "group", epochs: 2, lr: 5e-3 }).finalResult();
    assert.equal(body.method, "ctsft");
    assert.ok(body.paramsFraction > 0 && body.paramsFraction < 0.5, String(body.paramsFraction));
    assert.equal(body.mask?.heads.length, 2);
    assert.equal(body.mask?.kv, "group");
    const saved = await model.save(join(dir, "theta2"));
    assert.ok(saved.delta && existsSync(join(saved.delta, "delta.safetensors")));
    const theta2Logits = await logits(model);

    const fresh = await rt.models.load({ source: theta1 });
    const theta1Logits = await logits(fresh);
    assert.notDeepEqual(theta1Logits, theta2Logits);
    await fresh.applyDelta(saved.delta as string);
    assert.deepEqual(await logits(fresh), theta2Logits);
    await assert.rejects(fresh.applyDelta(saved.delta as string), (e: unknown) => e instanceof BadRequestError && /already applied/.test(e.message));
    await fresh.revertDelta(saved.delta as string);
    assert.deepEqual(await logits(fresh), theta1Logits);
    await Promise.all([model.release(), fresh.release()]);
  });

  it("hook and delta mechanisms train the same model", async () => {
    const out: (number[][] | undefined)[] = [];
    for (const mask of ["hook", "delta"] as const) {
      const m = await rt.models.load({ source: theta1 });
      await rt.train({ model: m, data: easy(), method: "ctsft", heads: [[0, 1], [1, 2]], mask, epochs: 1, lr: 5e-3 }).finalResult();
      out.push(await logits(m));
      await m.release();
    }
    const [a, b] = out as number[][][];
    a?.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - (b?.[i]?.[j] as number)) < 1e-4, `${x} vs ${b?.[i]?.[j]}`)));
  });

  it("runs the norms and LoRA baselines; LoRA saves its peft adapter, which applies and reverts", async () => {
    const norms = await rt.models.load({ source: theta1 });
    const n = (await rt.train({ model: norms, data: easy(), method: "norms", epochs: 1, lr: 1e-2 }).finalResult()).body;
    assert.ok(n.paramsFraction < 0.05);
    assert.deepEqual(n.mask?.heads, []);
    const lora = await rt.models.load({ source: theta1 });
    const l = (await rt.train({ model: lora, data: easy(), method: "lora", lora: { r: 4 }, epochs: 1, lr: 2e-3 }).finalResult()).body;
    assert.deepEqual(l.lora?.targets, ["q_proj", "k_proj", "v_proj", "o_proj"]);
    assert.ok(l.paramsFraction > 0 && l.paramsFraction < 0.2);
    const saved = await lora.save(join(dir, "lora"));
    assert.ok(saved.adapter && existsSync(join(saved.adapter, "adapter_config.json")));
    const reloaded = await rt.models.load({ source: saved.path });
    const merged = await logits(lora);
    assert.deepEqual(await logits(reloaded), merged);
    // The adapter in peft's format applies to θ1 and reverts bit-exactly in this runtime.
    const base = await rt.models.load({ source: theta1 });
    const before = await logits(base);
    await base.applyDelta(saved.path);
    const applied = (await logits(base)) as number[][];
    applied.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - (merged?.[i]?.[j] as number)) < 1e-5)));
    await assert.rejects(base.applyDelta(saved.path), (e: unknown) => e instanceof BadRequestError && /already merged/.test(e.message));
    await base.revertDelta(saved.path);
    assert.deepEqual(await logits(base), before);
    await Promise.all([norms.release(), lora.release(), reloaded.release(), base.release()]);
  });

  it("answers bad input with typed errors", async () => {
    const m = await rt.models.load({ source: theta1 });
    const other = await rt.models.create({ family: "llama", layers: 2, heads: 4, dModel: 32, corpus: [(files.src as Record<string, string>).train as string], vocab: 600, out: join(dir, "other") });
    const otherModel = await rt.models.load({ source: other.path });
    const otherScores = join(dir, "other-scores.json");
    await rt.scoring.score({ model: otherModel, data: { path: (files.src as Record<string, string>).valid as string }, method: "attribution", out: otherScores }).finalResult();
    const otherCircuit = (await rt.circuits.select({ scores: otherScores, topK: 2, out: join(dir, "other-circuit.json") })).path as string;
    const cases: [string, () => Promise<unknown>, (e: unknown) => boolean][] = [
      ["circuit for another model", () => rt.train({ model: m, data: easy(), method: "ctsft", circuit: otherCircuit }).finalResult(), (e) => e instanceof BadRequestError && e.path === "body.circuit"],
      ["empty circuit", async () => rt.train({ model: m, data: easy(), method: "ctsft", heads: [] }).finalResult(), (e) => e instanceof BadRequestError && /heads/.test(e.path ?? "")],
      ["no circuit", () => rt.train({ model: m, data: easy(), method: "ctsft" }).finalResult(), (e) => e instanceof BadRequestError],
      ["head out of range", () => rt.train({ model: m, data: easy(), method: "ctsft", heads: [[0, 7]] }).finalResult(), (e) => e instanceof BadRequestError && e.path === "body.heads"],
      ["missing LoRA target", () => rt.train({ model: m, data: easy(), method: "lora", lora: { targets: ["wq"] } }).finalResult(), (e) => e instanceof BadRequestError && e.path === "body.lora.targets"],
      ["delta of another model", () => otherModel.applyDelta(join(dir, "theta2")), (e) => e instanceof BadRequestError && e.path === "body.delta"],
    ];
    for (const [name, run, check] of cases) await assert.rejects(run(), check, name);
    // The failed runs left θ1 untouched.
    assert.deepEqual(await logits(m), await logits(await rt.models.load({ source: theta1 })));
  });

  it("CLI: train --method ctsft writes θ2 and its delta; delta merge exports a plain checkpoint", async () => {
    const data = (files.easy as Record<string, string>).train as string;
    const t = await cli("train", "--model", theta1, "--data", data, "--method", "ctsft", "--circuit", circuit, "--mask", "delta", "--epochs", "1", "--lr", "5e-3", "--out", join(dir, "cli-theta2"));
    assert.ok(t.params_fraction < 0.5 && t.delta);
    const merged = await cli("delta", "merge", "--model", theta1, "--delta", t.out, "--out", join(dir, "merged"));
    assert.equal(merged.delta, null);
    const a = await rt.models.load({ source: t.out });
    const b = await rt.models.load({ source: merged.out });
    assert.deepEqual(await logits(a), await logits(b));
    const reverted = await cli("delta", "revert", "--model", t.out, "--delta", t.out, "--out", join(dir, "reverted"));
    assert.deepEqual(await logits(await rt.models.load({ source: reverted.out })), await logits(await rt.models.load({ source: theta1 })));
  });
});
