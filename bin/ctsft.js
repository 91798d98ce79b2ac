#!/usr/bin/env node
// The ctsft CLI. Installed from npm, it runs the compiled CLI in dist/esm with plain node.
// In a checkout (src/ beside bin/) it runs the TypeScript sources through tsx instead, so the
// tests and `npx ctsft …` always exercise the current code, never a stale dist/; set
// CTSFT_USE_DIST=1 to run dist/ there too (after `npm run build`).
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
if (existsSync(source) && !process.env.CTSFT_USE_DIST && (await tsx())) {
  await import(source.href);
} else {
  await import("../dist/esm/cli/main.js");
}

async function tsx() {
  try {
    (await import("tsx/esm/api")).register();
    return true;
  } catch {
    return false; // no tsx (installed without devDependencies): dist/ it is
  }
}
