import { existsSync } from "node:fs";
import { join } from "node:path";
import { addClient, createKeys } from "../api/keys.ts";
import { need, parse } from "./args.ts";

const USAGE = "ctsft keys --out DIR [--client NAME] [--overwrite]";

/**
 * `ctsft keys --out DIR [--client NAME] [--overwrite]`
 * - a new (or empty) DIR: the server's pair plus one client pair (`--client`, default `client`);
 * - a DIR that already holds server keys: with `--client NAME`, one more client pair (the server
 *   pair and the other clients are left alone); without it, refused unless `--overwrite`, which
 *   regenerates the server pair (and that client's).
 */
export async function keys(argv: string[]): Promise<number> {
  const { values } = parse(argv, { out: { type: "string" }, client: { type: "string" }, overwrite: { type: "boolean", default: false } }, USAGE);
  const out = need(values.out, "--out", USAGE);
  if (existsSync(join(out, "server.key")) && values.client !== undefined && !values.overwrite) {
    const files = addClient(out, values.client);
    process.stdout.write(`added client ${values.client} to ${out}: give ${files.secretKey} and ${join(out, "server.key")} to that client; restart \`ctsft serve\` to admit it\n`);
    return 0;
  }
  const client = values.client ?? "client";
  const files = createKeys(out, { client, overwrite: values.overwrite });
  process.stdout.write(`wrote CURVE keys to ${out}: give ${files.secretKey} and server.key to the client; keep server.key_secret on the server\n`);
  return 0;
}
