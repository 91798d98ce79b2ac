/** A one-line progress bar on stderr. On a terminal it redraws in place; elsewhere (CI, logs)
 * it prints a line at each 10% so logs stay short. Never writes to stdout (JSON goes there). */
export class ProgressBar {
  private lastDecile = -1;
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly width = 28,
  ) {}

  update(done: number, total: number, info = ""): void {
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(frac * this.width);
    const line = `${this.label} [${"#".repeat(filled)}${"-".repeat(this.width - filled)}] ${done}/${total} ${info}`;
    if (this.tty) {
      process.stderr.write(`\r${line.padEnd(process.stderr.columns ? process.stderr.columns - 1 : 100)}`);
      return;
    }
    const decile = Math.floor(frac * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      process.stderr.write(`${line}\n`);
    }
  }

  done(message = ""): void {
    if (this.tty) process.stderr.write("\n");
    if (message) process.stderr.write(`${message}\n`);
  }
}

/** Seconds as `1m05s` / `12.3s`. */
export function seconds(s: number): string {
  return s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${s.toFixed(1)}s`;
}
