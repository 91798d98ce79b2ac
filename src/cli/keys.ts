import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { addClient, createKeys } from "../api/keys.ts";
import { required } from "./args.ts";

/**
 * `ctsft keys --out DIR [--client NAME] [--overwrite]`
 * - a new (or empty) DIR: the server's pair plus one client pair (`--client`, default `client`);
 * - a DIR that already holds server keys: with `--client NAME`, one more client pair (the server
 *   pair and the other clients are left alone); without it, refused unless `--overwrite`, which
 *   regenerates the server pair (and that client's).
 */
export function keysCommand(): Command {
  return new Command("keys")
    .summary("create CURVE keys for serve/connect: --out DIR")
    .description(
      "Create CURVE keys for `ctsft serve` and Runtime.connect: the server's pair and one client pair. On a folder that already holds " +
        "server keys, --client NAME adds one more client (nothing else is touched); without it the folder is refused unless --overwrite, " +
        "which regenerates the server keys and locks out every existing client.",
    )
    .usage("--out DIR [--client NAME] [--overwrite]")
    .addOption(required("--out <DIR>", "the key folder"))
    .option("--client <NAME>", "the client's name (default: client)")
    .option("--overwrite", "regenerate the server keys in a folder that already holds them", false)
    .action((f: { out: string; client?: string; overwrite: boolean }) => {
      if (existsSync(join(f.out, "server.key")) && f.client !== undefined && !f.overwrite) {
        const files = addClient(f.out, f.client);
        process.stdout.write(`added client ${f.client} to ${f.out}: give ${files.secretKey} and ${join(f.out, "server.key")} to that client; restart \`ctsft serve\` to admit it\n`);
        return;
      }
      const files = createKeys(f.out, { client: f.client ?? "client", overwrite: f.overwrite });
      process.stdout.write(`wrote CURVE keys to ${f.out}: give ${files.secretKey} and server.key to the client; keep server.key_secret on the server\n`);
    });
}
