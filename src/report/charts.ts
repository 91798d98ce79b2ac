// The report's charts as Vega-Lite specifications: data plus a declarative description, which
// vega renders (render.ts) and users can restyle (the specs are saved beside the report).
import type { TopLevelSpec } from "vega-lite";
import { diverging, hex, isDark, MINUS, RDBU, shortNum } from "./format.ts";

/** One line of a line chart. */
export interface Series {
  name: string;
  colour: string;
  /** y per x = 1, 2, …; non-finite values break the line. */
  ys: number[];
}

/** One bar: its group (x category), series (colour), value and optional ± error. */
export interface Bar {
  group: string;
  series: string;
  colour: string;
  value: number;
  error?: number;
}

/** What the heatmap shows: scores `[layers][heads]` (null = not scored) and the marked heads. */
export interface HeatmapInput {
  scores: (number | null)[][];
  circuit: [number, number][];
  low?: [number, number][];
}

/** Colour of a cell that was not scored. */
export const NULL_COLOUR = "#d9d9d9";
const MAX_POINTS = 600;
const FONT = "DejaVu Sans, Verdana, sans-serif";
const BASE = { $schema: "https://vega.github.io/schema/vega-lite/v6.json", background: "white", config: { font: FONT, view: { stroke: null } } } as const;

/** Bucket-average a long series down to at most `MAX_POINTS` points, keeping x positions. */
function downsample(ys: number[]): [number, number | null][] {
  const clean = (y: number) => (Number.isFinite(y) ? y : null);
  if (ys.length <= MAX_POINTS) return ys.map((y, i) => [i + 1, clean(y)]);
  const out: [number, number | null][] = [];
  const per = ys.length / MAX_POINTS;
  for (let b = 0; b < MAX_POINTS; b++) {
    const s = Math.floor(b * per);
    const e = Math.max(s + 1, Math.floor((b + 1) * per));
    const part = ys.slice(s, e).filter(Number.isFinite);
    out.push([(s + e + 1) / 2, part.length ? part.reduce((a, v) => a + v, 0) / part.length : null]);
  }
  return out;
}

/** A colour scale fixing each series' colour (first appearance order). */
function colourScale(items: { name: string; colour: string }[]) {
  const seen = [...new Map(items.map((i) => [i.name, i.colour])).entries()];
  return { domain: seen.map(([n]) => n), range: seen.map(([, c]) => c) };
}

/**
 * The layers × heads relevance heatmap: one cell per head on a symmetric diverging scale
 * (ColorBrewer RdBu, ±max |score|), circuit heads outlined solid black, low-relevance heads
 * with black-and-white dashes, unscored heads grey, the score printed in each cell.
 */
