// The wire contract is generated from the zod schemas (scripts/contract.ts): docs/contract.json
// and the op reference in docs/protocol.md must be what the schemas generate today.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { BEGIN, buildContract, CONTRACT_PATH, END, generate, PROTOCOL_PATH, REGENERATE } from "../../../scripts/contract.ts";
import { CONTROL_OPS, OPS } from "../../../src/schema/index.ts";

describe("wire contract", () => {
  const fresh = generate();

  it("docs/contract.json is what the zod schemas generate", () => {
    assert.ok(readFileSync(CONTRACT_PATH, "utf8") === fresh.contract, `docs/contract.json is stale: the zod schemas in src/schema changed. Run \`${REGENERATE}\` and commit the result.`);
  });

  it("the op reference in docs/protocol.md is what the zod schemas generate", () => {
    const onDisk = readFileSync(PROTOCOL_PATH, "utf8");
    assert.ok(onDisk.includes(BEGIN) && onDisk.includes(END), `docs/protocol.md lost its ${BEGIN} … ${END} markers`);
    assert.ok(onDisk === fresh.protocol, `the op reference in docs/protocol.md is stale. Run \`${REGENERATE}\` and commit the result.`);
  });

  it("documents every op, each with a request schema, its result and a valid example", () => {
    const c = buildContract();
    assert.deepEqual(Object.keys(c.ops), Object.keys(OPS));
    assert.deepEqual(Object.keys(c.control), Object.keys(CONTROL_OPS));
    for (const [name, op] of Object.entries(c.ops)) {
      assert.ok(op.request && op.result, name);
      assert.equal(op.streams, "event" in OPS[name as keyof typeof OPS], name);
      assert.ok(op.errors.includes("bad_request"), name);
      const section = fresh.protocol.indexOf(`### \`${name}\``);
      assert.ok(section > fresh.protocol.indexOf(BEGIN), `protocol.md has no section for ${name}`);
    }
  });

  it("every $ref points into $defs", () => {
    const c = buildContract();
    const refs = [...JSON.stringify(c).matchAll(/"\$ref":"#\/\$defs\/([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.length > 0);
    for (const r of refs) assert.ok(r in c.$defs, r);
    assert.ok(!/"\$ref":"(?!#\/\$defs\/)/.test(JSON.stringify(c)), "a $ref outside #/$defs");
  });
});
