// The wire contract, generated from the zod schemas (the single source): JSON Schema of every
// op's request, events and result in docs/contract.json, and the op reference of
// docs/protocol.md (between `<!-- ops:begin -->` and `<!-- ops:end -->`).
//
//   npx tsx scripts/contract.ts          regenerate both files
//   npx tsx scripts/contract.ts --check  exit 1 when either is stale
//
// test/ts/schema/contract.test.ts regenerates in memory and fails on drift;
// test/py/protocol/test_contract.py checks the runtime's msgspec bodies against contract.json.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { z } from "zod";
import * as S from "../src/schema/index.ts";
import { CONTROL_OPS, ErrorCode, OPS, type OpName, PROTOCOL_VERSION } from "../src/schema/index.ts";

export const REGENERATE = "npx tsx scripts/contract.ts";
const ROOT = new URL("../", import.meta.url);
export const CONTRACT_PATH = fileURLToPath(new URL("docs/contract.json", ROOT));
export const PROTOCOL_PATH = fileURLToPath(new URL("docs/protocol.md", ROOT));
export const BEGIN = "<!-- ops:begin -->";
export const END = "<!-- ops:end -->";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json };
type ControlName = keyof typeof CONTROL_OPS;
type Code = z.infer<typeof ErrorCode>;

/** Hand-written per op: a one-line summary, the error codes beyond the common ones, and a
 * small example request body (checked against the op's request schema when generating). */
interface OpDoc {
  summary: string;
  errors?: Code[];
  example: unknown;
  tensors?: string;
}

/** Every request-socket op can answer these. */
const COMMON: Code[] = ["bad_request", "not_found", "cancelled", "internal", "out_of_memory", "version_mismatch"];
const CONTROL_COMMON: Code[] = ["bad_request", "version_mismatch"];