export function heatmapSpec(input: HeatmapInput, title = "Head relevance, layers × heads"): TopLevelSpec {
  const layers = input.scores.length;
  const heads = input.scores.reduce((m, r) => Math.max(m, r.length), 0);
  const key = ([l, h]: [number, number]) => `${l},${h}`;
  const circuit = new Set(input.circuit.map(key));
  const low = new Set((input.low ?? []).map(key));
  let vmax = 0;
  for (const row of input.scores) for (const v of row) if (v !== null && Number.isFinite(v)) vmax = Math.max(vmax, Math.abs(v));
  if (vmax === 0) vmax = 1;
  const cells = [];
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const raw = input.scores[l]?.[h];
      const score = raw === null || raw === undefined || !Number.isFinite(raw) ? null : raw;
      cells.push({
        layer: `L${l}`,
        head: `H${h}`,
        score,
        label: score === null ? "" : shortNum(score).replace("-", MINUS),
        dark: score !== null && isDark(diverging(score / vmax)),
        circuit: circuit.has(`${l},${h}`),
        low: low.has(`${l},${h}`),
      });
    }
  }
  const cell = Math.max(24, Math.min(48, Math.floor(560 / Math.max(1, heads)), Math.floor(720 / Math.max(1, layers))));
  const order = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}${i}`);
  const stops = RDBU.map((_, i) => -vmax + (2 * vmax * i) / (RDBU.length - 1));
  const x = { field: "head", type: "ordinal", sort: order(heads, "H"), title: "head", axis: { labelAngle: 0, orient: "top" } } as const;
  const y = { field: "layer", type: "ordinal", sort: order(layers, "L"), title: "layer" } as const;
  return {
    ...BASE,
    title,
    width: cell * heads,
    height: cell * layers,
    data: { values: cells },
    encoding: { x, y },
    layer: [
      { transform: [{ filter: "datum.score === null" }], mark: { type: "rect", fill: NULL_COLOUR } },
      {
        transform: [{ filter: "datum.score !== null" }],
        mark: { type: "rect" },
        encoding: {
          color: { field: "score", type: "quantitative", title: "relevance", scale: { domain: stops, range: RDBU.map(hex), interpolate: "rgb" }, legend: { gradientLength: Math.max(80, cell * layers - 20) } },
        },
      },
      { transform: [{ filter: "datum.low" }], mark: { type: "rect", fill: null, stroke: "#ffffff", strokeWidth: 2 } },
      { transform: [{ filter: "datum.low" }], mark: { type: "rect", fill: null, stroke: "#000000", strokeWidth: 2, strokeDash: [4, 4] } },
      { transform: [{ filter: "datum.circuit" }], mark: { type: "rect", fill: null, stroke: "#000000", strokeWidth: 3 } },
      {
        mark: { type: "text", fontSize: Math.max(8, Math.min(11, cell / 3.2)) },
        encoding: { text: { field: "label" }, color: { condition: { test: "datum.dark", value: "#ffffff" }, value: "#000000" } },
      },
    ],
  } as TopLevelSpec;
}

/** A line chart of y per step (training loss), one line per series. */
export function lineSpec(title: string, series: Series[], opts: { xLabel?: string; yLabel?: string } = {}): TopLevelSpec {
  const values = series.flatMap((s) => downsample(s.ys).map(([x, y]) => ({ series: s.name, x, y })));
  return {
    ...BASE,
    title,
    width: 460,
    height: 220,
    data: { values },
    mark: { type: "line", strokeWidth: 1.8, point: values.length <= series.length ? true : false },
    encoding: {
      x: { field: "x", type: "quantitative", title: opts.xLabel ?? "step" },
      y: { field: "y", type: "quantitative", title: opts.yLabel ?? "loss", scale: { zero: false } },
      color: { field: "series", type: "nominal", title: null, scale: colourScale(series), legend: { orient: "bottom", direction: "horizontal" } },
    },
  } as TopLevelSpec;
}

/** One point of a curve: its series (colour), x, y and optional interval. */
export interface CurvePoint {
  series: string;
  colour: string;
  x: number;
  y: number;
  /** Half-width of the interval drawn around y (std or a confidence half-width). */
  error?: number;
}

/** Lines of y against x (target examples), one per series, with a point and an interval at
 * each x; x on a log-2 scale (curve sizes usually double), ticks at the given xs. */
export function curveSpec(title: string, points: CurvePoint[], opts: { xLabel: string; yLabel: string; zeroRule?: boolean }): TopLevelSpec {
  const values = points
    .filter((p) => Number.isFinite(p.y))
    .map((p) => {
      const e = p.error !== undefined && Number.isFinite(p.error) && p.error > 0 ? p.error : null;
      return { series: p.series, x: p.x, y: p.y, lo: e === null ? null : p.y - e, hi: e === null ? null : p.y + e };
    });
  const xs = [...new Set(values.map((v) => v.x))].sort((a, b) => a - b);
  const x = { field: "x", type: "quantitative", title: opts.xLabel, scale: { type: "log", base: 2, nice: false, padding: 12 }, axis: { values: xs, format: "d" } } as const;
  const color = { field: "series", type: "nominal", title: null, scale: colourScale(points.map((p) => ({ name: p.series, colour: p.colour }))), legend: { orient: "bottom", direction: "horizontal" } } as const;
  return {
    ...BASE,
    title,
    width: 360,
    height: 220,
    data: { values },
    layer: [
      { mark: { type: "line", strokeWidth: 1.8, point: true }, encoding: { x, y: { field: "y", type: "quantitative", title: opts.yLabel, scale: { zero: false } }, color } },
      { transform: [{ filter: "datum.lo !== null" }], mark: { type: "rule", strokeWidth: 1.2 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color } },
      ...(opts.zeroRule ? [{ mark: { type: "rule", color: "#555555", strokeDash: [3, 3] }, encoding: { y: { datum: 0, type: "quantitative" } } }] : []),
    ],
  } as TopLevelSpec;
}

/** A grouped bar chart: groups along x, one bar per series within a group, ± error bars, a zero rule. */
export function barSpec(title: string, bars: Bar[], opts: { yLabel?: string } = {}): TopLevelSpec {
  const values = bars
    .filter((b) => Number.isFinite(b.value))
    .map((b) => {
      const e = b.error !== undefined && Number.isFinite(b.error) && b.error > 0 ? b.error : null;
      return { group: b.group, series: b.series, value: b.value, lo: e === null ? null : b.value - e, hi: e === null ? null : b.value + e };
    });
  const groups = [...new Set(values.map((v) => v.group))];
  const x = { field: "group", type: "nominal", sort: groups, title: null, axis: { labelAngle: 0, labelLimit: 120 } } as const;
  const xOffset = { field: "series", type: "nominal", sort: colourScale(bars.map((b) => ({ name: b.series, colour: b.colour }))).domain } as const;
  return {
    ...BASE,
    title,
    width: Math.max(300, groups.length * (new Set(values.map((v) => v.series)).size * 18 + 24)),
    height: 200,
    data: { values },
    layer: [
      {
        mark: { type: "bar" },
        encoding: {
          x,
          xOffset,
          y: { field: "value", type: "quantitative", title: opts.yLabel ?? "" },
          color: { field: "series", type: "nominal", title: null, scale: colourScale(bars.map((b) => ({ name: b.series, colour: b.colour }))), legend: { orient: "bottom", direction: "horizontal" } },
        },
      },
      { transform: [{ filter: "datum.lo !== null" }], mark: { type: "rule", color: "#222222" }, encoding: { x, xOffset, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" } } },
      // Without x, a rule spans the whole plot: the zero line (values may be negative).
      { mark: { type: "rule", color: "#555555" }, encoding: { y: { datum: 0, type: "quantitative" } } },
    ],
  } as TopLevelSpec;
}
