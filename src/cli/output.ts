import { MultiBar, Presets, type SingleBar } from "cli-progress";
import Table from "cli-table3";
import type { CompareRow } from "../api/compare.ts";

/**
 * Progress on stderr (stdout is kept for results and JSON), one bar per label.
 * - On a terminal: cli-progress bars redrawn in place; `log` lines appear above them.
 * - Elsewhere (CI, logs, pipes): no redraws; one plain line per bar at each 10% (and at the
 *   end), so a log stays short and greppable.
 * Always `stop()` it (or declare it with `using`): a live bar holds a timer.
 */
export class Progress implements Disposable {
  private readonly tty = process.stderr.isTTY === true;
  private multi: MultiBar | undefined;
  private readonly bars = new Map<string, SingleBar>();
  private readonly deciles = new Map<string, number>();

  update(label: string, done: number, total: number, info = ""): void {
    if (!this.tty) {
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const decile = Math.floor(frac * 10);
      if (this.deciles.get(label) === decile) return;
      this.deciles.set(label, decile);
      process.stderr.write(`${label} ${done}/${total} (${Math.round(frac * 100)}%)${info ? ` ${info}` : ""}\n`);
      return;
    }
    this.multi ??= new MultiBar(
      { stream: process.stderr, format: "{label} [{bar}] {value}/{total} {info}", barsize: 28, hideCursor: false, gracefulExit: false, clearOnComplete: false, linewrap: false },
      Presets.legacy,
    );
    const bar = this.bars.get(label);
    if (bar === undefined) {
      this.bars.set(label, this.multi.create(total, done, { label, info }) as SingleBar);
    } else {
      bar.setTotal(total);
      bar.update(done, { label, info });
    }
  }

  /** A line of its own (above the bars on a terminal). */
  log(line: string): void {
    if (this.multi) this.multi.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  /** Stop the bars (they stay on screen) and print `message`, if any. */
  stop(message = ""): void {
    if (this.multi) {
      this.multi.update(); // flush the lines logged since the last redraw
      this.multi.stop();
      this.multi = undefined;
      this.bars.clear();
    }
    if (message) process.stderr.write(`${message}\n`);
  }

  [Symbol.dispose](): void {
    this.stop();
  }
}

/** Seconds as `1m05s` / `12.3s`. */
export function seconds(s: number): string {
  return s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(1)}s`;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}`;
const pm = (m: number, s: number) => `${pct(m)} ± ${pct(s)}`;
const signed = (x: number | null, s: number | null) => (x === null ? "—" : `${x >= 0 ? "+" : ""}${pct(x)} ± ${pct(s ?? 0)}`);

/** The comparison as a text table (accuracies and forgetting in percentage points; ρ θ1→θ2
 * and top-k kept: how much of θ1's head relevance each method's θ2 kept). No colours, so it
 * reads the same in a terminal and in a log. */
export function resultsTable(rows: CompareRow[]): string {
  const head = ["target", "method", "θ1 target %", "target acc %", "source acc % before → after", "forgetting", "Δ forgetting vs full", "Δ target vs full", "ρ θ1→θ2", "top-k kept %", "% params", "seconds"];
  const table = new Table({
    head,
    style: { head: [], border: [] },
    colAligns: ["left", "left", ...head.slice(2).map(() => "right" as const)],
  });
  for (const r of rows) {
    table.push([
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
  }
  return table.toString();
}
