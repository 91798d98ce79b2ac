// The runtime's Python environment: the cache path scheme, the lock files and their hash (the
// cache key), refusals and cancellation (cheap: they stop before anything is installed), and
// the one real check that matters every day: a second setup of the environment the repository's
// own setup built finishes in under 2 s and starts no pip, no venv, no network.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setup as exportedSetup } from "../../../src/index.ts";
import { constraintsOf, ctsftHome, DEV_LOCK_FILE, detectTorchVariant, envKey, installedExtra, LOCK_FILE, lockEntries, lockHash, MARKER, RAY_LOCK_FILE, runtimeVersion, setup, venvDir } from "../../../src/transport/python-env.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const temps: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "ctsft-setup-test-"));
  temps.push(d);
  return d;
};
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Run `fn` with some environment variables set (or deleted, for `undefined`), then restore. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

describe("where the environment lives", () => {
  it("CTSFT_HOME, else the platform's per-user cache + ctsft", () => {
    assert.equal(ctsftHome({ CTSFT_HOME: "/srv/ctsft", XDG_CACHE_HOME: "/x" }, "linux", "/home/a"), "/srv/ctsft");
    assert.equal(ctsftHome({ XDG_CACHE_HOME: "/x" }, "linux", "/home/a"), "/x/ctsft");
    assert.equal(ctsftHome({}, "linux", "/home/a"), "/home/a/.cache/ctsft");
    assert.equal(ctsftHome({ XDG_CACHE_HOME: "" }, "linux", "/home/a"), "/home/a/.cache/ctsft");
    assert.equal(ctsftHome({}, "darwin", "/Users/a"), "/Users/a/Library/Caches/ctsft");
    assert.equal(ctsftHome({ LOCALAPPDATA: "C:/Users/a/AppData/Local" }, "win32", "C:/Users/a"), join("C:/Users/a/AppData/Local", "ctsft"));
  });

  it("is keyed by runtime version, lock hash and torch variant, and is outside the package", async () => {
    const pyproject = readFileSync(join(ROOT, "py_runtime/pyproject.toml"), "utf8");
    assert.match(pyproject, new RegExp(`^version = "${runtimeVersion().replace(/\./g, "\\.")}"`, "m"));
    const sha = createHash("sha256").update(readFileSync(LOCK_FILE)).digest("hex");
    assert.equal(lockHash(), sha.slice(0, 12));
    assert.equal(envKey("cpu"), `${runtimeVersion()}-${sha.slice(0, 12)}-cpu`);
    const home = temp();
    await withEnv({ CTSFT_HOME: home, CTSFT_VENV: undefined }, () => {
      assert.equal(venvDir("cuda"), join(home, envKey("cuda")));
      assert.ok(!venvDir().startsWith(ROOT), "the environment is not inside the package (npm ci would delete it)");
    });
    await withEnv({ CTSFT_VENV: join(home, "mine") }, () => assert.equal(venvDir(), join(home, "mine")));
  });

  it("a different lock is a different environment", () => {
    const dir = temp();
    const other = join(dir, "requirements.lock");
    writeFileSync(other, readFileSync(LOCK_FILE, "utf8") + "\n# changed\n");
    assert.notEqual(lockHash(other), lockHash());
    assert.notEqual(envKey("cpu", other), envKey("cpu"));
  });

  it("CTSFT_TORCH picks the variant; anything else is refused", async () => {
    await withEnv({ CTSFT_TORCH: "cuda" }, () => assert.equal(detectTorchVariant().variant, "cuda"));
    await withEnv({ CTSFT_TORCH: "rocm" }, () => assert.throws(() => detectTorchVariant(), /CTSFT_TORCH must be cpu or cuda/));
    const smi = spawnSync("nvidia-smi", ["-L"], { encoding: "utf8" });
    await withEnv({ CTSFT_TORCH: undefined }, () => assert.equal(detectTorchVariant().variant, smi.status === 0 && /^GPU \d+/m.test(smi.stdout) ? "cuda" : "cpu"));
  });

  it("picks the CUDA build where nvidia-smi lists a GPU, the CPU build where it lists none or fails", () => {
    // A stand-in `nvidia-smi` first on PATH, in a fresh process (the detection is cached).
    const variantWith = (script: string) => {
      const bin = temp();
      writeFileSync(join(bin, "nvidia-smi"), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
      const code = `import { detectTorchVariant, venvDir } from ${JSON.stringify(join(ROOT, "src/transport/python-env.ts"))};
        const d = detectTorchVariant(); console.log(JSON.stringify({ ...d, dir: venvDir() }));`;
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, CTSFT_TORCH: "", CTSFT_VENV: "" };
      const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, env, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { variant: string; reason: string; dir: string };
    };
    const gpu = variantWith('echo "GPU 0: NVIDIA H200 (UUID: GPU-0)"');
    assert.equal(gpu.variant, "cuda");
    assert.match(gpu.reason, /NVIDIA H200/);
    assert.match(gpu.dir, /-cuda$/);
    assert.equal(variantWith('echo "No devices were found"').variant, "cpu");
    const broken = variantWith("exit 9");
    assert.equal(broken.variant, "cpu");
    assert.match(broken.dir, /-cpu$/);
  });
});

