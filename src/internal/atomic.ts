import { randomBytes } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";

/** Write a file so readers see the old or the new content, never a torn one. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
