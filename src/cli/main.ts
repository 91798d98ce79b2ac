import { CtsftError } from "../errors.ts";
import { adapt } from "./adapt.ts";
import { circuit } from "./circuit.ts";
import { delta } from "./delta.ts";
import { demo } from "./demo.ts";
import { doctor } from "./doctor.ts";
import { evaluate } from "./evaluate.ts";
import { newModel } from "./new-model.ts";
import { score } from "./score.ts";
import { train } from "./train.ts";
import { keys } from "./keys.ts";
import { serve } from "./serve.ts";
import { setupCommand } from "./setup.ts";

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  demo: { run: demo, help: "the whole CT-SFT pipeline on built-in synthetic languages (or --nusax DIR) with a report" },
  adapt: { run: adapt, help: "the whole pipeline on your model and data, from a config file (--config FILE)" },
  setup: { run: setupCommand, help: "create or update the runtime's Python environment" },
  doctor: { run: doctor, help: "check the runtime in every mode [--json]" },
  serve: { run: serve, help: "serve a runtime for remote clients: --bind tcp://HOST:PORT --keys DIR" },
  keys: { run: keys, help: "create CURVE keys for serve/connect: --out DIR" },
  "new-model": { run: newModel, help: "build a real HF checkpoint from scratch (family, size, BPE tokenizer on a corpus)" },
  train: { run: train, help: "fine-tune a checkpoint on labeled data and save it [--json]" },
  evaluate: { run: evaluate, help: "accuracy and macro-F1 of a checkpoint on datasets [--json]" },
  score: { run: score, help: "relevance of every attention head on a discovery set → scores.json" },
  delta: { run: delta, help: "a CT-SFT sparse delta on checkpoints: apply | revert | merge" },
  circuit: { run: circuit, help: "select a circuit from scores.json (--top-k | --budget | --threshold) → circuit.json" },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.help}`);
  return `usage: ctsft <command> [options]\n\ncommands:\n${lines.join("\n")}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`ctsft: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof CtsftError) {
    process.stderr.write(`ctsft: ${e.name} (${e.code}): ${e.message}\n`);
    if (e.traceback && process.env.CTSFT_DEBUG) process.stderr.write(e.traceback);
    process.exitCode = 1;
  } else if (e instanceof TypeError && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`ctsft: ${e.message}\n`);
    process.exitCode = 2;
  } else {
    throw e;
  }
}

