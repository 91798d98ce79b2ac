import type { OpEvent, OpRequest, OpResult } from "../schema/ops.ts";
import type { ScoresFile } from "../schema/scoring.ts";
import type { Tensor } from "../schema/tensor.ts";
import { type DataInput, dataRef } from "./data.ts";
import { type HandleLike, idOf } from "./handles.ts";
import type { CallOptions } from "./runtime.ts";
import type { RunStream } from "./stream.ts";

/** What the scoring namespace needs from the runtime. */
export interface Streamer {
  stream<O extends "baseline" | "score">(op: O, request: OpRequest<O>, options?: CallOptions): RunStream<OpEvent<O>, OpResult<O>>;
  call<O extends "circuit.select">(op: O, request: OpRequest<O>, options?: CallOptions): Promise<{ body: OpResult<O> }>;
}

type WithHandles<R> = Omit<R, "model" | "data"> & { model: HandleLike; data: DataInput };

/** {@link Scoring.score} request. */
export type ScoreOptions = WithHandles<OpRequest<"score">>;
/** {@link Scoring.baseline} request. */
export type BaselineOptions = WithHandles<OpRequest<"baseline">>;

/** One head with its relevance. */
export interface RankedHead {
  layer: number;
  head: number;
  score: number;
}

/** `runtime.scoring`: the mean baseline and head relevance. */
export class Scoring {
  constructor(private readonly rt: Streamer) {}

  /** The label-balanced mean of every head's z over a discovery set, kept in the runtime
   * (the result's `mean` tensor is `[layers, heads, headDim]`). */
  baseline(request: BaselineOptions, options?: CallOptions): RunStream<OpEvent<"baseline">, OpResult<"baseline">> {
    const { model, data, ...rest } = request;
    return this.rt.stream("baseline", { ...rest, model: idOf(model), data: dataRef(data) }, options);
  }

  /** Score heads: progress events, then the scores file's content plus tensors `scores`
   * `[layers, heads]` and `perClass` `[classes, layers, heads]` (NaN = not scored). */
  score(request: ScoreOptions, options?: CallOptions): RunStream<OpEvent<"score">, OpResult<"score">> {
    const { model, data, ...rest } = request;
    return this.rt.stream("score", { ...rest, model: idOf(model), data: dataRef(data) }, options);
  }
}

/** `runtime.circuits`: select a circuit from a scores file. */
export class Circuits {
  constructor(private readonly rt: Streamer) {}

  /** Rank heads and cut by `topK`, `budget` or `threshold` under a strategy; returns (and with `out`, writes) the circuit. */
  async select(request: OpRequest<"circuit.select">, options?: CallOptions): Promise<OpResult<"circuit.select">> {
    return (await this.rt.call("circuit.select", request, options)).body;
  }
}

/** Heads ordered by score (descending), or by |score| ascending with `by: "abs-asc"`;
 * unscored heads (NaN/null) are left out. Works on a score tensor or a scores-file grid. */
export function rankHeads(scores: Tensor<"float32"> | (number | null)[][], by: "desc" | "abs-asc" = "desc"): RankedHead[] {
  const out: RankedHead[] = [];
  if (Array.isArray(scores)) {
    scores.forEach((row, layer) => row.forEach((s, head) => s !== null && !Number.isNaN(s) && out.push({ layer, head, score: s })));
  } else {
    const [, heads = 0] = scores.shape;
    scores.data.forEach((s, i) => Number.isNaN(s) || out.push({ layer: Math.floor(i / heads), head: i % heads, score: s }));
  }
  return out.sort((a, b) => (by === "desc" ? b.score - a.score : Math.abs(a.score) - Math.abs(b.score)));
}

/** Faithfulness (Spearman with exact mean-ablation) below this gets a warning: the scorer's
 * ranking then says little about what ablating a head does, so a circuit chosen from it may
 * not be the mechanism. */
export const FAITHFULNESS_WARN = 0.5;

/** Human-readable lines about a scoring run's stability and faithfulness, warnings first
 * prefixed `warning:`; empty when the run carries neither figure. */
export function scoreDiagnostics(body: Pick<ScoresFile, "method" | "stability" | "faithfulness">): string[] {
  const lines: string[] = [];
  const s = body.stability;
  if (s) {
    if (s.warning) lines.push(`warning: ${s.warning}`);
    lines.push(`stability: max |rel| = ${s.maxRatio.toPrecision(3)}× max |true| (warning above ${s.threshold}×)`);
  }
  const f = body.faithfulness;
  if (f) {
    const rho = f.spearman === null ? "undefined" : f.spearman.toFixed(2);
    if (f.spearman !== null && f.spearman < FAITHFULNESS_WARN) {
      lines.unshift(`warning: ${body.method} agrees poorly with exact mean-ablation (Spearman ${rho} < ${FAITHFULNESS_WARN}); a circuit chosen from these scores may not be the mechanism — consider method ablation`);
    }
    lines.push(`faithfulness: Spearman ${rho} with mean-ablation over ${f.heads} heads on ${f.examples} examples (${f.seconds.toFixed(1)} s)`);
  }
  return lines;
}