const DOCS: Record<OpName, OpDoc> = {
  info: { summary: "Versions of Python, torch and transformers, CUDA devices and memory, the default device.", example: {} },
  ping: { summary: "Does nothing; answers `{}` (a round trip through the compute thread).", example: {} },
  echo: {
    summary: "Returns its payload and tensor frames unchanged (a round-trip check of the codec).",
    example: { payload: { hello: "world" }, viaTorch: true },
    tensors: "any tensor frames; the result carries the same tensors",
  },
  diagnose: {
    summary: "Streams `count` ticks `intervalMs` apart, optionally failing at step `failAt` with `failCode` (a bridge check).",
    example: { count: 3, intervalMs: 10 },
  },
  "model.load": {
    summary: "Loads a checkpoint directory, a `.gguf` file or a cached hub id; returns a model handle.",
    errors: ["forbidden"],
    example: { source: "ckpt/tiny-llama", dtype: "float32" },
  },
  "model.info": { summary: "What the runtime knows about a loaded model.", example: { handle: "m1" } },
  "model.save": {
    summary: "Writes a loaded model as a plain HF checkpoint (plus `ctsft.json`, and a CT-SFT delta or LoRA adapter beside it).",
    errors: ["non_finite"],
    example: { handle: "m1", out: "out/adapted" },
  },
  "delta.apply": {
    summary: "Applies a sparse CT-SFT delta (or merges a LoRA adapter) onto a loaded model.",
    errors: ["non_finite"],
    example: { model: "m1", delta: "out/adapted/ctsft-delta" },
  },
  "delta.revert": {
    summary: "Subtracts a previously applied delta (or unmerges the adapter).",
    errors: ["non_finite"],
    example: { model: "m1", delta: "out/adapted/ctsft-delta" },
  },
  "model.create": {
    summary: "Builds a real HF checkpoint from scratch: trains a BPE tokenizer on `corpus`, initialises the weights from `seed`, writes to `out`.",
    example: { family: "llama", layers: 2, heads: 4, kvHeads: 2, dModel: 32, corpus: ["task/src/train.csv"], vocab: 600, out: "ckpt/tiny-llama" },
  },
  release: { summary: "Frees a model, dataset or baseline handle.", example: { handle: "m1" } },
  "data.load": { summary: "Loads a labeled dataset once; later ops refer to it as `{handle}`.", example: { data: { path: "task/src/train.csv", perClass: 20 } } },
  "data.synthetic": {
    summary: "Writes the seeded synthetic multilingual sentiment task as CSV files (a source language and targets at given distances).",
    example: { out: "task", seed: 0, languages: { easy: 0.2 }, nTrain: 120, nValid: 30, nTest: 60 },
  },
  train: {
    summary: "Fine-tunes a loaded model in place by one method (`full`, `ctsft`, `norms`, `lora`); streams `start`, `step` and `epoch` events.",
    errors: ["non_finite"],
    example: { model: "m1", data: { path: "task/src/train.csv" }, valid: { path: "task/src/valid.csv" }, epochs: 1, lr: 0.001 },
  },
  evaluate: {
    summary: "Accuracy, macro-F1, per-class counts and confusion of a model on one or more datasets; one event per dataset.",
    errors: ["non_finite"],
    example: { model: "m1", data: [{ path: "task/src/test.csv" }] },
  },
  baseline: {
    summary: "The mean of every head's output z over a discovery set, kept in the runtime as a baseline handle (tensor `mean` travels with the result).",
    errors: ["non_finite"],
    example: { model: "m1", data: { path: "task/src/valid.csv", perClass: 8 } },
    tensors: "the result carries tensor `mean` (float32, [layers, heads, headDim])",
  },
  score: {
    summary: "Relevance of every attention head to the task by one scorer; the result is the scores file.",
    errors: ["non_finite"],
    example: { model: "m1", data: { path: "task/src/valid.csv", perClass: 8 }, method: "cdt", out: "out/scores.json" },
  },
  "circuit.select": {
    summary: "Selects a circuit from a scores file by a rule (top-k, parameter budget or threshold) under a strategy.",
    example: { scores: "out/scores.json", topK: 2 },
  },
  "deltas.load": {
    summary:
      "Keeps a sparse delta beside a model's weights under a name, for `predict` and `generate` to use per row; the weights themselves never change. " +
      "Refused (`body.delta`) unless the delta's base fingerprint is the model's, and (`body.name`) when the name is taken and not `overwrite`. " +
      "While a model has named deltas, ops that change its weights (`train`, `delta.apply`, `delta.revert`) are refused on `body.model`.",
    example: { model: "m1", name: "jav", delta: "out/jav/ctsft-delta" },
  },
  "deltas.unload": { summary: "Drops a named delta from a model; `unloaded` is false when it was not loaded.", example: { model: "m1", name: "jav" } },
  "deltas.list": { summary: "The model's named deltas, in loading order.", example: { model: "m1" } },
  predict: {
    summary:
      "Class probabilities of texts (or of a dataset's texts), batched, each row with its own delta or the base model; a `batch` event after each batch. " +
      "Empty `texts` give an empty result. An unknown delta name is `not_found` on `body.delta` (per row: `body.delta.N`); a per-row `delta` of the wrong length is refused on `body.delta`.",
    errors: ["non_finite"],
    example: { model: "m1", texts: ["the food was great", "nasi ne enak"], delta: [null, "jav"] },
  },
  generate: {
    summary:
      "Continues each prompt with transformers' own generation (greedy at temperature 0, else sampled from `seed`); a `token` event per decoded piece. " +
      "A cancel stops it within one token. Delta names are checked as for `predict`.",
    example: { model: "m1", prompts: ["Once upon a time"], maxNewTokens: 16, delta: "jav" },
  },
};

const CONTROL_DOCS: Record<ControlName, OpDoc & { kind: "req" | "cancel"; socket: "control" | "requests" }> = {
  status: { socket: "control", kind: "req", summary: "The runtime's pid, the caller's running job, whether it is stopping.", example: {} },
  "jobs.list": { socket: "control", kind: "req", summary: "The caller's jobs (§3 Jobs).", example: {} },
  shutdown: { socket: "control", kind: "req", summary: "Cancels every job and exits (remote: admin keys only).", errors: ["forbidden"], example: {} },
  cancel: {
    socket: "control",
    kind: "cancel",
    summary: "Message kind `cancel` (op `cancel`): cancels the caller's request `target` (§3 Cancel).",
    example: { target: "r7" },
  },
  "jobs.attach": {
    socket: "requests",
    kind: "req",
    summary: "Re-attaches a job's stream from seq `fromSeq`; sent with the job's id as the request id. The answer is the job's own events and result (§3 Jobs).",
    errors: ["not_found"],
    example: { job: "r7", fromSeq: 0 },
  },
};

