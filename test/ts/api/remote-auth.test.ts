// The remote mode refuses clients without an authorized CURVE key: they get nothing.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { curveKeyPair, Dealer } from "zeromq";
import { readClientKeys } from "../../../src/api/keys.ts";
import { Runtime, RuntimeLostError } from "../../../src/index.ts";
import { encodeMessage } from "../../../src/transport/frames.ts";
import { startServer, stopServer } from "../helpers/runtimes.ts";

describe("remote mode authentication", () => {
  let srv: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await stopServer(srv.server);
  });

  it("a client with an unknown key never completes the handshake", async () => {
    const { serverKey } = readClientKeys(srv.keysDir);
    const stranger = curveKeyPair();
    await assert.rejects(
      Runtime.connect(srv.endpoint, { serverKey, clientKeys: stranger, connectTimeoutMs: 2000 }),
      (e: unknown) => e instanceof RuntimeLostError && /no hello/.test(e.message),
    );
  });

  it("a plaintext client gets no reply at all", async () => {
    const sock = new Dealer({ linger: 0, receiveTimeout: 1500 });
    sock.connect(srv.endpoint);
    await sock.send(encodeMessage({ v: 1, id: "p", kind: "req", op: "ping", seq: 0, body: {} }));
    await assert.rejects(sock.receive(), (e: unknown) => (e as { code?: string }).code === "EAGAIN");
    sock.close();
  });

  it("the authorized client is served", async () => {
    await using rt = await Runtime.connect(srv.endpoint, readClientKeys(srv.keysDir));
    await rt.ping();
    assert.equal(rt.mode, "remote");
  });
});
