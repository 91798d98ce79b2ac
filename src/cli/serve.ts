import { parseArgs } from "node:util";
import { serveRuntime } from "../api/serve.ts";

/** `ctsft serve --bind tcp://HOST:PORT --keys DIR [--device D] [--root DIR]`: clients may only name paths inside `--root` (default: the working directory). */
export async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { bind: { type: "string" }, keys: { type: "string" }, device: { type: "string", default: "auto" }, root: { type: "string" } },
  });
  if (!values.bind || !values.keys) {
    process.stderr.write("ctsft serve: --bind tcp://HOST:PORT and --keys DIR are required (remote mode refuses unauthenticated clients)\n");
    return 2;
  }
  const child = await serveRuntime({ bind: values.bind, keys: values.keys, device: values.device, root: values.root });
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}
