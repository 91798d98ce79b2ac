// Per-target verdict: is CT-SFT's lower forgetting (vs full fine-tuning, paired by seed)
// larger than the seed-to-seed noise?
import type { CompareRow } from "../api/compare.ts";
import { fixed, signed } from "./format.ts";

/** One target's verdict on CT-SFT against full fine-tuning. */
export interface Verdict {
  /** The target language (dataset) name, unescaped. */
  target: string;
  /** Target training examples of the compared runs (a point of a data-efficiency curve; null: the whole set). */
  size: number | null;
  /** The sentence to show, built only from the numbers (plain text, unescaped). */
  text: string;
  /** True only if the 95% interval of the paired difference lies wholly below 0 (CT-SFT forgets less). */
  beyondNoise: boolean;
  /** Mean paired difference in forgetting, CT-SFT − full, in percent points (NaN when there is no pair). */
  diff: number;
  /** Half-width of its 95% interval in percent points (Infinity for one seed, NaN when there is no pair). */
  halfWidth: number;
}

// Two-sided 95% Student t quantiles by degrees of freedom 1..30.
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074,
  2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/**
 * The two-sided 95% Student-t quantile for `n` paired observations (n − 1 degrees of
 * freedom): 12.71 for n = 2, 4.30 for 3, 3.18 for 4, 2.78 for 5, 2.57 for 6, 2.45 for 7,
 * decreasing towards 2.04 at n = 31; beyond that 2.042 is kept (slightly conservative).
 * Infinity for n < 2: one seed gives no interval.
 */
export function t95(n: number): number {
  if (!(n >= 2)) return Number.POSITIVE_INFINITY;
  return T95[Math.min(Math.floor(n) - 2, T95.length - 1)] as number;
}

/**
 * Decide, for every target in `rows` (in order of first appearance; on a data-efficiency
 * curve, for every target and size), whether CT-SFT's advantage over full fine-tuning in
 * forgetting is beyond seed noise.
 *
 * Uses the `ctsft` row's paired difference against `full` on the same seeds
 * (`forgetting_vs_full` mean and `forgetting_vs_full_std`, n = `seeds`). The 95% interval is
 * mean ± t(n−1)·std/√n; the advantage is "beyond seed noise" only if that interval excludes 0
 * and the mean is negative (CT-SFT forgot less). One seed never counts. A target without a
 * `ctsft` row or without its paired difference gets a verdict saying so, with NaN numbers.
 *
 * Accuracies in rows are fractions 0..1; the returned numbers and text are percent points.
 */
export function verdicts(rows: CompareRow[]): Verdict[] {
  const points = [...new Map(rows.map((r) => [`${r.target}\u0000${r.target_size}`, { target: r.target, size: r.target_size }])).values()];
  return points.map(({ target, size }) => {
    const row = rows.find((r) => r.target === target && r.target_size === size && r.name === "ctsft");
    const where = size === null ? target : `${target} with ${size} target examples`;
    if (!row || row.forgetting_vs_full === null || !Number.isFinite(row.forgetting_vs_full)) {
      return {
        target,
        size,
        text: `${where}: no paired comparison of CT-SFT with full fine-tuning (the results need both methods on the same seeds).`,
        beyondNoise: false,
        diff: Number.NaN,
        halfWidth: Number.NaN,
      };
    }
    const n = row.seeds;
    const diff = row.forgetting_vs_full * 100;
    const sd = (row.forgetting_vs_full_std ?? 0) * 100;
    const halfWidth = n >= 2 ? (t95(n) * sd) / Math.sqrt(n) : Number.POSITIVE_INFINITY;
    const lo = diff - halfWidth;
    const hi = diff + halfWidth;
    const beyondNoise = n >= 2 && hi < 0;

    const d = fixed(Math.abs(diff));
    const amount = `${d} ± ${fixed(sd)} points`;
    const what = Number(d) === 0 ? `forgot as much as full fine-tuning (difference ${amount})` : diff < 0 ? `forgot ${amount} less than full fine-tuning` : `forgot ${amount} more than full fine-tuning`;
    const seeds = `${n} seed${n === 1 ? "" : "s"}`;
    const paren = n >= 2 ? `(paired over ${seeds}, mean ± std; 95% interval of the difference ${signed(lo)}…${signed(hi)} points)` : "(a single seed: no interval)";
    const call =
      n < 2
        ? "one seed cannot separate the difference from seed noise"
        : beyondNoise
          ? "beyond seed noise"
          : lo > 0
            ? "CT-SFT forgot more, beyond seed noise (no advantage)"
            : "not beyond seed noise";
    const cost =
      row.target_vs_full === null || !Number.isFinite(row.target_vs_full)
        ? ""
        : ` Target accuracy vs full: ${signed(row.target_vs_full * 100)} ± ${fixed((row.target_vs_full_std ?? 0) * 100)} points.`;
    return { target, size, text: `${where}: CT-SFT ${what} ${paren}: ${call}.${cost}`, beyondNoise, diff, halfWidth };
  });
}
