import type { CompareRow } from "../api/compare.ts";

const pct = (x: number) => `${(x * 100).toFixed(1)}`;
const pm = (m: number, s: number) => `${pct(m)} ± ${pct(s)}`;
const signed = (x: number | null, s: number | null) => (x === null ? "—" : `${x >= 0 ? "+" : ""}${pct(x)} ± ${pct(s ?? 0)}`);

/** The comparison as a plain-text table (accuracies and forgetting in percentage points;
 * ρ θ1→θ2 and top-k kept: how much of θ1's head relevance each method's θ2 kept). */
export function resultsTable(rows: CompareRow[]): string {
  const head = ["target", "method", "θ1 target %", "target acc %", "source acc % before → after", "forgetting", "Δ forgetting vs full", "Δ target vs full", "ρ θ1→θ2", "top-k kept %", "% params", "seconds"];
  const body = rows.map((r) => [
    r.target,
    r.name,
    pct(r.target_acc_before),
    pm(r.target_acc, r.target_acc_std),
    `${pct(r.source_acc_before)} → ${pct(r.source_acc_after)}`,
    pm(r.forgetting, r.forgetting_std),
    signed(r.forgetting_vs_full, r.forgetting_vs_full_std),
    signed(r.target_vs_full, r.target_vs_full_std),
    r.preservation_spearman === null ? "—" : `${r.preservation_spearman.toFixed(2)} ± ${(r.preservation_spearman_std ?? 0).toFixed(2)}`,
    r.preservation_topk === null ? "—" : pm(r.preservation_topk, r.preservation_topk_std ?? 0),
    (r.params_fraction * 100).toPrecision(3),
    r.seconds.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ");
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
