import { resolve } from "node:path";
import { Command, Option } from "commander";
import { Runtime } from "../api/runtime.ts";
import { CircuitStrategy } from "../schema/scoring.ts";
import { headsParser, numberOption, required } from "./args.ts";

const RULES = ["topK", "budget", "threshold", "heads"];
const others = (rule: string) => RULES.filter((r) => r !== rule);

/** `ctsft circuit`: select heads from a scores file into a circuit artifact. */
export function circuitCommand(): Command {
  return new Command("circuit")
    .summary("select a circuit from scores.json (--top-k | --budget | --threshold) → circuit.json")
    .description("Select a circuit (a set of heads, plus every norm) from a scores file by one rule, and write it for `ctsft train --method ctsft --circuit`.")
    .usage("--scores scores.json (--top-k K | --budget F | --threshold T | --heads L:H,...) [--strategy circuit|low|random|explicit] [--seed S] --out circuit.json [--json]")
    .addOption(required("--scores <FILE>", "a scores file from `ctsft score`"))
    .addOption(numberOption("--top-k <K>", "rule: the K heads chosen by --strategy").conflicts(others("topK")))
    .addOption(numberOption("--budget <F>", "rule: heads while they plus all norms touch at most fraction F (0–1] of the parameters").conflicts(others("budget")))
    .addOption(numberOption("--threshold <T>", "rule: every head scoring at least T").conflicts(others("threshold")))
    .addOption(new Option("--heads <L:H,...>", "rule: these heads (strategy explicit)").argParser(headsParser("--heads")).conflicts(others("heads")))
    .addOption(new Option("--strategy <S>", "circuit: the most relevant; low: the least; random: a seeded draw (default: explicit with --heads, else circuit)").choices(CircuitStrategy.options))
    .addOption(numberOption("--seed <S>", "seed of --strategy random", 0))
    .addOption(required("--out <FILE>", "the circuit file to write"))
    .option("--json", "print the circuit file's content as JSON on stdout", false)
    .action(async (f: { scores: string; topK?: number; budget?: number; threshold?: number; heads?: [number, number][]; strategy?: (typeof CircuitStrategy.options)[number]; seed: number; out: string; json: boolean }) => {
      const strategy = f.strategy ?? (f.heads ? "explicit" : "circuit");
      await using rt = await Runtime.start({ device: "cpu" });
      const c = await rt.circuits.select({ scores: resolve(f.scores), strategy, topK: f.topK, budget: f.budget, threshold: f.threshold, heads: f.heads, seed: f.seed, out: resolve(f.out) });
      const summary = `${c.heads.length} heads (${c.heads.map(([l, h]) => `L${l}H${h}`).join(" ")}) + all norms = ${(c.params.fraction * 100).toFixed(3)}% of parameters → ${c.path}`;
      process.stdout.write(f.json ? `${JSON.stringify(c)}\n` : `${summary}\n`);
    });
}
