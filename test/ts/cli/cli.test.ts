// The ctsft command line on commander (issue 11): help for every command and option with
// defaults, --version, variadic options as the usage lines show them (`--corpus A B` as well as
// `--corpus A --corpus B`), and the exit codes: 0 done, 1 the work failed, 2 a usage error
// (printed with the command's usage line, naming the flag).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { program } from "../../../src/cli/program.ts";

const ROOT = new URL("../../..", import.meta.url).pathname;
const BIN = join(ROOT, "bin/ctsft.js");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function ctsft(...args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const f = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof f.code === "number" ? f.code : -1, stdout: f.stdout ?? "", stderr: f.stderr ?? "" };
  }
}

/** A usage error: exit 2, `ctsft CMD: error: …` matching `message`, the usage line, no stack. */
function usageError(r: Ran, command: string, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^${command}: error: `, "m"), r.stderr);
  assert.match(r.stderr, message, r.stderr);
  assert.match(r.stderr, new RegExp(`^usage: ${command} `, "m"), r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  assert.equal(r.stdout, "");
}

describe("ctsft CLI", { timeout: 600_000 }, () => {
  it("--version prints the package version", async () => {
    for (const flag of ["--version", "-V"]) {
      const r = await ctsft(flag);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), VERSION);
    }
  });

  it("train --help shows every option with its default, exit 0", async () => {
    const r = await ctsft("train", "--help");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: ctsft train --model DIR --data /);
    const help = r.stdout.replace(/\s+/g, " "); // as one line: the wrapping depends on the width
    const defaults: [string, string][] = [["--epochs <N>", "3"], ["--lr <X>", "0.0005"], ["--batch-size <B>", "16"], ["--max-length <T>", "128"], ["--seed <S>", "0"], ["--lora-r <R>", "8"], ["--lora-alpha <A>", "16"]];
    for (const [option, value] of defaults) {
      assert.match(help, new RegExp(`${option.replace(/[<>]/g, "\\$&")}(?:(?! --)[^])*?\\(default: ${value.replace(".", "\\.")}\\)`), option);
    }
    assert.match(help, /--method <METHOD> .*?choices: "full", "ctsft", "norms", "lora", default: "full"/);
    for (const flag of ["--model", "--data", "--valid", "--circuit", "--heads", "--mask", "--kv", "--lora-targets", "--device", "--out", "--overwrite", "--json"]) assert.ok(r.stdout.includes(flag), flag);
  });

  it("score --help (it used to print an error), and help for every command and option", async () => {
    const r = await ctsft("score", "--help");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: ctsft score /);
    const help = r.stdout.replace(/\s+/g, " ");
    assert.match(help, /--faithfulness <N\|off> .*?\(default: 64\)/);
    assert.match(help, /--method <SCORER> .*?default: "cdt"/);
    // `ctsft help score` is the same text
    assert.equal((await ctsft("help", "score")).stdout, r.stdout);

    const root = program();
    const names = root.commands.map((c) => c.name());
    for (const name of ["demo", "adapt", "setup", "doctor", "serve", "keys", "new-model", "train", "evaluate", "score", "delta", "circuit"]) assert.ok(names.includes(name), name);
    const top = await ctsft("--help");
    assert.equal(top.code, 0);
    for (const name of names) assert.match(top.stdout, new RegExp(`^  ${name}\\b`, "m"), name);
    assert.match(top.stdout, /Exit codes: 0 done; 1 .*; 2 a usage error/s);
    const walk = (cmd: typeof root): (typeof root)[] => [cmd, ...cmd.commands.flatMap(walk)];
    for (const cmd of walk(root)) {
      assert.ok(cmd.description() || cmd.summary(), `${cmd.name()} has a description`);
      for (const o of cmd.options) assert.ok(o.description.length > 0, `${cmd.name()} ${o.long} has a description`);
    }
    const serve = root.commands.find((c) => c.name() === "serve");
    for (const flag of ["--admin", "--ttl", "--max-models", "--max-jobs", "--max-message", "--job-buffer", "--allow-remote-code", "--allow-download", "--root"]) {
      assert.ok(serve?.options.some((o) => o.long === flag), `serve ${flag}`);
    }
  });

  it("an unknown option, command or extra argument is a usage error (exit 2)", async () => {
    usageError(await ctsft("train", "--model", "m", "--data", "d", "--out", "o", "--bogus"), "ctsft train", /unknown option '--bogus'/);
    usageError(await ctsft("frobnicate"), "ctsft", /unknown command 'frobnicate'/);
    usageError(await ctsft("keys", "--out", "k", "extra"), "ctsft keys", /too many arguments/);
    usageError(await ctsft("score", "--data", "d", "--out", "o"), "ctsft score", /required option '--model <DIR>' not specified/);
    usageError(await ctsft("train", "--model", "m", "--data", "d", "--out", "o", "--method", "magic"), "ctsft train", /--method <METHOD>' argument 'magic' is invalid\. Allowed choices are full, ctsft, norms, lora/);
    usageError(await ctsft("train", "--model", "m", "--data", "d", "--out", "o", "--lora-r", "4"), "ctsft train", /--lora-r applies to --method lora, not full/);
    usageError(await ctsft("circuit", "--scores", "s", "--top-k", "2", "--budget", "0.1", "--out", "c"), "ctsft circuit", /'--top-k <K>' cannot be used with option '--budget <F>'/);
    const bare = await ctsft();
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /Usage: ctsft <command> \[options\]/);
    const delta = await ctsft("delta");
    assert.equal(delta.code, 2);
    assert.match(delta.stderr, /apply \[options\][^]*revert[^]*merge/);
  });

  it("a bad number is a usage error naming the flag (exit 2)", async () => {
    const train = (...more: string[]) => ctsft("train", "--model", "m", "--data", "d", "--out", "o", ...more);
    usageError(await train("--epochs", "1.5"), "ctsft train", /--epochs must be a whole number in decimal digits, got "1\.5"/);
    usageError(await train("--epochs", ""), "ctsft train", /--epochs needs a value: got an empty string/);
    usageError(await train("--lr", "0x1"), "ctsft train", /--lr must be a decimal number, got "0x1"/);
    usageError(await ctsft("score", "--model", "m", "--data", "d", "--out", "o", "--faithfulness", "many"), "ctsft score", /--faithfulness must be a whole number .*\(or off\)/);
    usageError(await ctsft("serve", "--bind", "tcp://127.0.0.1:1", "--keys", "k", "--max-jobs", "2.5"), "ctsft serve", /--max-jobs must be a whole number/);
    usageError(await ctsft("circuit", "--scores", "s", "--heads", "0:1,x", "--out", "c"), "ctsft circuit", /--heads takes LAYER:HEAD pairs/);
  });

  it("new-model --corpus A B --corpus C: a real tiny model from all three files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctsft-cli-new-model-"));
    const words = ["alphaword", "betaword", "gammaword"];
    const files = words.map((w, i) => {
      const file = join(dir, `${w}.txt`);
      writeFileSync(file, Array.from({ length: 200 }, (_, j) => `${w} the cat ${["sat", "ran", "hid"][(i + j) % 3]} on the mat ${j % 7}`).join("\n"));
      return file;
    });
    const out = join(dir, "theta0");
    const r = await ctsft("new-model", "--family", "llama", "--layers", "1", "--heads", "2", "--d-model", "16", "--vocab", "400", "--corpus", files[0] as string, files[1] as string, "--corpus", files[2] as string, "--out", out, "--json");
    assert.equal(r.code, 0, r.stderr);
    const made = JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
    assert.equal(made.family, "llama");
    assert.equal(made.layers, 1);
    assert.equal(JSON.parse(readFileSync(join(out, "ctsft_build.json"), "utf8")).n_texts, 600, "every line of the three files");
    const vocab = Object.keys(JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")).model.vocab);
    for (const w of words) assert.ok(vocab.some((t) => t.includes(w)), `${w} learned from its file`);
    // a failure of the work (here: --out holds someone's files) is exit 1, not a usage error
    writeFileSync(join(dir, "notes.txt"), "mine");
    const refused = await ctsft("new-model", "--family", "llama", "--layers", "1", "--heads", "2", "--d-model", "16", "--corpus", files[0] as string, "--out", dir);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /^ctsft: BadRequestError \(bad_request\): /m);
  });
});
