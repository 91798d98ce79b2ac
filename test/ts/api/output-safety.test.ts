// Outputs never destroy what ctsft did not write (issue 10), against real runtimes and real
// tiny checkpoints built by the runtime: model.save / model.create refuse a folder that holds
// someone's files (unless overwrite), accept their own output again, and a remote client can
// never make the server replace its root (its working directory), not even with overwrite.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { addClient, createKeys, readClientKeys } from "../../../src/api/keys.ts";
import { serveRuntime } from "../../../src/api/serve.ts";
import { BadRequestError, type ModelHandle, Runtime } from "../../../src/index.ts";
import { freePort, stopServer } from "../helpers/runtimes.ts";
import { precious, snapshot } from "../helpers/folders.ts";

const MARKER = "ctsft-artifact.json";

async function refusedOn(path: string, p: Promise<unknown>, phrase: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BadRequestError, String(e));
    assert.equal(e.path, path);
    assert.match(e.message, phrase);
    return true;
  });
}

function corpus(dir: string): string {
  const file = join(dir, "corpus.txt");
  writeFileSync(file, Array.from({ length: 200 }, (_, i) => `word${i % 37} text${i % 11} more words here`).join("\n"));
  return file;
}

const GEOMETRY = { family: "llama", layers: 1, heads: 2, dModel: 16, vocab: 300 } as const;

describe("local saves", () => {
  let rt: Runtime;
  let dir: string;
  let model: ModelHandle;

  before(async () => {
    rt = await Runtime.start({ device: "cpu" });
    dir = mkdtempSync(join(tmpdir(), "ctsft-outsafe-"));
    const created = await rt.models.create({ ...GEOMETRY, corpus: [corpus(dir)], out: join(dir, "m") });
    model = await rt.models.load({ source: created.path });
  });
  after(async () => {
    await rt?.close();
  });

  it("model.save refuses a folder ctsft did not write, naming out, and leaves every file", async () => {
    const folder = join(dir, "precious");
    const before = precious(folder);
    await refusedOn("body.out", model.save(folder), /thesis\.txt.*overwrite/s);
    assert.deepEqual(snapshot(folder), before);
    await refusedOn("body.out", model.save(folder, { dryRun: true }), /ctsft did not write/);
    assert.deepEqual(snapshot(folder), before);
  });

  it("model.save writes the marker, replaces its own checkpoint, and overwrite is explicit", async () => {
    const out = join(dir, "saved");
    await model.save(out);
    const marker = JSON.parse(readFileSync(join(out, MARKER), "utf8"));
    assert.equal(marker.writer, "ctsft");
    assert.equal(marker.kind, "checkpoint");
    assert.ok(marker.files.includes("model.safetensors"));
    await model.save(out); // its own output: no overwrite needed
    writeFileSync(join(out, "my-notes.txt"), "keep");
    await refusedOn("body.out", model.save(out), /my-notes\.txt/);
    assert.equal(readFileSync(join(out, "my-notes.txt"), "utf8"), "keep");

    const folder = join(dir, "replace-me");
    precious(folder);
    await model.save(folder, { overwrite: true });
    assert.ok(!existsSync(join(folder, "thesis.txt")) && existsSync(join(folder, "model.safetensors")));
  });

  it("model.save into the runtime's working directory or a parent is refused even with overwrite", async () => {
    const cwd = process.cwd(); // the process runtime inherits it
    const before = readdirSync(cwd).sort();
    for (const target of [".", cwd, join(cwd, "..")]) {
      await refusedOn("body.out", model.save(target, { overwrite: true }), /working directory/);
    }
    assert.deepEqual(readdirSync(cwd).sort(), before);
  });

  it("model.create follows the same rule and names out", async () => {
    const folder = join(dir, "precious-create");
    const before = precious(folder);
    await refusedOn("body.out", rt.models.create({ ...GEOMETRY, corpus: [corpus(dir)], out: folder }), /ctsft did not write/);
    assert.deepEqual(snapshot(folder), before);
    const again = await rt.models.create({ ...GEOMETRY, corpus: [corpus(dir)], out: join(dir, "m"), seed: 1 }); // its own
    assert.ok(existsSync(join(again.path, MARKER)));
  });
});

describe("remote: a client cannot replace the server's root", () => {
  let server: ChildProcess;
  let root: string;
  let rt: Runtime;
  let keysDir: string;

  before(async () => {
    // `ctsft serve` started in its folder with no --root (the root is its working directory).
    // The server refuses a key directory inside its root, so the keys live beside it; the root
    // holds the server's own files, which no client save may replace.
    root = realpathSync(mkdtempSync(join(tmpdir(), "ctsft-outsafe-root-")));
    keysDir = join(mkdtempSync(join(tmpdir(), "ctsft-outsafe-keys-")), "keys");
    createKeys(keysDir);
    addClient(keysDir, "alice");
    writeFileSync(join(root, "keep.txt"), "the server's own file");
    mkdirSync(join(root, "private"));
    writeFileSync(join(root, "private", "notes.md"), "the operator's notes");
    corpus(root);
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const cwd = process.cwd();
    process.chdir(root);
    try {
      server = await serveRuntime({ bind: endpoint, keys: keysDir, device: "cpu", logLevel: "WARNING" });
    } finally {
      process.chdir(cwd);
    }
    rt = await Runtime.connect(endpoint, { ...readClientKeys(keysDir, "alice"), connectTimeoutMs: 60_000 });
  });
  after(async () => {
    await rt?.close();
    if (server) await stopServer(server);
  });

  it("model.save('.') and model.save(root) are refused, with or without overwrite; the root's files survive", async () => {
    const before = snapshot(root);
    await rt.models.create({ ...GEOMETRY, corpus: ["corpus.txt"], out: "m" });
    const model = await rt.models.load({ source: "m" });
    const withModel = snapshot(root);
    for (const target of [".", root, "private/.."]) {
      for (const overwrite of [false, true]) {
        await refusedOn("body.out", model.save(target, { overwrite }), /path root|working directory/);
      }
    }
    await refusedOn("body.out", model.save("private"), /ctsft did not write/);
    assert.deepEqual(snapshot(root), withModel);
    for (const [name, content] of Object.entries(before)) assert.equal(withModel[name], content, name);
    const saved = await model.save("m2");
    assert.equal(saved.path, join(root, "m2"));
  });
});