describe("the lock files", () => {
  const runtime = lockEntries(readFileSync(LOCK_FILE, "utf8"));
  const dev = lockEntries(readFileSync(DEV_LOCK_FILE, "utf8"));
  const ray = lockEntries(readFileSync(RAY_LOCK_FILE, "utf8"));

  it("pin every runtime dependency exactly, each with sha256 hashes", () => {
    const names = new Set(runtime.map((e) => e.name));
    for (const n of ["transformers", "tokenizers", "safetensors", "pyzmq", "msgspec", "numpy", "huggingface-hub", "accelerate", "peft", "gguf", "sympy", "networkx", "jinja2", "filelock", "fsspec"]) {
      assert.ok(names.has(n), `${n} is locked`);
    }
    for (const e of [...runtime, ...dev, ...ray]) {
      assert.match(e.pin, /^[A-Za-z0-9._-]+==[^ ;]+( ; .+)?$/, e.pin);
      assert.match(e.text, /--hash=sha256:[0-9a-f]{64}/, `${e.name} has hashes`);
    }
  });

  it("leave torch and its CUDA libraries to setup, and the test tools to the dev lock", () => {
    for (const e of runtime) assert.doesNotMatch(e.name, /^(torch|triton|nvidia-|cuda-|pytest|ruff|hypothesis)/, e.pin);
    const devNames = new Set(dev.map((e) => e.name));
    for (const n of ["pytest", "ruff", "hypothesis"]) assert.ok(devNames.has(n), `${n} is in the dev lock`);
  });

  it("agree where they overlap, and give pip hash-free constraints", () => {
    const version = (pin: string) => pin.split(" ;")[0]!;
    const versions = new Set(runtime.map((e) => version(e.pin)));
    for (const e of dev) {
      if (runtime.some((r) => r.name === e.name)) assert.ok(versions.has(version(e.pin)), `${e.pin} (dev) is a version the runtime lock has`);
    }
    // The tests put the dev tools and Ray on one PYTHONPATH: what both hold must be one version.
    const devVersions = new Set(dev.map((e) => version(e.pin)));
    for (const e of ray) {
      if (runtime.some((r) => r.name === e.name)) assert.ok(versions.has(version(e.pin)), `${e.pin} (ray) is a version the runtime lock has`);
      if (dev.some((d) => d.name === e.name)) assert.ok(devVersions.has(version(e.pin)), `${e.pin} (ray) is a version the dev lock has`);
    }
    const cons = constraintsOf(readFileSync(LOCK_FILE, "utf8"));
    assert.doesNotMatch(cons, /--hash|\\/);
    assert.equal(cons.trim().split("\n").length, runtime.length);
  });

  it("come from pyproject.toml, which keeps the test tools in the dev extra", () => {
    const pyproject = readFileSync(join(ROOT, "py_runtime/pyproject.toml"), "utf8");
    const deps = /^dependencies = \[([\s\S]*?)\]/m.exec(pyproject)![1]!;
    assert.doesNotMatch(deps, /pytest|ruff|hypothesis|torch/);
    assert.match(pyproject, /^dev = \[.*pytest.*\]/m);
    assert.match(pyproject, /^torch = \["torch==2\.13\.0"\]/m);
    // Ray is an optional extra, locked on its own: never in the runtime lock users' key hangs on.
    const pin = /^ray = \["ray==([^"]+)"\]/m.exec(pyproject)?.[1];
    assert.ok(pin, "pyproject.toml has the ray extra, pinned");
    assert.ok(ray.some((e) => e.pin === `ray==${pin}`), `requirements-ray.lock pins ray==${pin}`);
    assert.ok(!runtime.some((e) => e.name === "ray"), "ray is not in requirements.lock");
  });
});

