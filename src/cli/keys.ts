import { parseArgs } from "node:util";
import { createKeys } from "../api/keys.ts";

/** `ctsft keys --out DIR [--client NAME]` */
export async function keys(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: "string" }, client: { type: "string", default: "client" } } });
  if (!values.out) {
    process.stderr.write("ctsft keys: --out DIR is required\n");
    return 2;
  }
  createKeys(values.out, values.client);
  process.stdout.write(`wrote CURVE keys to ${values.out}: give ${values.client}.key_secret and server.key to the client; keep server.key_secret on the server\n`);
  return 0;
}
