import { Command } from "commander";
import { serveRuntime } from "../api/serve.ts";
import { numberOption, required } from "./args.ts";

/** `ctsft serve`: a runtime for remote clients. Clients may only name paths inside `--root`
 * (default: the working directory), which must not contain the key directory. Exits with the
 * server's exit code. */
export function serveCommand(): Command {
  return new Command("serve")
    .summary("serve a runtime for remote clients: --bind tcp://HOST:PORT --keys DIR")
    .description(
      "Serve a runtime to remote clients over ZeroMQ with CURVE encryption (requests on PORT, control on PORT+1, heartbeats on PORT+2). " +
        "Only clients whose keys are in DIR/clients/ are admitted. Clients may name only paths inside --root, which must exist and must not contain the key folder. " +
        "Limits are per client.",
    )
    .usage(
      "--bind tcp://HOST:PORT --keys DIR [--root DIR] [--device D] [--ranks N] [--admin NAME...] [--ttl S] [--max-models N] [--max-jobs N] [--max-message BYTES] [--job-buffer BYTES] [--allow-remote-code] [--allow-download]",
    )
    .addOption(required("--bind <tcp://HOST:PORT>", "where to listen"))
    .addOption(required("--keys <DIR>", "the key folder from `ctsft keys` (outside --root)"))
    .option("--root <DIR>", "clients' paths must lie inside it (default: the working directory)")
    .option("--device <D>", "auto, cpu, cuda, cuda:N, mps", "auto")
    .addOption(numberOption("--ranks <N>", "processes under torchrun on this host, e.g. one per GPU (default: 1)"))
    .option("--admin <NAME...>", "client key names allowed to shut the server down (several, or --admin repeated; default: none)")
    .addOption(numberOption("--ttl <S>", "seconds after which an idle client's handles and undelivered results are freed (default: 600)"))
    .addOption(numberOption("--max-models <N>", "models one client may hold at once (default: 4)"))
    .addOption(numberOption("--max-jobs <N>", "queued or running jobs per client (default: 16)"))
    .addOption(numberOption("--max-message <BYTES>", "largest request, refused as its size is announced (default: 64 MiB)"))
    .addOption(numberOption("--job-buffer <BYTES>", "bytes of each job's stream kept for re-attaching (default: 64 MiB)"))
    .option("--allow-remote-code", "let clients load checkpoints with trustRemoteCode (runs their Python on this host)")
    .option("--allow-download", "let clients load models from the Hugging Face hub")
    .action(
      async (f: { bind: string; keys: string; root?: string; device: string; ranks?: number; admin?: string[]; ttl?: number; maxModels?: number; maxJobs?: number; maxMessage?: number; jobBuffer?: number; allowRemoteCode?: boolean; allowDownload?: boolean }) => {
        const child = await serveRuntime({
          bind: f.bind,
          keys: f.keys,
          device: f.device,
          ranks: f.ranks,
          root: f.root,
          admin: f.admin,
          ttlSeconds: f.ttl,
          maxModels: f.maxModels,
          maxJobs: f.maxJobs,
          maxMessageBytes: f.maxMessage,
          jobBufferBytes: f.jobBuffer,
          allowRemoteCode: f.allowRemoteCode,
          allowDownload: f.allowDownload,
        });
        for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
        process.exitCode = await new Promise<number>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
      },
    );
}