// ---------------------------------------------------------------------------------------
// Field descriptions: the JSDoc comments of src/schema/*.ts, by schema const and property.

type Descriptions = Map<string, Map<string, string>>;

function readDescriptions(): Descriptions {
  const own = new Map<string, Map<string, string>>();
  const spreads = new Map<string, string[]>();
  const dir = new URL("src/schema/", ROOT);
  for (const file of ["adapt.ts", "data.ts", "models.ts", "ops.ts", "scoring.ts", "serving.ts", "train.ts", "wire.ts"]) {
    const src = ts.createSourceFile(file, readFileSync(new URL(file, dir), "utf8"), ts.ScriptTarget.ES2022, true);
    src.forEachChild((stmt) => {
      if (!ts.isVariableStatement(stmt)) return;
      for (const decl of stmt.declarationList.declarations) {
        if (!ts.isIdentifier(decl.name) || !decl.initializer) continue;
        const name = decl.name.text;
        const props = new Map<string, string>();
        const links: string[] = [];
        const visit = (node: ts.Node): void => {
          if (ts.isPropertyAssignment(node) && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))) {
            const doc = ts
              .getJSDocCommentsAndTags(node)
              .map((d) => (ts.isJSDoc(d) ? ts.getTextOfJSDocComment(d.comment) : undefined))
              .filter((t): t is string => !!t)
              .join(" ");
            if (doc && !props.has(node.name.text)) props.set(node.name.text, doc.replace(/\s+/g, " ").trim());
          }
          if (ts.isSpreadAssignment(node) && ts.isIdentifier(node.expression)) links.push(node.expression.text);
          // A union of named schemas (`z.discriminatedUnion("method", [FullTrainRequest, …])`) documents its members' fields.
          if (ts.isArrayLiteralExpression(node)) for (const el of node.elements) if (ts.isIdentifier(el)) links.push(el.text);
          ts.forEachChild(node, visit);
        };
        visit(decl.initializer);
        own.set(name, props);
        spreads.set(name, links);
      }
    });
  }
  const all: Descriptions = new Map();
  const collect = (name: string, seen: Set<string>): Map<string, string> => {
    const out = new Map(own.get(name));
    for (const s of spreads.get(name) ?? []) {
      if (seen.has(s)) continue;
      seen.add(s);
      for (const [k, v] of collect(s, seen)) if (!out.has(k)) out.set(k, v);
    }
    return out;
  };
  for (const name of own.keys()) all.set(name, collect(name, new Set([name])));
  return all;
}

// ---------------------------------------------------------------------------------------
// JSON Schema from zod.

/** Shared types: extracted into `$defs` and documented once. */
const SHARED: Record<string, z.ZodType> = {
  DataRef: S.DataRef,
  DatasetInfo: S.DatasetInfo,
  ModelInfo: S.ModelInfo,
  EvaluationReport: S.EvaluationReport,
  Stability: S.Stability,
  Faithfulness: S.Faithfulness,
  JobInfo: S.JobInfo,
  DeltaChoice: S.DeltaChoice,
  DeltaInfo: S.DeltaInfo,
  Prediction: S.Prediction,
  GenerateOutput: S.GenerateOutput,
};

const NAMES = new Map<unknown, string>(Object.entries(S).map(([k, v]) => [v, k]));

function clean(node: Json, descs: Map<string, string> | undefined): Json {
  if (Array.isArray(node)) return node.map((n) => clean(n, descs));
  if (node === null || typeof node !== "object") return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "$schema") continue;
    // z.number().int() adds the safe-integer range; it says nothing a reader needs.
    if (k === "minimum" && v === -Number.MAX_SAFE_INTEGER) continue;
    if (k === "maximum" && v === Number.MAX_SAFE_INTEGER) continue;
    if (k === "properties" && v && typeof v === "object" && !Array.isArray(v)) {
      const props: Schema = {};
      for (const [p, ps] of Object.entries(v)) {
        const c = clean(ps, descs) as Schema;
        const d = descs?.get(p);
        props[p] = d && !("description" in c) ? { description: d, ...c } : c;
      }
      out[k] = props;
      continue;
    }
    out[k] = clean(v, descs);
  }
  return out;
}

