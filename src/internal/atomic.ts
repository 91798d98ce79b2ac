import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** How {@link writeFileAtomic} creates the file. */
export interface AtomicWriteOptions {
  /** Permission bits of the new file from its first byte (default 0o666, less the umask).
   * A secret gets 0o600: the temporary file is created with it, so no reader ever sees the
   * content under wider permissions. */
  mode?: number;
  /** Never replace an existing `path`: fail with an `EEXIST` error instead (the publish is a
   * hard link, which is atomic and refuses an existing name, not a rename). */
  exclusive?: boolean;
}

/** Write a file so readers see the old or the new content, never a torn one: a temporary
 * sibling (`.<name>.<random>.tmp`, created exclusively with `mode`) is written, fsynced and
 * renamed (or, with `exclusive`, linked) into place. */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", options.mode ?? 0o666);
  try {
    try {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.exclusive) {
      linkSync(tmp, path);
      unlinkSync(tmp);
    } else {
      renameSync(tmp, path);
    }
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone (linked and unlinked, or never created)
    }
    throw e;
  }
}

/** The marker every ctsft output directory carries (the runtime's `models/atomic.py` writes it
 * into checkpoints and deltas, `runAdapt` into its output folder): `{"writer": "ctsft", "kind",
 * "files": [entries written], ...}`. A folder holding it, and nothing beside what it lists, may
 * be replaced by ctsft without `overwrite`. */
export const MARKER_FILE = "ctsft-artifact.json";

/** What a ctsft marker says. */
export interface Marker {
  writer: "ctsft";
  kind: string;
  files: string[];
  [key: string]: unknown;
}

/** The folder's ctsft marker, or undefined when it has none (or an unreadable one). */
export function readMarker(dir: string): Marker | undefined {
  try {
    const body = JSON.parse(readFileSync(join(dir, MARKER_FILE), "utf8")) as Partial<Marker>;
    return body.writer === "ctsft" && Array.isArray(body.files) && typeof body.kind === "string" ? (body as Marker) : undefined;
  } catch {
    return undefined;
  }
}
