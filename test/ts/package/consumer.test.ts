// The package as a user gets it: `npm pack` (which runs `prepare`, the build), the tarball
// installed into a fresh project outside the repository, then used from there with plain node
// (ESM import and require), a strict tsc, and the installed CLI. Nothing in the consumer
// reaches into the checkout: no relative imports, no NODE_PATH, no tsx loader (the env is
// scrubbed of NODE_OPTIONS and npm's own variables), and the test checks that "ctsft"
// resolves inside the consumer's node_modules.
//
// One thing is shared, as it is between a user's projects: the runtime's Python environment,
// which lives in the per-user cache keyed by runtime version and lock hash. The repository's
// own setup built it; the installed package finds it with no override, and `npm ci` in the
// consumer leaves it in place.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const run = promisify(execFile);

let work: string;
let consumer: string;
let files: string[];
let env: NodeJS.ProcessEnv;
let strictCompile: Promise<string>;
const times: Record<string, number> = {};

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await f();
  } finally {
    times[name] = Math.round((performance.now() - t) / 100) / 10;
  }
}

function sh(cmd: string, args: string[], cwd: string, timeout = 180_000) {
  return run(cmd, args, { cwd, env, timeout, maxBuffer: 64 << 20 });
}

// The consumer's strict compile of the public API, ESM and CommonJS; started as soon as the
// package is installed so it overlaps the runtime tests.
function startStrictCompile(): Promise<string> {
  // The package's own examples exercise most of the API; as a user would, they import "ctsft".
  const shipped = join(consumer, "node_modules", "ctsft", "examples");
  mkdirSync(join(consumer, "examples"));
  const examples = readdirSync(shipped)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => {
      writeFileSync(join(consumer, "examples", f), readFileSync(join(shipped, f), "utf8").replace(/from "\.\.\/src\/[^"]*\.ts"/g, 'from "ctsft"'));
      return `examples/${f}`;
    });
  assert.ok(examples.length >= 3, `examples in the package: ${examples.join(", ")}`);
  writeFileSync(
    join(consumer, "tsconfig.json"),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022", "ESNext.Disposable"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          noPropertyAccessFromIndexSignature: true,
          noUncheckedIndexedAccess: true,
          noImplicitOverride: true,
          skipLibCheck: false,
          noEmit: true,
          types: ["node"],
        },
        files: ["consumer.ts", "consumer.cts"],
      },
      null,
      1,
    )}\n`,
  );
  writeFileSync(
    join(consumer, "consumer.ts"),
    `import { BadRequestError, CtsftError, Runtime, type StartOptions } from "ctsft";

const opts: StartOptions = { mode: "process" };
await using rt = await Runtime.start(opts);
const info = await rt.info();
console.log(info.python, info.torch, info.cuda);
const model = await rt.models.load({ source: "path/to/checkpoint" });
const run = rt.train({ model, data: { path: "train.csv" }, valid: { nusax: { lang: "ind", split: "valid" } }, epochs: 3 });
for await (const ev of run) if (ev.type === "step") console.log(ev.step, ev.loss);
console.log((await run.result).body.paramsTrainable);
const { body } = await rt.evaluate({ model, data: [{ path: "test.csv" }] }).finalResult();
console.log(body);
try {
  await model.save("out/ind");
} catch (e) {
  if (e instanceof BadRequestError) console.log(e.code, e.path);
  else if (e instanceof CtsftError) console.log(e.code, e.traceback);
}
`,
  );
  writeFileSync(join(consumer, "consumer.cts"), `import ctsft = require("ctsft");\nexport const start: typeof ctsft.Runtime.start = ctsft.Runtime.start;\n`);
  // The examples too, under the same flags but noPropertyAccessFromIndexSignature: they read
  // records keyed by the caller's own names (synthetic files by language, tensors by name)
  // with dots, which that flag refuses in any code.
  writeFileSync(
    join(consumer, "tsconfig.examples.json"),
    `${JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { noPropertyAccessFromIndexSignature: false }, files: examples }, null, 1)}\n`,
  );
  const tsc = (project: string) =>
    sh(process.execPath, [TSC, "-p", project], consumer).then(
      (x) => `${x.stdout}${x.stderr}`,
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ""}${e.stderr ?? String(e)}`,
    );
  return timed("(c) strict tsc", async () => (await Promise.all([tsc("tsconfig.json"), tsc("tsconfig.examples.json")])).join("").trim());
}

