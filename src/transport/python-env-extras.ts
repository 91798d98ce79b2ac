// Overlays: packages installed beside the runtime environment (pip --target into a folder of
// their own), put on PYTHONPATH only by whoever asked for them. The environment users share
// never sees them, and its cache key never depends on them. Two exist: the repository's test
// tools (`dev`) and the optional extras users ask for with `ctsft setup --with NAME` (`ray`).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEV_LOCK_FILE, LOCK_FILE, lockEntries, lockHash, RAY_LOCK_FILE } from "./python-env-locks.ts";
import { type Ctx, MARKER, pip, publish, tempSibling, writeMarker } from "./python-env-steps.ts";

/** Optional parts of the runtime environment (`ctsft setup --with NAME`, `setup({ with })`). */
export const EXTRAS = ["ray"] as const;
export type Extra = (typeof EXTRAS)[number];

/** Every overlay: the extras and the repository's test tools. */
export type Overlay = Extra | "dev";

const OVERLAYS: Record<Overlay, { lock: string; what: string }> = {
  dev: { lock: DEV_LOCK_FILE, what: "the test tools" },
  ray: { lock: RAY_LOCK_FILE, what: "Ray" },
};

/** An overlay's folder beside the environment (or beside a `CTSFT_PYTHON`'s state), keyed by
 * its lock's hash so a new lock is a new folder. */
export function overlayDir(base: string, name: Overlay): string {
  return join(base, `${name}-${lockHash(OVERLAYS[name].lock)}`);
}

/** What goes on PYTHONPATH for an overlay. */
export function overlayLib(dir: string): string {
  return join(dir, "lib");
}

/** An overlay is installed when its marker is there (written last). */
export function overlayCurrent(dir: string): boolean {
  return existsSync(join(dir, MARKER));
}

/** Install one overlay from its lock with `py`'s pip, built in a temporary sibling and renamed
 * into place. */
export async function installOverlay(py: string, name: Overlay, dir: string, ctx: Ctx): Promise<void> {
  const { lock, what } = OVERLAYS[name];
  const tmp = tempSibling(dir);
  try {
    mkdirSync(tmp, { recursive: true });
    // What the runtime lock already installs (same pin, same marker) stays out; every overlay
    // lock is consistent with it, so anything else is at most the same version twice.
    const have = new Set(lockEntries(readFileSync(LOCK_FILE, "utf8")).map((e) => e.pin));
    const req = join(tmp, "requirements.txt");
    writeFileSync(req, `${lockEntries(readFileSync(lock, "utf8")).filter((e) => !have.has(e.pin)).map((e) => e.text).join("\n")}\n`);
    ctx.emit(name, `installing ${what} (${lock}) into ${dir}`);
    await pip(py, ctx, ["install", "--require-hashes", "--no-deps", "--target", overlayLib(tmp), "-r", req]);
    rmSync(req);
    writeMarker(tmp, { overlay: name, lockHash: lockHash(lock), createdAt: new Date().toISOString() });
    publish(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