function toSchema(schema: z.ZodType, defs: Schema, descs: Descriptions): Schema {
  const registry = z.registry<{ id: string }>();
  for (const [id, s] of Object.entries(SHARED)) if (s !== schema) registry.add(s, { id });
  // Both directions as the receiving zod schema accepts them: defaults make fields optional.
  const raw = z.toJSONSchema(schema, { io: "input", metadata: registry, unrepresentable: "any" }) as Schema;
  const { $defs, ...rest } = raw;
  for (const [id, d] of Object.entries(($defs ?? {}) as Schema)) {
    const c = clean(d, descs.get(id));
    if (id in defs && JSON.stringify(defs[id]) !== JSON.stringify(c)) throw new Error(`shared type ${id} differs between ops`);
    defs[id] = c;
  }
  return clean(rest, descs.get(NAMES.get(schema) ?? "")) as Schema;
}

export interface OpContract {
  socket: "requests" | "control";
  kind: "req" | "cancel";
  streams: boolean;
  summary: string;
  errors: Code[];
  example: unknown;
  tensors?: string;
  request: Schema;
  event?: Schema;
  result?: Schema;
}
export interface Contract {
  $comment: string;
  protocol: number;
  errorCodes: Code[];
  ops: Record<string, OpContract>;
  control: Record<string, OpContract>;
  $defs: Schema;
}

export function buildContract(): Contract {
  const descs = readDescriptions();
  const defs: Schema = {};
  const codes = (extra: Code[] | undefined, common: Code[]): Code[] => ErrorCode.options.filter((c) => common.includes(c) || extra?.includes(c));
  const entry = (name: string, e: { request: z.ZodType; event?: z.ZodType; result?: z.ZodType }, doc: OpDoc, socket: OpContract["socket"], kind: OpContract["kind"], common: Code[]): OpContract => {
    const parsed = e.request.safeParse(doc.example);
    if (!parsed.success) throw new Error(`example of ${name} does not match its request schema: ${parsed.error.message}`);
    const c: OpContract = { socket, kind, streams: e.event !== undefined, summary: doc.summary, errors: codes(doc.errors, common), example: doc.example, request: toSchema(e.request, defs, descs) };
    if (doc.tensors) c.tensors = doc.tensors;
    if (e.event) c.event = toSchema(e.event, defs, descs);
    if (e.result) c.result = toSchema(e.result, defs, descs);
    return c;
  };
  const ops: Record<string, OpContract> = {};
  for (const name of Object.keys(OPS) as OpName[]) ops[name] = entry(name, OPS[name], DOCS[name], "requests", "req", COMMON);
  const control: Record<string, OpContract> = {};
  for (const name of Object.keys(CONTROL_OPS) as ControlName[]) {
    const d = CONTROL_DOCS[name];
    control[name] = entry(name, CONTROL_OPS[name], d, d.socket, d.kind, d.socket === "requests" ? ["bad_request", "cancelled", "version_mismatch"] : CONTROL_COMMON);
  }
  const sortedDefs: Schema = {};
  for (const k of Object.keys(defs).sort()) sortedDefs[k] = defs[k] as Json;
  return {
    $comment: `Generated from the zod schemas in src/schema by \`${REGENERATE}\`; do not edit. Each request/event/result is a JSON Schema (draft 2020-12) whose $ref point into $defs below.`,
    protocol: PROTOCOL_VERSION,
    errorCodes: [...ErrorCode.options],
    ops,
    control,
    $defs: sortedDefs,
  };
}

// ---------------------------------------------------------------------------------------
// Markdown.

const code = (s: string): string => "`" + s + "`";
const anchor = (id: string): string => id.toLowerCase().replace(/[^a-z0-9]+/g, "-");
const esc = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function isObject(s: Schema): boolean {
  return s.type === "object" && typeof s.properties === "object";
}

