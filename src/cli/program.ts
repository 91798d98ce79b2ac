/** The ctsft command tree on commander, and `run`: argv in, exit code out (the policy is in main.ts). */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { CtsftError } from "../errors.ts";
import { adaptCommand } from "./adapt.ts";
import { circuitCommand } from "./circuit.ts";
import { deltaCommand } from "./delta.ts";
import { demoCommand } from "./demo.ts";
import { doctorCommand } from "./doctor.ts";
import { evaluateCommand } from "./evaluate.ts";
import { generateCommand } from "./generate.ts";
import { keysCommand } from "./keys.ts";
import { newModelCommand } from "./new-model.ts";
import { predictCommand } from "./predict.ts";
import { rayCommand } from "./ray.ts";
import { scoreCommand } from "./score.ts";
import { serveCommand } from "./serve.ts";
import { setupCommand } from "./setup.ts";
import { trainCommand } from "./train.ts";

/** The package's version, from the nearest package.json named ctsft above this file. */
function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "ctsft" && pkg.version) return pkg.version;
    } catch {
      // no (readable) package.json here: look further up
    }
    if (dirname(dir) === dir) return "unknown";
  }
}

const EXIT_CODES = `
Exit codes: 0 done; 1 the work failed (an error from the SDK or the runtime, printed as
"ctsft: NAME (code): message"); 2 a usage error (unknown command or option, missing or
invalid value), printed with the command's usage line.
Set CTSFT_DEBUG=1 to print the runtime's traceback with an error.`;

/** The whole command tree, every command with the same error handling and help. */
export function program(): Command {
  const root = new Command("ctsft")
    .description("Circuit-Targeted Supervised Fine-Tuning: adapt a language model to a low-resource language by fine-tuning only the attention heads that carry the task.")
    .usage("<command> [options]")
    .version(packageVersion(), "-V, --version", "print the ctsft version")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .enablePositionalOptions()
    .addHelpText("after", EXIT_CODES);
  for (const make of [demoCommand, adaptCommand, setupCommand, doctorCommand, serveCommand, keysCommand, newModelCommand, trainCommand, evaluateCommand, predictCommand, generateCommand, scoreCommand, deltaCommand, circuitCommand, rayCommand]) {
    root.addCommand(make());
  }
  configure(root, "ctsft");
  return root;
}

/** exitOverride (errors come back to `run`), `NAME: error: …` plus the usage line, for `cmd`
 * and every command below it (addCommand does not pass settings down). */
function configure(cmd: Command, name: string): void {
  cmd
    .exitOverride()
    .configureOutput({ outputError: (message, write) => write(`${name}: ${message}`) })
    .showHelpAfterError(`usage: ${name} ${cmd.usage()}\nrun "${name} --help" for ${cmd.commands.length > 0 ? "its commands" : "every option and its default"}`)
    .helpOption("-h, --help", "show help");
  if (cmd.commands.length > 0) cmd.helpCommand("help [command]", "show help for a command");
  for (const sub of cmd.commands) configure(sub, `${name} ${sub.name()}`);
}

/** Run the CLI on `argv` (without node and the script); the exit code. */
export async function run(argv: string[]): Promise<number> {
  process.exitCode = undefined;
  try {
    await program().parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed it (help, version, usage error)
    if (e instanceof CtsftError) {
      process.stderr.write(`ctsft: ${e.name} (${e.code}): ${e.message}\n`);
      if (e.traceback && process.env.CTSFT_DEBUG) process.stderr.write(e.traceback);
      return 1;
    }
    // Anything else is a failure too (a tool the runtime needs, a bug): one line, the stack on request.
    process.stderr.write(`ctsft: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
    if (process.env.CTSFT_DEBUG) process.stderr.write(`${e instanceof Error ? e.stack : ""}\n`);
    else process.stderr.write("(CTSFT_DEBUG=1 shows where it came from)\n");
    return 1;
  }
}

