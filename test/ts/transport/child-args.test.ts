// What the SDK hands its Python children: the Ray driver's arguments, read by the driver's own
// parser (values that begin with "-", as a Z85 key does one time in 85, stay values), and an
// environment in which the user's working directory cannot shadow the runtime's imports.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { RayExecutor } from "../../../src/schema/sweep.ts";
import { driverArgs } from "../../../src/transport/launch-ray.ts";
import { ensurePythonEnv, runtimeEnv } from "../../../src/transport/python-env.ts";

const PARSE = "import json, sys; from ctsft_runtime.sweep.__main__ import _parse; print(json.dumps(vars(_parse(sys.argv[1:]))))";

describe("Python children", () => {
  it("reach the driver's parser as given, a key and a root that begin with '-' included", async () => {
    const python = await ensurePythonEnv();
    const executor = RayExecutor.parse({ kind: "ray", address: "-cluster", workers: 2, resources: { custom: { "-odd": 0.5 } } });
    const key = "-" + "a".repeat(39);
    const args = driverArgs({ executor, root: "-root dir", maxWorkers: 3, clientPublicKey: key, device: "cpu" });
    const r = spawnSync(python, ["-c", PARSE, ...args], { env: runtimeEnv(), encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const parsed = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(parsed.client_key, key);
    assert.equal(parsed.root, "-root dir");
    assert.equal(parsed.address, "-cluster");
    assert.equal(parsed.workers, 2);
    assert.equal(parsed.max_workers, 3);
    assert.equal(parsed.device, "cpu");
    assert.deepEqual(parsed.resource, ["-odd=0.5"]);
  });

  it("a working directory holding argparse.py, json.py or zmq.py does not replace the runtime's modules", async () => {
    const python = await ensurePythonEnv();
    const cwd = mkdtempSync(join(tmpdir(), "ctsft-shadow-"));
    for (const name of ["argparse", "json", "zmq"]) writeFileSync(join(cwd, `${name}.py`), `raise SystemExit("${name}.py of the working directory was imported")\n`);
    const r = spawnSync(python, ["-m", "ctsft_runtime", "--help"], { cwd, env: runtimeEnv(), encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ctsft Python runtime server/);
  });
});