function typeOf(s: Schema): string {
  if (typeof s.$ref === "string") {
    const id = s.$ref.split("/").pop()!;
    return `[${id}](#${anchor("type " + id)})`;
  }
  if ("const" in s) return code(JSON.stringify(s.const));
  if (Array.isArray(s.enum)) return s.enum.map((v) => code(JSON.stringify(v))).join(" \\| ");
  const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (alts) return alts.map(typeOf).join(" \\| ");
  const bounds: string[] = [];
  if (typeof s.minimum === "number") bounds.push(`≥ ${s.minimum}`);
  if (typeof s.exclusiveMinimum === "number") bounds.push(`> ${s.exclusiveMinimum}`);
  if (typeof s.maximum === "number") bounds.push(`≤ ${s.maximum}`);
  if (typeof s.exclusiveMaximum === "number") bounds.push(`< ${s.exclusiveMaximum}`);
  const b = bounds.length ? " " + bounds.join(", ") : "";
  if (Array.isArray(s.type)) return s.type.map((t) => typeOf({ ...s, type: t })).join(" \\| ");
  const nullable = (t: string): string => t;
  switch (s.type) {
    case "string":
      return s.minLength === 1 ? "string (non-empty)" : "string";
    case "integer":
      return "integer" + b;
    case "number":
      return "number" + b;
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      if (Array.isArray(s.prefixItems)) return nullable(`[${(s.prefixItems as Schema[]).map(typeOf).join(", ")}]`);
      const items = (s.items ?? {}) as Schema;
      const item = items.anyOf || items.oneOf ? `(${typeOf(items)})` : typeOf(items);
      const min = typeof s.minItems === "number" && s.minItems > 0 ? ` (≥ ${s.minItems})` : "";
      return `array of ${item}${min}`;
    }
    case "object":
      if (isObject(s)) return "object";
      if (s.additionalProperties && typeof s.additionalProperties === "object") return `map string → ${typeOf(s.additionalProperties as Schema)}`;
      return "object";
  }
  return "any";
}

interface Row {
  field: string;
  type: string;
  req: string;
  desc: string;
}

function rows(s: Schema, prefix = ""): Row[] {
  const props = (s.properties ?? {}) as Record<string, Schema>;
  const required = new Set((s.required ?? []) as string[]);
  const out: Row[] = [];
  for (const [name, p] of Object.entries(props)) {
    const field = prefix + name;
    const req = required.has(name) ? "required" : "default" in p ? `default ${code(JSON.stringify(p.default))}` : "optional";
    out.push({ field: code(field), type: typeOf(p), req, desc: esc(String(p.description ?? "")) });
    const alts = [p, ...(((p.anyOf ?? p.oneOf) as Schema[] | undefined) ?? [])];
    for (const a of alts) if (isObject(a)) out.push(...rows(a, field + "."));
    if (p.type === "array" && p.items && isObject(p.items as Schema)) out.push(...rows(p.items as Schema, field + "[]."));
  }
  return out;
}

function table(rs: Row[], what = ""): string[] {
  if (rs.length === 0) return [what === "The request" ? "No fields: send `{}` (or nil)." : "No fields: `{}`."];
  if (rs.every((r) => !r.desc)) return ["| field | type | |", "|---|---|---|", ...rs.map((r) => `| ${r.field} | ${r.type} | ${r.req} |`)];
  return ["| field | type | | meaning |", "|---|---|---|---|", ...rs.map((r) => `| ${r.field} | ${r.type} | ${r.req} | ${r.desc} |`)];
}

/** A schema as tables: an object's fields, or a union's common fields then each form's own. */
function describe(s: Schema, what: string): string[] {
  const alts = (s.oneOf ?? s.anyOf) as Schema[] | undefined;
  if (alts && alts.every(isObject)) {
    const all = alts.map((a) => rows(a));
    const key = (r: Row): string => JSON.stringify(r);
    const common = all[0]!.filter((r) => all.every((rs) => rs.some((x) => key(x) === key(r))));
    const commonKeys = new Set(common.map(key));
    const out: string[] = [`${what} takes one of ${alts.length} forms.`, ""];
    if (common.length) out.push("Fields of every form:", "", ...table(common), "");
    alts.forEach((a, i) => {
      const own = all[i]!.filter((r) => !commonKeys.has(key(r)));
      const tag = Object.entries((a.properties ?? {}) as Record<string, Schema>).find(([, p]) => "const" in p);
      const label = tag ? `${code(tag[0])} = ${code(JSON.stringify(tag[1].const))}${(a.required as string[] | undefined)?.includes(tag[0]) ? "" : " (or absent)"}` : `with ${own.filter((r) => !r.field.includes(".")).map((r) => r.field).join(", ")}`;
      out.push(`Form ${i + 1}, ${label}:`, "", ...(own.length ? table(own) : ["(no other fields)"]), "");
    });
    out.pop();
    return out;
  }
  if (isObject(s) || s.type === "object") {
    const loose = s.additionalProperties === undefined && !s.$ref;
    return [...table(rows(s), what), ...(loose && what !== "The request" ? ["", "Other keys may be present."] : [])];
  }
  return [`${what}: ${typeOf(s)}.`];
}

