// Headless Chromium for report tests: the DOM after rendering, and a screenshot.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

export const CHROMIUM = "/usr/bin/chromium";

/** `false` when Chromium is installed, else the reason to skip (for `it(…, { skip })`). */
export const chromiumSkip: false | string = existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (apt-get install -y chromium)`;

const run = promisify(execFile);
// Offline and quiet: no network, no first-run or background work.
const COMMON = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"];

/** Chromium's version line. */
export async function chromiumVersion(): Promise<string> {
  return (await run(CHROMIUM, ["--version"], { timeout: 30_000 })).stdout.trim();
}

/** The DOM of `file` as Chromium rendered it (a fresh profile in `scratch`). */
export async function renderedDom(file: string, scratch: string): Promise<string> {
  const args = [...COMMON, `--user-data-dir=${mkdtempSync(join(scratch, "chr-"))}`, "--dump-dom", `file://${file}`];
  return (await run(CHROMIUM, args, { timeout: 90_000, maxBuffer: 64 << 20 })).stdout;
}

/** Screenshot `file` into `png` at a 1200 × 1600 window. */
export async function screenshot(file: string, png: string, scratch: string): Promise<void> {
  await run(CHROMIUM, [...COMMON, `--user-data-dir=${mkdtempSync(join(scratch, "chr-"))}`, `--screenshot=${png}`, "--window-size=1200,1600", `file://${file}`], { timeout: 90_000 });
}