describe("the npm package, installed into a fresh project", { timeout: 420_000 }, () => {
  before(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), "ctsft-consumer-")));
    consumer = join(work, "app");
    // The runtime environment in the per-user cache (set up if needed), by the same runner as test:py.
    const prefix = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "python.ts"), "-c", "import sys; print(sys.prefix)"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(prefix.status, 0, prefix.stderr);
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|NODE_OPTIONS$|NODE_TEST_CONTEXT$|NODE_PATH$|TSX_|CTSFT_VENV$|CTSFT_PYTHON$)/i.test(k)));

    const packed = await timed("npm pack (build included)", () => sh("npm", ["pack", "--json", "--pack-destination", work], ROOT));
    const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string; size: number; files: { path: string }[] }[];
    const tarball = join(work, (info[0] as { filename: string }).filename);
    files = (info[0] as { files: { path: string }[] }).files.map((f) => f.path);
    times["tarball kB"] = Math.round((info[0] as { size: number }).size / 1024);
    times["tarball files"] = files.length;

    mkdirSync(consumer);
    writeFileSync(join(consumer, "package.json"), `${JSON.stringify({ name: "ctsft-consumer", private: true, type: "module" }, null, 1)}\n`);
    await timed("npm install", () => sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, "@types/node@20"], consumer));
    strictCompile = startStrictCompile();
    strictCompile.catch(() => undefined); // awaited by (c)
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    process.stderr.write(`consumer test timings (s): ${JSON.stringify(times)}\n`);
  });

  it("ships compiled ESM and CommonJS with types, the runtime's sources, LICENSE and docs; no TypeScript sources", () => {
    for (const f of ["package.json", "LICENSE", "README.md", "bin/ctsft.js", "dist/esm/index.js", "dist/esm/index.d.ts", "dist/esm/cli/main.js", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json", "py_runtime/pyproject.toml", "py_runtime/ctsft_runtime/__init__.py"]) {
      assert.ok(files.includes(f), `${f} is not in the tarball`);
    }
    assert.deepEqual(files.filter((f) => f.startsWith("src/") || f.includes("__pycache__") || f.includes(".egg-info")), []);
    const pkg = JSON.parse(readFileSync(join(consumer, "node_modules", "ctsft", "package.json"), "utf8")) as Record<string, unknown>;
    assert.equal(pkg["license"], "Apache-2.0");
    assert.equal((pkg["dependencies"] as Record<string, string>)["tsx"], undefined, "tsx is a run-time dependency");
    assert.equal(existsSync(join(consumer, "node_modules", "tsx")), false, "the install pulled in tsx");
  });

  it("README and the docs link only to files inside the package", () => {
    for (const doc of files.filter((f) => f.endsWith(".md"))) {
      const text = readFileSync(join(consumer, "node_modules", "ctsft", doc), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const path = (target as string).split("#")[0] as string;
        if (path === "" || /^[a-z]+:/i.test(path)) continue; // an anchor, or an absolute URL
        const resolved = posix.normalize(posix.join(posix.dirname(doc), path)).replace(/\/$/, "");
        assert.ok(files.includes(resolved) || files.some((f) => f.startsWith(`${resolved}/`)), `${doc} links to ${target}, which is not in the package`);
      }
    }
  });

  it("(a) plain node imports it as ESM, starts a runtime and reads info()", async () => {
    writeFileSync(
      join(consumer, "app.mjs"),
      [
        'import { Runtime, PROTOCOL_VERSION } from "ctsft";',
        "const rt = await Runtime.start();",
        "try {",
        "  const info = await rt.info();",
        '  console.log(JSON.stringify({ resolved: import.meta.resolve("ctsft"), protocol: PROTOCOL_VERSION, python: info.python, torch: info.torch }));',
        "} finally {",
        "  await rt.close();",
        "}",
        "",
      ].join("\n"),
    );
    const { stdout } = await timed("(a) node app.mjs", () => sh(process.execPath, ["app.mjs"], consumer));
    const out = JSON.parse(stdout.trim().split("\n").pop() as string) as { resolved: string; protocol: number; python: string; torch: string };
    assert.equal(fileURLToPath(out.resolved), join(consumer, "node_modules", "ctsft", "dist", "esm", "index.js"));
    assert.equal(out.protocol, 1);
    assert.match(out.python, /^3\./);
    assert.match(out.torch, /^2\./);
  });

  it("(b) require() loads the CommonJS build, which exposes Runtime", async () => {
    writeFileSync(
      join(consumer, "app.cjs"),
      'const ctsft = require("ctsft");\nconsole.log(JSON.stringify({ resolved: require.resolve("ctsft"), start: typeof ctsft.Runtime.start, bad: new ctsft.BadRequestError("x").code }));\n',
    );
    const { stdout } = await timed("(b) node app.cjs", () => sh(process.execPath, ["app.cjs"], consumer));
    const out = JSON.parse(stdout.trim()) as { resolved: string; start: string; bad: string };
    assert.equal(out.resolved, join(consumer, "node_modules", "ctsft", "dist", "cjs", "index.js"));
    assert.equal(out.start, "function");
    assert.equal(out.bad, "bad_request");
  });

  it("(c) a strict tsc (nodenext, exactOptionalPropertyTypes, no skipLibCheck) compiles a consumer and the examples against its types, ESM and CommonJS", async () => {
    assert.equal(await strictCompile, "", "the consumer's strict compile has errors");
  });

  it("(d) the installed CLI runs with plain node: npx ctsft doctor", async () => {
    const { stdout } = await timed("(d) npx ctsft doctor", () => sh("npx", ["--no-install", "ctsft", "doctor", "--json"], consumer));
    const report = JSON.parse(stdout.trim().split("\n").pop() as string) as { protocol: number; runtime: { torch: string }; modes: { process: { ok: boolean } } };
    assert.equal(report.protocol, 1);
    assert.equal(report.modes.process.ok, true);
    assert.match(report.runtime.torch, /^2\./);
  });

  it("(e) npm ci in the consumer keeps the cached environment: a second setup takes under 2 s and builds nothing", async () => {
    await timed("npm ci", () => sh("npm", ["ci", "--no-audit", "--no-fund", "--prefer-offline"], consumer));
    writeFileSync(
      join(consumer, "setup-again.mjs"),
      'import { setup } from "ctsft";\nconst t = performance.now();\nconst r = await setup();\nconsole.log(JSON.stringify({ built: r.built, ms: performance.now() - t, envDir: r.envDir }));\n',
    );
    const { stdout } = await timed("(e) setup after npm ci", () => sh(process.execPath, ["setup-again.mjs"], consumer));
    const out = JSON.parse(stdout.trim().split("\n").pop() as string) as { built: boolean; ms: number; envDir: string };
    assert.equal(out.built, false, "the cached environment was reused");
    assert.ok(out.ms < 2000, `second setup took ${out.ms} ms`);
    assert.ok(!out.envDir.startsWith(consumer), `the environment lives outside the project: ${out.envDir}`);
  });
});
