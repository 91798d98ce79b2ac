import { Command } from "commander";
import { Runtime } from "../api/runtime.ts";
import { CancelledError } from "../errors.ts";
import type { GenerateOutput } from "../schema/serving.ts";
import { loadAdapted } from "./adapted.ts";
import { numberOption, required } from "./args.ts";

interface GenerateFlags {
  model: string;
  delta?: string;
  prompt: string[];
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK?: number;
  seed?: number;
  stop?: string[];
  device: string;
  json: boolean;
}

/** `ctsft generate`: continue prompts with a checkpoint (optionally with a CT-SFT delta),
 * streaming the text to stdout as it is generated. Ctrl-C stops within one token (exit 130). */
export function generateCommand(): Command {
  return new Command("generate")
    .summary("continue prompts with a checkpoint, optionally with a CT-SFT delta, streaming the text")
    .description(
      "Continue each prompt with transformers' generation (greedy at --temperature 0, else sampled; --seed makes sampling reproducible), " +
        "optionally with a CT-SFT delta (--delta). The generated text (without the prompt) streams to stdout as it is decoded, " +
        "one prompt after the other, each ending with a newline; --json prints one JSON array of {prompt, text, tokens, finishReason} at the end. " +
        "Ctrl-C stops the generation within one token (exit 130).",
    )
    .usage("--model DIR [--delta DIR] --prompt P... [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--stop S...] [--json]")
    .addOption(required("--model <DIR>", "the checkpoint"))
    .option("--delta <DIR>", "a CT-SFT delta to generate with (the base weights are not changed)")
    .addOption(required("--prompt <P...>", "prompts (several after one flag, or the flag repeated)"))
    .addOption(numberOption("--max-new-tokens <N>", "tokens to generate at most per prompt", 64))
    .addOption(numberOption("--temperature <T>", "0: greedy; higher: more random sampling", 0))
    .addOption(numberOption("--top-p <P>", "nucleus sampling: the most probable tokens up to this total probability", 1))
    .addOption(numberOption("--top-k <K>", "sample among the K most probable tokens only"))
    .addOption(numberOption("--seed <S>", "seed of sampling"))
    .option("--stop <S...>", "stop a prompt's generation at any of these strings")
    .option("--device <D>", "auto, cpu, cuda, cuda:N, mps", "auto")
    .option("--json", "print the outputs as one JSON array on stdout instead of streaming", false)
    .action(async (f: GenerateFlags) => {
      const abort = new AbortController();
      const cancel = () => abort.abort(new Error("interrupted"));
      process.once("SIGINT", cancel);
      try {
        await using rt = await Runtime.start({ device: f.device });
        const { model, delta } = await loadAdapted(rt, f);
        const settings = { delta, maxNewTokens: f.maxNewTokens, temperature: f.temperature, topP: f.topP, topK: f.topK, seed: f.seed, stop: f.stop, signal: abort.signal };
        // One prompt at a time, so each one's text streams in order and reads as it is written.
        const outputs: (GenerateOutput & { prompt: string })[] = [];
        for (const prompt of f.prompt) {
          const stream = model.generate(prompt, settings);
          for await (const e of stream) if (!f.json) process.stdout.write(e.text);
          const out = (await stream.result).body.outputs[0] as GenerateOutput;
          if (!f.json) process.stdout.write("\n");
          outputs.push({ prompt, ...out });
        }
        if (f.json) process.stdout.write(`${JSON.stringify(outputs)}\n`);
      } catch (e) {
        if (!(abort.signal.aborted && e instanceof CancelledError)) throw e;
        process.stderr.write("\nctsft generate: interrupted\n");
        process.exitCode = 130;
      } finally {
        process.off("SIGINT", cancel);
      }
    });
}
