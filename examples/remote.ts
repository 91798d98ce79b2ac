// The remote mode end to end on one machine: serve a runtime over tcp with CURVE keys,
// connect as an authorized client, run a streamed op, and watch an unknown key be refused.
//
//   npx tsx examples/remote.ts [WORK_DIR]            (about 10 s)
//
// On a real setup the two halves run on different hosts:
//   GPU host:  npx ctsft keys --out ~/ctsft-keys
//              npx ctsft serve --bind tcp://0.0.0.0:5555 --keys ~/ctsft-keys --root ~/ctsft-work
//   client:    copy server.key and client.key_secret from ~/ctsft-keys, then
//              Runtime.connect("tcp://gpu-host:5555", readClientKeys("keys/"))
// The keys must lie outside the root (clients read and write inside it; serve refuses otherwise).
// Here everything binds to 127.0.0.1 only.
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
// serveRuntime is what `ctsft serve` runs; it lives in src/api/serve.ts.
import { serveRuntime } from "../src/api/serve.ts";
import { BadRequestError, createKeys, readClientKeys, Runtime, RuntimeLostError } from "../src/index.ts";

const work = resolve(process.argv[2] ?? mkdtempSync(join(tmpdir(), "ctsft-remote-")));
mkdirSync(work, { recursive: true });

// The server listens on three consecutive ports (requests, control, heartbeat), so look for
// a base port whose next two are free as well.
async function freePortTriple(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((ok) => {
      const s = createServer();
      s.once("error", () => ok(false));
      s.listen(port, "127.0.0.1", () => s.close(() => ok(true)));
    });
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    if ((await Promise.all([base, base + 1, base + 2].map(free))).every(Boolean)) return base;
  }
  throw new Error("no three consecutive free ports on 127.0.0.1");
}

async function stop(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM"); // the runtime shuts down cleanly on SIGTERM
  await exited;
}

// Keys: the server's pair, plus one client pair whose public key goes into keys/clients/.
// Only clients whose public key is in that directory get a handshake.
const keys = join(work, "keys");
createKeys(keys);
const endpoint = `tcp://127.0.0.1:${await freePortTriple()}`;
// A remote runtime only touches paths inside its root (relative paths resolve against it).
// The root must not contain the keys.
const root = join(work, "root");
mkdirSync(root, { recursive: true });
const server = await serveRuntime({ bind: endpoint, keys, root, device: "cpu", logLevel: "WARNING" });
console.log(`server: pid ${server.pid} on ${endpoint} (control +1, heartbeat +2)`);

try {
  // ZeroMQ connects lazily and retries, so connecting while Python is still starting is
  // fine: the connect timeout only bounds the wait for the server's hello.
  {
    await using rt = await Runtime.connect(endpoint, { ...readClientKeys(keys), connectTimeoutMs: 60_000 });
    const info = await rt.info();
    console.log(`connected: mode ${rt.mode}, runtime ${info.runtimeVersion} (pid ${info.pid}), torch ${info.torch}, cuda ${info.cuda}`);

    // A streamed op over the network: events arrive as they are produced, with the same
    // back-pressure and cancellation as locally.
    let ticks = 0;
    const stream = rt.diagnose({ count: 5, intervalMs: 20 });
    for await (const ev of stream) {
      ticks++;
      console.log(`  event ${ev.step + 1}/${ev.total}`);
    }
    console.log(`stream: ${ticks} events, result ${JSON.stringify((await stream.result).body.count)}`);

    // Paths in requests are the *server's* paths, resolved inside its root: data and
    // checkpoints live where the runtime runs. (Here that is the same machine.) A path
    // outside the root is refused with a BadRequestError on that field.
    const { files } = await rt.data.synthetic({ out: "data", languages: { src: 0 }, nTrain: 30, nValid: 9, nTest: 9 });
    const train = await rt.data.load({ path: files.src?.train as string });
    console.log(`remote dataset: ${train.info.n} examples, labels ${train.info.labels.join("/")}`);
    await train.release();
    const outside = await rt.data.load({ path: "/etc/hostname" }).catch((e: unknown) => e);
    if (!(outside instanceof BadRequestError)) throw new Error("a path outside the root was accepted");
    console.log(`outside the root: ${outside.name} at ${outside.path}: ${outside.message}`);
  } // `await using` disconnects here; the server keeps running for other clients

  // A client whose key the server never authorized. CURVE refuses it during the handshake,
  // so it receives nothing at all and the connect fails with RuntimeLostError.
  const strangerKeys = join(work, "stranger-keys");
  createKeys(strangerKeys);
  const stranger = { serverKey: readClientKeys(keys).serverKey, clientKeys: readClientKeys(strangerKeys).clientKeys };
  const refused = await Runtime.connect(endpoint, { ...stranger, connectTimeoutMs: 2_000 }).then(
    async (rt) => {
      await rt.close();
      return false;
    },
    (e: unknown) => {
      if (!(e instanceof RuntimeLostError)) throw e;
      console.log(`unknown client refused: ${e.name}: ${e.message}`);
      return true;
    },
  );
  if (!refused) {
    console.error("unexpected: the unknown client was served");
    process.exitCode = 1;
  }
} finally {
  await stop(server);
  console.log("server stopped");
}
if (process.exitCode === undefined) console.log("remote: ok");