function renderOp(name: string, c: OpContract): string[] {
  const out: string[] = [`### ${code(name)}`, ""];
  const where = c.socket === "control" ? "control socket" : "request socket";
  out.push(`${c.summary}`, "", `*${where}, message kind ${code(c.kind)}${c.streams ? ", streams events" : ""}.* Errors: ${c.errors.map(code).join(", ")}.`, "");
  if (c.tensors) out.push(`Tensors: ${c.tensors}.`, "");
  out.push("**Request body**", "", ...describe(c.request, "The request"), "");
  out.push("Example:", "", "```json", JSON.stringify(c.example), "```", "");
  if (c.event) out.push("**Events**", "", ...describe(c.event, "An event"), "");
  if (c.result) out.push("**Result**", "", ...describe(c.result, "The result"), "");
  else out.push("**Result**: the attached job's remaining events and its own result or error.", "");
  return out;
}

export function renderReference(c: Contract): string {
  const out: string[] = [
    BEGIN,
    `<!-- Generated from src/schema by \`${REGENERATE}\` (also writes docs/contract.json, the same contract as JSON Schema); do not edit by hand. -->`,
    "",
    "## 4. Operations (v1)",
    "",
    "Every op below is sent as `{kind: \"req\", op: NAME, body}` on the request socket unless it says otherwise; `body` nil means all defaults. Request bodies are strict: an unknown field is a `bad_request` whose message names it (its `path` is the object holding it, e.g. `body`). A result or event may carry keys not listed here; a client should ignore them. Field types are JSON/msgpack types; `[a, b]` is a two-element array; a `map string → T` is a msgpack map. docs/contract.json holds the same contract as JSON Schema.",
    "",
    "| op | streams | summary |",
    "|---|---|---|",
    ...Object.entries(c.ops).map(([n, o]) => `| [${code(n)}](#${anchor(n)}) | ${o.streams ? "yes" : "no"} | ${esc(o.summary)} |`),
    "",
    "Adding an op takes one schema entry in `src/schema/ops.ts` (plus its summary and example in `scripts/contract.ts`) and one handler registered with `@op(name, BodyStruct)` in `py_runtime/ctsft_runtime/ops/`; test/py/protocol/test_contract.py checks that the two agree.",
    "",
  ];
  for (const [n, o] of Object.entries(c.ops)) out.push(...renderOp(n, o));
  out.push("### Control ops and `jobs.attach`", "", "Served by the runtime itself (§3), not by op handlers.", "");
  for (const [n, o] of Object.entries(c.control)) out.push(...renderOp(n, o).map((l) => (l.startsWith("### ") ? "#" + l : l)));
  out.push("### Shared types", "");
  for (const [id, s] of Object.entries(c.$defs)) out.push(`#### Type ${id}`, "", ...describe(s as Schema, id), "");
  out.push(END);
  return out.join("\n");
}

/** `protocol` with its generated section replaced. */
export function splice(protocol: string, reference: string): string {
  const a = protocol.indexOf(BEGIN);
  const b = protocol.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/protocol.md lacks the markers ${BEGIN} … ${END}`);
  return protocol.slice(0, a) + reference + protocol.slice(b + END.length);
}

/** Both generated files' content, from the schemas and the current protocol.md prose. */
export function generate(): { contract: string; protocol: string } {
  const c = buildContract();
  return { contract: JSON.stringify(c, null, 2) + "\n", protocol: splice(readFileSync(PROTOCOL_PATH, "utf8"), renderReference(c)) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = generate();
  const stale = [
    [CONTRACT_PATH, out.contract],
    [PROTOCOL_PATH, out.protocol],
  ].filter(([p, text]) => {
    try {
      return readFileSync(p!, "utf8") !== text;
    } catch {
      return true;
    }
  });
  if (process.argv.includes("--check")) {
    for (const [p] of stale) console.error(`${p} is stale: run \`${REGENERATE}\``);
    process.exit(stale.length ? 1 : 0);
  }
  for (const [p, text] of stale) writeFileSync(p!, text!);
  console.log(stale.length ? `wrote ${stale.map(([p]) => p).join(", ")}` : "contract and protocol.md are up to date");
}
