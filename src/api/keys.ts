import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { curveKeyPair } from "zeromq";
import { BadRequestError } from "../errors.ts";
import { writeFileAtomic } from "../internal/atomic.ts";
import type { ConnectOptions } from "./runtime.ts";

/** Options of {@link createKeys}. */
export interface CreateKeysOptions {
  /** Name of the first client pair (default `client`). */
  client?: string;
  /** Replace an existing server pair (and that client's pair). Every client then needs the new
   * `server.key`; the public keys already in `clients/` stay authorized. */
  overwrite?: boolean;
}

/** The files of one client pair, as {@link addClient} wrote them. */
export interface ClientKeyFiles {
  /** `clients/NAME.key`: the public key the server accepts. */
  publicKey: string;
  /** `NAME.key_secret`: the client's pair, for {@link readClientKeys}; mode 0600. */
  secretKey: string;
}

const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SECRET_MODE = 0o600;

/**
 * CURVE keys in ZeroMQ's certificate format, laid out for `ctsft serve --keys DIR`:
 * `server.key` / `server.key_secret` (the server's pair), `clients/NAME.key` (public keys the
 * server accepts), `NAME.key_secret` (a client's pair, to pass to {@link readClientKeys}).
 *
 * Refuses (`BadRequestError` on `out`) a directory that already holds server keys, unless
 * `overwrite`: regenerating them silently would lock out every client. To authorize another
 * client in an existing directory use {@link addClient}. Secret files are created with mode
 * 0600 from their first byte (the directory itself 0700 when created here).
 */
export function createKeys(dir: string, options: CreateKeysOptions = {}): ClientKeyFiles {
  const client = checkClientName(options.client ?? "client");
  const existing = ["server.key", "server.key_secret"].filter((f) => existsSync(join(dir, f)));
  if (existing.length > 0 && !options.overwrite) {
    throw new BadRequestError(
      `${dir} already holds server keys (${existing.join(", ")}); regenerating them would lock out every client. ` +
        `Add a client with \`ctsft keys --out ${dir} --client NAME\` (addClient), or pass --overwrite (overwrite: true) to replace the server keys`,
      { path: "out" },
    );
  }
  makeKeyDir(dir);
  const server = curveKeyPair();
  const exclusive = !options.overwrite;
  writeCert(join(dir, "server.key_secret"), server.publicKey, server.secretKey, exclusive);
  writeCert(join(dir, "server.key"), server.publicKey, undefined, exclusive);
  return writeClient(dir, client, exclusive);
}

/**
 * Authorize one more client in an existing key directory: writes `clients/NAME.key` and
 * `NAME.key_secret` (mode 0600), and never touches the server's pair or any other client.
 * Refuses (`BadRequestError` on `client`) a name that already has keys, and a directory with no
 * server keys. A running `ctsft serve` reads `clients/` when it starts: restart it to admit
 * the new client.
 */
export function addClient(dir: string, name: string): ClientKeyFiles {
  checkClientName(name);
  if (!existsSync(join(dir, "server.key")) || !existsSync(join(dir, "server.key_secret"))) {
    throw new BadRequestError(`${dir} holds no server keys; create them first with \`ctsft keys --out ${dir}\``, { path: "out" });
  }
  return writeClient(dir, name, true);
}

/** The options {@link Runtime.connect} needs, read from a key directory made by `ctsft keys`
 * (`client` names a pair added by {@link addClient}; default `client`). */
export function readClientKeys(dir: string, client = "client"): Pick<ConnectOptions, "serverKey" | "clientKeys"> {
  const server = readCert(join(dir, "server.key"));
  const mine = readCert(join(dir, `${client}.key_secret`));
  if (mine.secret === undefined) throw new BadRequestError(`${join(dir, `${client}.key_secret`)} holds no secret key`, { path: "keys" });
  return { serverKey: server.public, clientKeys: { publicKey: mine.public, secretKey: mine.secret } };
}

function checkClientName(name: string): string {
  if (!CLIENT_NAME.test(name) || name === "server") {
    throw new BadRequestError(
      `client name ${JSON.stringify(name)} is not allowed: use letters, digits, '.', '_' or '-' (at most 64, not starting with '.' or '-'), and not "server"`,
      { path: "client" },
    );
  }
  return name;
}

function makeKeyDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, "clients"), { recursive: true });
}

function writeClient(dir: string, name: string, exclusive: boolean): ClientKeyFiles {
  const files = { publicKey: join(dir, "clients", `${name}.key`), secretKey: join(dir, `${name}.key_secret`) };
  if (exclusive) {
    const taken = [files.publicKey, files.secretKey].filter((f) => existsSync(f));
    if (taken.length > 0) {
      throw new BadRequestError(`client ${JSON.stringify(name)} already has keys (${taken.join(", ")}); choose another name, or remove them first`, { path: "client" });
    }
  }
  makeKeyDir(dir);
  const pair = curveKeyPair();
  writeCert(files.secretKey, pair.publicKey, pair.secretKey, exclusive);
  writeCert(files.publicKey, pair.publicKey, undefined, exclusive);
  return files;
}

function writeCert(path: string, publicKey: string, secretKey: string | undefined, exclusive: boolean): void {
  const lines = [
    `#   ZeroMQ CURVE ${secretKey ? "**Secret** " : "Public "}Certificate (written by ctsft keys)`,
    secretKey ? "#   Keep this file private." : "#   Public key: safe to share.",
    "",
    "metadata",
    "curve",
    `    public-key = "${publicKey}"`,
  ];
  if (secretKey) lines.push(`    secret-key = "${secretKey}"`);
  try {
    // A secret is created 0600 from its first byte: the temp file is opened with that mode.
    writeFileAtomic(path, `${lines.join("\n")}\n`, { mode: secretKey ? SECRET_MODE : 0o644, exclusive });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      throw new BadRequestError(`${path} appeared while ctsft keys was writing; nothing was replaced`, { path: "out" });
    }
    throw e;
  }
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
