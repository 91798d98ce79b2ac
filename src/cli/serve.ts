import { serveRuntime } from "../api/serve.ts";
import { need, num, parse } from "./args.ts";

const USAGE =
  "ctsft serve --bind tcp://HOST:PORT --keys DIR [--root DIR] [--device D] [--admin NAME]... [--ttl S] [--max-models N] " +
  "[--max-jobs N] [--max-message BYTES] [--job-buffer BYTES] [--allow-remote-code] [--allow-download]";

/** `ctsft serve`: a runtime for remote clients. Clients may only name paths inside `--root`
 * (default: the working directory), which must not contain the key directory. */
export async function serve(argv: string[]): Promise<number> {
  const { values: v } = parse(
    argv,
    {
      bind: { type: "string" },
      keys: { type: "string" },
      device: { type: "string", default: "auto" },
      root: { type: "string" },
      admin: { type: "string", multiple: true },
      ttl: { type: "string" },
      "max-models": { type: "string" },
      "max-jobs": { type: "string" },
      "max-message": { type: "string" },
      "job-buffer": { type: "string" },
      "allow-remote-code": { type: "boolean" },
      "allow-download": { type: "boolean" },
    },
    USAGE,
  );
  const child = await serveRuntime({
    bind: need(v.bind, "--bind", USAGE),
    keys: need(v.keys, "--keys", USAGE),
    device: v.device,
    root: v.root,
    admin: v.admin,
    ttlSeconds: num(v.ttl, "--ttl"),
    maxModels: num(v["max-models"], "--max-models"),
    maxJobs: num(v["max-jobs"], "--max-jobs"),
    maxMessageBytes: num(v["max-message"], "--max-message"),
    jobBufferBytes: num(v["job-buffer"], "--job-buffer"),
    allowRemoteCode: v["allow-remote-code"],
    allowDownload: v["allow-download"],
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}
