// The lock files the Python environment is built from (py_runtime/lock.sh writes them all) and
// how setup reads them: exact pins with hashes for pip, the same pins hash-free as constraints,
// and a short hash of each file's bytes for the cache keys.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PY_RUNTIME_DIR } from "../internal/paths.ts";

/** Every runtime dependency but torch, exact versions and hashes (py_runtime/lock.sh writes it). */
export const LOCK_FILE = join(PY_RUNTIME_DIR, "requirements.lock");
/** The repository's test tools, locked against {@link LOCK_FILE}; never installed for users. */
export const DEV_LOCK_FILE = join(PY_RUNTIME_DIR, "requirements-dev.lock");
/** The optional Ray extra (`ctsft setup --with ray`), locked against both other locks. */
export const RAY_LOCK_FILE = join(PY_RUNTIME_DIR, "requirements-ray.lock");

/** sha256 of a lock file's bytes, first 12 hex digits: the cache key's lock part. */
export function lockHash(file: string = LOCK_FILE): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12);
}

/** A lock file's requirements: name, `name==version ; marker` (no hashes), and the full text. */
export function lockEntries(lock: string): { name: string; pin: string; text: string }[] {
  const out: { name: string; pin: string; text: string }[] = [];
  let cur: string[] = [];
  const flush = () => {
    if (!cur.length) return;
    const text = cur.join("\n").replace(/\s*\\\s*$/, "");
    const pin = cur[0]!.replace(/\s*\\\s*$/, "").trim();
    out.push({ name: pin.split(/[=<>!~; ]/)[0]!.toLowerCase().replace(/[-_.]+/g, "-"), pin, text });
    cur = [];
  };
  for (const line of lock.split(/\r?\n/)) {
    if (/^[A-Za-z0-9]/.test(line)) {
      flush();
      cur.push(line);
    } else if (cur.length && /^\s+--hash=/.test(line)) cur.push(line);
    else if (!/^\s+--hash=/.test(line)) flush();
  }
  flush();
  return out;
}

/** A constraints file from a lock: the same pins, without hashes (pip's constraints take none). */
export function constraintsOf(lock: string): string {
  return lockEntries(lock).map((e) => e.pin).join("\n") + "\n";
}
