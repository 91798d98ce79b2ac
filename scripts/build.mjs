#!/usr/bin/env node
// `npm run build`, also run by `prepare` (so `npm ci` and `npm pack` build it): the published
// JavaScript, by plain node (no tsx), from the TypeScript sources in src/.
//
//   dist/esm  the SDK by `tsc -p tsconfig.build.esm.json` (src/index.ts and what it imports:
//             type-checked, JavaScript + .d.ts), and the CLI (src/cli/main.ts and what it
//             imports beyond that, run by bin/ctsft.js): JavaScript only, each file
//             transpiled on its own (`npm run typecheck` checks it; it has no public types).
//   dist/cjs  the SDK only (the CLI uses top-level await): each file of the ESM build
//             transpiled on its own to CommonJS with TypeScript's transpileModule, the ESM
//             build's .d.ts beside it, and a package.json {"type":"commonjs"} that makes
//             Node and TypeScript read the folder as CommonJS. The ESM build sets
//             isolatedModules, so per-file transpiling is exact. One file differs:
//             src/internal/module-dir.ts (import.meta) becomes module-dir.cjs.ts (__dirname).
//
// The build goes to a fresh folder and replaces dist/esm and dist/cjs only once it succeeded,
// and ends with two smoke checks: dist/cjs loads with require(), the CLI prints its usage.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");
const require = createRequire(import.meta.url);
const ts = require("typescript");

const stage = join(DIST, `.build-${process.pid}`);
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
try {
  const esm = join(stage, "esm");
  const cjs = join(stage, "cjs");
  const tsc = spawnSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.esm.json"), "--outDir", esm], { stdio: "inherit" });
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.esm.json failed (exit ${tsc.status ?? tsc.signal})`);

  const base = ts.getParsedCommandLineOfConfigFile(join(ROOT, "tsconfig.build.esm.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined }).options;
  const transpile = (source, module, out) => {
    const file = join(ROOT, "src", source);
    // CommonJS is emitted in node16 mode for a .cts file name: the same require()/exports as plain
    // CommonJS, except that a dynamic import() stays one (plain CommonJS turns it into require(),
    // which cannot load ES modules with top-level await, such as vega).
    const cjs = module === ts.ModuleKind.CommonJS;
    const compilerOptions = { ...base, module: cjs ? ts.ModuleKind.Node16 : module, moduleResolution: cjs ? ts.ModuleResolutionKind.Node16 : ts.ModuleResolutionKind.Bundler, declaration: false, noEmit: false };
    const r = ts.transpileModule(readFileSync(file, "utf8"), { compilerOptions, fileName: cjs ? file.replace(/\.ts$/, ".cts") : file, reportDiagnostics: true });
    if (r.diagnostics?.length) throw new Error(ts.formatDiagnostics(r.diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => "\n" }));
    if (module === ts.ModuleKind.CommonJS && usesImportMeta(ts.createSourceFile(out, r.outputText, ts.ScriptTarget.Latest))) {
      throw new Error(`src/${source} uses import.meta, which CommonJS lacks: give it a .cjs.ts variant like internal/module-dir`);
    }
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, r.outputText);
  };

  // The CLI: every file src/cli/main.ts reaches that the SDK build did not emit.
  const seen = new Set();
  const queue = ["cli/main.ts"];
  while (queue.length > 0) {
    const rel = queue.pop();
    if (seen.has(rel)) continue;
    seen.add(rel);
    const text = readFileSync(join(ROOT, "src", rel), "utf8");
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      if (fileName.startsWith(".") && fileName.endsWith(".ts")) queue.push(relative(join(ROOT, "src"), join(ROOT, "src", dirname(rel), fileName)));
    }
    const js = rel.replace(/\.ts$/, ".js");
    if (!existsSync(join(esm, js))) transpile(rel, ts.ModuleKind.ES2022, join(esm, js));
  }

  // The CommonJS SDK: every file of the ESM SDK build.
  for (const rel of walk(esm)) {
    if (rel.startsWith("cli/")) continue;
    if (rel.endsWith(".d.ts")) {
      mkdirSync(dirname(join(cjs, rel)), { recursive: true });
      copyFileSync(join(esm, rel), join(cjs, rel));
    } else if (rel.endsWith(".js")) {
      transpile(rel === "internal/module-dir.js" ? "internal/module-dir.cjs.ts" : rel.replace(/\.js$/, ".ts"), ts.ModuleKind.CommonJS, join(cjs, rel));
    }
  }
  writeFileSync(join(cjs, "package.json"), `${JSON.stringify({ type: "commonjs" })}\n`);

  // Smoke check: the CommonJS build loads and exposes the SDK.
  const loaded = createRequire(join(cjs, "index.js"))("./index.js");
  if (typeof loaded.Runtime?.start !== "function") throw new Error("dist/cjs/index.js loads but has no Runtime.start");
  const usage = spawnSync(process.execPath, [join(esm, "cli", "main.js"), "--help"], { encoding: "utf8" });
  if (usage.status !== 0) throw new Error(`dist/esm/cli/main.js --help failed (exit ${usage.status ?? usage.signal}):\n${usage.stderr}`);

  for (const name of ["esm", "cjs"]) {
    rmSync(join(DIST, name), { recursive: true, force: true });
    renameSync(join(stage, name), join(DIST, name));
  }
  process.stderr.write(`build: dist/esm and dist/cjs (${walk(join(DIST, "cjs")).length} files) from ${relative(process.cwd(), join(ROOT, "src")) || "."}\n`);
} catch (e) {
  process.stderr.write(`build failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  rmSync(stage, { recursive: true, force: true });
}

function usesImportMeta(node) {
  return (ts.isMetaProperty(node) && node.keywordToken === ts.SyntaxKind.ImportKeyword) || (ts.forEachChild(node, usesImportMeta) ?? false);
}

function walk(dir, prefix = "") {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}
