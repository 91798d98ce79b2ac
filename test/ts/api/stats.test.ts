// The shared statistics behind the preservation figures: Spearman with average ranks for
// ties, skipped null/NaN, null for undefined correlations; the top-k overlap; the warnings
// that say when scores cannot be trusted or a control is no control.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { circuitOverlapWarning } from "../../../src/api/compare.ts";
import { FAITHFULNESS_WARN, scoreDiagnostics } from "../../../src/api/scoring.ts";
import { averageRanks, spearman, topKOverlap } from "../../../src/stats.ts";

const close = (a: number | null, b: number) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${a} ≠ ${b}`);

describe("spearman", () => {
  it("is ±1 for monotone vectors and 1 − 6Σd²/(n(n²−1)) without ties", () => {
    close(spearman([1, 2, 3], [10, 20, 300]), 1);
    close(spearman([1, 2, 3], [3, 2, 1]), -1);
    close(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]), 0.8);
  });

  it("gives tied values their average rank (scipy.stats.spearmanr agrees)", () => {
    assert.deepEqual(averageRanks([3, 1, 3, 2]), [2.5, 0, 2.5, 1]);
    close(spearman([1, 2, 2, 3], [1, 2, 3, 4]), 3 / Math.sqrt(10)); // 0.9486832980505138
    close(spearman([1, 1, 2, 2], [2, 2, 1, 1]), -1);
  });

  it("skips positions where either side is null or NaN", () => {
    close(spearman([1, null, 3, Number.NaN, 5], [2, 100, 4, -7, 6]), 1);
    close(spearman([0.4, 0.1, null], [0.3, 0.2, 0.9]), 1);
  });

  it("is null, not NaN, when undefined: a constant side, fewer than two pairs", () => {
    assert.equal(spearman([1, 1, 1], [1, 2, 3]), null);
    assert.equal(spearman([1, 2, 3], [0, 0, 0]), null);
    assert.equal(spearman([1, null], [2, 3]), null);
    assert.equal(spearman([], []), null);
    assert.throws(() => spearman([1, 2], [1]), RangeError);
  });
});

describe("topKOverlap", () => {
  it("is |top-k(a) ∩ top-k(b)| / k, never counting unscored heads", () => {
    const a = [0.9, 0.1, 0.5, null];
    assert.equal(topKOverlap(a, [0.2, 0.8, 0.7, 0.95], 2), 0);
    assert.equal(topKOverlap(a, [0.9, 0.1, 0.2, 0.3], 2), 0.5);
    assert.equal(topKOverlap(a, [1, 0, 0.5, Number.NaN], 2), 1);
    assert.equal(topKOverlap(a, a, 0), null);
  });
});

describe("scoreDiagnostics", () => {
  it("warns on low faithfulness and on instability, quietly otherwise", () => {
    const faith = (spearman: number | null) => ({ reference: "ablation" as const, spearman, examples: 63, heads: 16, seconds: 0.4 });
    const stab = (maxRatio: number, warning: string | null) => ({ maxRatio, layer: 1, head: [0, 1] as [number, number], example: 3, threshold: 10, warning });
    const good = scoreDiagnostics({ method: "cdt", faithfulness: faith(0.9), stability: stab(1.5, null) });
    assert.ok(good.every((l) => !l.startsWith("warning:")), good.join("\n"));
    assert.ok(good.some((l) => l.startsWith("faithfulness: Spearman 0.90")));
    const bad = scoreDiagnostics({ method: "cdt", faithfulness: faith(FAITHFULNESS_WARN - 0.1), stability: stab(40, "cdt is unstable here") });
    assert.equal(bad.filter((l) => l.startsWith("warning:")).length, 2);
    assert.ok(bad[0]?.startsWith("warning:"));
    assert.deepEqual(scoreDiagnostics({ method: "ablation", faithfulness: null, stability: null }), []);
    assert.ok(scoreDiagnostics({ method: "cdt", faithfulness: faith(null), stability: null })[0]?.includes("undefined"));
  });
});

describe("circuitOverlapWarning", () => {
  it("warns when the circuit and the low heads share heads, and says how many heads score above zero", () => {
    // A model that has not learnt the task: every head hurts on average, so the top heads are the ones nearest zero.
    const negative = [
      [-0.012, -0.005, -0.02, -0.16],
      [-0.063, -0.011, -0.023, -0.019],
    ];
    const w = circuitOverlapWarning([[0, 1], [1, 1]], [[0, 1], [1, 1]], negative);
    assert.ok(w?.includes("share 2 of 2 heads (L0H1 L1H1)") && w.includes("0 of 8 heads score above zero"), w ?? "null");
    assert.ok(circuitOverlapWarning([[0, 1], [1, 1]], [[0, 1], [0, 0]], negative)?.includes("share 1 of 2 heads (L0H1)"));
    assert.equal(circuitOverlapWarning([[1, 3], [0, 0]], [[0, 1], [1, 1]], negative), null);
  });
});