describe("setup refuses and cancels before it installs anything", () => {
  it("a folder at the environment's path that is not one is left alone", async () => {
    const home = temp();
    const dir = join(home, envKey("cpu"));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "notes.txt"), "mine");
    await withEnv({ CTSFT_HOME: home, CTSFT_VENV: undefined, CTSFT_PYTHON: undefined }, async () => {
      await assert.rejects(setup({ torch: "cpu", onProgress: () => {} }), /is not a Python environment; refusing to replace it/);
    });
    assert.deepEqual(readdirSync(dir), ["notes.txt"]);
  });

  it("an aborted build leaves no environment, no temporary folder and no lock", async () => {
    const home = temp();
    const ac = new AbortController();
    const phases: string[] = [];
    await withEnv({ CTSFT_HOME: home, CTSFT_VENV: undefined, CTSFT_PYTHON: undefined }, async () => {
      const p = setup({
        torch: "cpu",
        signal: ac.signal,
        onProgress: (ev) => {
          phases.push(ev.phase);
          assert.equal(typeof ev.message, "string");
          if (ev.phase === "venv") setTimeout(() => ac.abort(new Error("stop")), 100);
        },
      });
      await assert.rejects(p, /stop/);
    });
    assert.deepEqual(phases, ["venv"]);
    assert.deepEqual(readdirSync(home), []);
  });

  it("a second setup waits for the first; when the first is killed, it takes over and sweeps its leftovers", async () => {
    const home = temp();
    const env: NodeJS.ProcessEnv = { ...process.env, CTSFT_HOME: home, CTSFT_TORCH: "cpu" };
    delete env.CTSFT_VENV;
    delete env.CTSFT_PYTHON;
    const code = `import { setup } from ${JSON.stringify(join(ROOT, "src/index.ts"))};
      await setup({ onProgress: (ev) => console.log(ev.phase) });`;
    // Its own process group, so the kill takes its pip or venv child with it.
    const first = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((r) => first.once("exit", r));
    await new Promise<void>((r) => first.stdout.on("data", (d: Buffer) => d.toString().includes("venv") && r()));
    const ac = new AbortController();
    const phases: string[] = [];
    await withEnv({ CTSFT_HOME: home, CTSFT_TORCH: "cpu", CTSFT_VENV: undefined, CTSFT_PYTHON: undefined }, async () => {
      const second = setup({
        signal: ac.signal,
        onProgress: (ev) => {
          phases.push(ev.phase);
          if (ev.phase === "wait") process.kill(-first.pid!, "SIGKILL");
          if (ev.phase === "venv") {
            // The killed build's temporary folder is gone before this one starts.
            assert.deepEqual(readdirSync(home).filter((n) => n.includes(".tmp-")), []);
            setTimeout(() => ac.abort(new Error("stop")), 100);
          }
        },
      });
      await assert.rejects(second, /stop/);
    });
    await exited;
    assert.deepEqual(phases, ["wait", "venv"]);
    assert.deepEqual(readdirSync(home), []);
  });

  it("an unknown extra is refused", async () => {
    await assert.rejects(exportedSetup({ with: ["spark" as "ray"], onProgress: () => {} }), /unknown extra "spark": setup knows ray/);
  });

  it("an already-aborted signal is refused at once", async () => {
    await assert.rejects(exportedSetup({ signal: AbortSignal.abort(new Error("no")) }), /no/);
  });
});

describe("a second setup of a built environment", () => {
  it("is current after the repository's setup, and takes under 2 s with no pip, venv or network", async () => {
    // The first setup: on a fresh clone `npm run setup` (or scripts/python.ts) built it already;
    // if not, this builds it (minutes).
    const first = await setup({ dev: true, with: ["ray"], onProgress: () => {} });
    assert.ok(existsSync(first.python));
    // The Ray extra sits beside the environment, on the result's PYTHONPATH only.
    const rayLib = installedExtra("ray");
    assert.ok(rayLib && first.pythonPath.includes(rayLib) && existsSync(join(rayLib, "ray", "__init__.py")), `ray overlay ${rayLib} in ${first.pythonPath}`);
    if (!process.env.CTSFT_PYTHON) {
      const marker = JSON.parse(readFileSync(join(first.envDir!, MARKER), "utf8"));
      assert.equal(marker.lockHash, lockHash());
      assert.equal(marker.torch.version.split("+")[0], "2.13.0");
      assert.ok(marker.packages.some((p: string) => p.startsWith("transformers==")));
      assert.ok(!marker.packages.some((p: string) => /^(pytest|ruff|hypothesis|ray)==/i.test(p)), "no test tools and no Ray in the shared environment");
    }
    // The second, in a fresh process whose every way to build is broken: no base Python, no
    // package index, no proxy that works. It can only succeed by reusing the environment.
    const code = `import { setup } from ${JSON.stringify(join(ROOT, "src/index.ts"))};
      const t0 = performance.now();
      const r = await setup({ dev: true, with: ["ray"], onProgress: () => {} });
      console.log(JSON.stringify({ ms: performance.now() - t0, built: r.built, python: r.python }));`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      cwd: ROOT,
      encoding: "utf8",
      env: {
        ...process.env,
        CTSFT_BASE_PYTHON: "/nonexistent/python3",
        CTSFT_TORCH: first.torch.variant,
        PIP_NO_INDEX: "1",
        PIP_CONFIG_FILE: "/dev/null",
        HTTPS_PROXY: "http://127.0.0.1:9",
        HTTP_PROXY: "http://127.0.0.1:9",
      },
    });
    assert.equal(r.status, 0, r.stderr);
    const second = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.equal(second.built, false);
    assert.equal(second.python, first.python);
    assert.ok(second.ms < 2000, `second setup took ${second.ms.toFixed(0)} ms`);
  });
});
