import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The private ipc directories of the process and embedded modes (`ctsft-XXXXXX` and
 * `ctsft-emb-XXXXXX` in the system temp directory), and their cleanup:
 *
 * - removed when the runtime stops, and when this Node process exits (`exit` event), or dies
 *   of SIGINT, SIGTERM or SIGHUP while nobody else listens for that signal (then the directory
 *   is removed and the signal re-raised, so Node still dies of it, exit status unchanged);
 * - a SIGKILL cannot be caught: the next start in the same temp directory sweeps directories
 *   left behind, but only those that are provably ours: named like ours, owned by this user,
 *   holding the owner file {@link OWNER_FILE} whose pid is not running. Anything else (another
 *   user's, a live process's, one without the file) is never touched.
 */
export const OWNER_FILE = "ctsft-owner.json";

const NAME = /^ctsft-(emb-)?[A-Za-z0-9]{6}$/;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const live = new Set<string>();
const swept = new Set<string>();

/** Create a private ipc directory (after sweeping stale ones), removed again by {@link removeIpcDir} or on exit. */
export function makeIpcDir(prefix: "ctsft-" | "ctsft-emb-"): string {
  const base = tmpdir();
  if (!swept.has(base)) {
    swept.add(base);
    sweepStaleIpcDirs(base);
  }
  const dir = mkdtempSync(join(base, prefix));
  writeFileSync(join(dir, OWNER_FILE), `${JSON.stringify({ pid: process.pid, createdAt: new Date().toISOString() })}\n`);
  if (live.size === 0) hook();
  live.add(dir);
  return dir;
}

/** Remove an ipc directory made by {@link makeIpcDir} (idempotent). */
export function removeIpcDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  if (live.delete(dir) && live.size === 0) unhook();
}

/** Remove stale ipc directories in `base` (see the module doc); returns the removed paths. */
export function sweepStaleIpcDirs(base: string = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return removed;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    if (!NAME.test(name)) continue;
    const dir = join(base, name);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      const owner = JSON.parse(readFileSync(join(dir, OWNER_FILE), "utf8")) as { pid?: unknown };
      const pid = owner.pid;
      if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || running(pid)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // not ours (no owner file, unreadable), or already gone: leave it
    }
  }
  return removed;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH"; // EPERM: alive, someone else's
  }
}

function removeAll(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else handles this signal: Node will not die of it, so the runtime stays in use.
  if (process.listenerCount(signal) > 1) return;
  removeAll();
  unhook();
  process.kill(process.pid, signal); // no listener left: the default action, as if we were never here
}

function hook(): void {
  process.on("exit", removeAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function unhook(): void {
  process.removeListener("exit", removeAll);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}
