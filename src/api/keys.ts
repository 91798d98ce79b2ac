import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { curveKeyPair } from "zeromq";
import { BadRequestError } from "../errors.ts";
import { writeFileAtomic } from "../internal/atomic.ts";
import type { ConnectOptions } from "./runtime.ts";

/**
 * CURVE keys in ZeroMQ's certificate format, laid out for `ctsft serve --keys DIR`:
 * `server.key` / `server.key_secret` (the server's pair), `clients/NAME.key` (public keys the
 * server accepts), `NAME.key_secret` (a client's pair, to pass to {@link readClientKeys}).
 */
export function createKeys(dir: string, client = "client"): void {
  mkdirSync(join(dir, "clients"), { recursive: true });
  const server = curveKeyPair();
  const user = curveKeyPair();
  writeCert(join(dir, "server.key"), server.publicKey);
  writeCert(join(dir, "server.key_secret"), server.publicKey, server.secretKey);
  writeCert(join(dir, "clients", `${client}.key`), user.publicKey);
  writeCert(join(dir, `${client}.key_secret`), user.publicKey, user.secretKey);
}

/** The options {@link Runtime.connect} needs, read from a key directory made by `ctsft keys`. */
export function readClientKeys(dir: string, client = "client"): Pick<ConnectOptions, "serverKey" | "clientKeys"> {
  const server = readCert(join(dir, "server.key"));
  const mine = readCert(join(dir, `${client}.key_secret`));
  if (mine.secret === undefined) throw new BadRequestError(`${join(dir, `${client}.key_secret`)} holds no secret key`, { path: "keys" });
  return { serverKey: server.public, clientKeys: { publicKey: mine.public, secretKey: mine.secret } };
}

function writeCert(path: string, publicKey: string, secretKey?: string): void {
  const lines = [
    `#   ZeroMQ CURVE ${secretKey ? "**Secret** " : "Public "}Certificate (written by ctsft keys)`,
    secretKey ? "#   Keep this file private." : "#   Public key: safe to share.",
    "",
    "metadata",
    "curve",
    `    public-key = "${publicKey}"`,
  ];
  if (secretKey) lines.push(`    secret-key = "${secretKey}"`);
  writeFileAtomic(path, `${lines.join("\n")}\n`);
  if (secretKey) chmodSync(path, 0o600);
}

function readCert(path: string): { public: string; secret: string | undefined } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new BadRequestError(`cannot read ${path}; create keys with \`npx ctsft keys --out DIR\``, { path: "keys" });
  }
  const get = (k: string) => new RegExp(`${k}\\s*=\\s*"([^"]{40})"`).exec(text)?.[1];
  const pub = get("public-key");
  if (pub === undefined) throw new BadRequestError(`${path} holds no public-key`, { path: "keys" });
  return { public: pub, secret: get("secret-key") };
}
