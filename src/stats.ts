/**
 * Small statistics shared by the comparison, the report and the benchmarks.
 *
 * @module
 */

/** A value that counts: a finite number (null, undefined and NaN do not). */
function present(x: number | null | undefined): x is number {
  return x !== null && x !== undefined && Number.isFinite(x);
}

/** 0-based ranks of `xs`, tied values sharing the average of their ranks. */
export function averageRanks(xs: number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && (order[end] as readonly [number, number])[0] === (order[start] as readonly [number, number])[0]) end++;
    const rank = (start + end - 1) / 2;
    for (let k = start; k < end; k++) ranks[(order[k] as readonly [number, number])[1]] = rank;
    start = end;
  }
  return ranks;
}

/**
 * Spearman's rank correlation of two equally long vectors: the Pearson correlation of their
 * average ranks (ties share the mean rank). Positions where either value is null or NaN are
 * skipped. Null when fewer than two positions remain or either side is constant there (the
 * correlation is undefined), never NaN.
 */
export function spearman(a: readonly (number | null | undefined)[], b: readonly (number | null | undefined)[]): number | null {
  if (a.length !== b.length) throw new RangeError(`spearman: vectors of length ${a.length} and ${b.length}`);
  const xs: number[] = [];
  const ys: number[] = [];
  a.forEach((x, i) => {
    const y = b[i];
    if (present(x) && present(y)) {
      xs.push(x);
      ys.push(y);
    }
  });
  if (xs.length < 2) return null;
  const rx = averageRanks(xs);
  const ry = averageRanks(ys);
  const mean = (xs.length - 1) / 2; // the mean of 0..n−1, which average ranks keep
  let num = 0;
  let dx = 0;
  let dy = 0;
  for (let i = 0; i < xs.length; i++) {
    const u = (rx[i] as number) - mean;
    const v = (ry[i] as number) - mean;
    num += u * v;
    dx += u * u;
    dy += v * v;
  }
  if (dx === 0 || dy === 0) return null;
  return Math.max(-1, Math.min(1, num / Math.sqrt(dx * dy)));
}

/** Indices of the `k` largest values (null and NaN left out; ties keep index order). */
function topIndices(xs: readonly (number | null | undefined)[], k: number): Set<number> {
  const scored = xs.flatMap((x, i) => (present(x) ? [[x, i] as const] : []));
  return new Set(scored.sort((p, q) => q[0] - p[0]).slice(0, k).map(([, i]) => i));
}

/**
 * How many of the `k` highest-scoring positions of `a` are also among the `k` highest of `b`,
 * as a fraction of `k` (|top-k(a) ∩ top-k(b)| / k, in [0, 1]). Null and NaN values are never
 * in a top-k. Null when `k` is not positive.
 */
export function topKOverlap(a: readonly (number | null | undefined)[], b: readonly (number | null | undefined)[], k: number): number | null {
  if (!(k > 0)) return null;
  const top = topIndices(b, k);
  return [...topIndices(a, k)].filter((i) => top.has(i)).length / k;
}
