import { resolve } from "node:path";
import { Command, Option } from "commander";
import { Runtime } from "../api/runtime.ts";
import { Family } from "../schema/models.ts";
import { fieldsOption, numberOption, required } from "./args.ts";

/** `ctsft new-model`: a real HF checkpoint from scratch, loadable by plain from_pretrained. */
export function newModelCommand(): Command {
  return new Command("new-model")
    .summary("build a real HF checkpoint from scratch (family, size, BPE tokenizer on a corpus)")
    .description(
      "Build a real Hugging Face checkpoint from scratch: the family's config class, random weights as safetensors, and a byte-level BPE " +
        "tokenizer trained on the corpus (text files, or the text column of labeled CSV/JSONL files). Plain from_pretrained loads it.",
    )
    .usage("--family F --layers L --heads H [--kv-heads K] --d-model D [--d-ff N] --corpus FILE... [--vocab N] --out DIR [--seed S] [--overwrite] [--json]")
    .addOption(new Option("--family <F>", "model family").choices(Family.options).makeOptionMandatory())
    .addOption(numberOption("--layers <L>", "transformer layers").makeOptionMandatory())
    .addOption(numberOption("--heads <H>", "attention heads per layer").makeOptionMandatory())
    .addOption(numberOption("--kv-heads <K>", "key/value heads (grouped-query attention; default: --heads)"))
    .addOption(numberOption("--d-model <D>", "hidden size").makeOptionMandatory())
    .addOption(numberOption("--d-ff <N>", "feed-forward size (default: the family's usual multiple of --d-model)"))
    .addOption(required("--corpus <FILE...>", "tokenizer training text (several after one --corpus, or --corpus repeated)"))
    .addOption(fieldsOption("the text column of labeled files"))
    .addOption(numberOption("--vocab <N>", "tokenizer vocabulary size", 2000))
    .addOption(required("--out <DIR>", "where to write the checkpoint"))
    .addOption(numberOption("--seed <S>", "seed of the random weights", 0))
    .option("--overwrite", "replace --out even if it holds files ctsft did not write", false)
    .option("--json", "print one JSON summary on stdout", false)
    .action(
      async (f: { family: Family; layers: number; heads: number; kvHeads?: number; dModel: number; dFf?: number; corpus: string[]; fields?: Record<string, string>; vocab: number; out: string; seed: number; overwrite: boolean; json: boolean }) => {
        await using rt = await Runtime.start();
        const result = await rt.models.create({
          family: f.family,
          layers: f.layers,
          heads: f.heads,
          kvHeads: f.kvHeads,
          dModel: f.dModel,
          dFf: f.dFf,
          corpus: f.corpus.map((p) => resolve(p)),
          fields: f.fields,
          vocab: f.vocab,
          out: resolve(f.out),
          seed: f.seed,
          overwrite: f.overwrite,
        });
        process.stdout.write(f.json ? `${JSON.stringify(result)}\n` : `wrote ${result.family} checkpoint (${result.params} parameters) to ${result.path}\n`);
      },
    );
}
