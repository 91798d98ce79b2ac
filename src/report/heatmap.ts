// The layers × heads relevance heatmap, as inline SVG (for the HTML page) and as a raster
// PNG drawn pixel by pixel (no canvas dependency), from one shared model.
import { diverging, escapeHtml, hex, isDark, MINUS, type Rgb, shortNum } from "./format.ts";
import { encodePng } from "./png.ts";

/** What the heatmap shows: scores `[layers][heads]` (null = not scored) and the marked heads. */
export interface HeatmapInput {
  scores: (number | null)[][];
  circuit: [number, number][];
  low?: [number, number][];
}

/** One cell of the heatmap. */
export interface HeatCell {
  layer: number;
  head: number;
  score: number | null;
  colour: Rgb;
  circuit: boolean;
  low: boolean;
}

/** The laid-out heatmap: symmetric colour range ±vmax around 0. */
export interface HeatGrid {
  layers: number;
  heads: number;
  vmax: number;
  cells: HeatCell[];
}

/** Colour of a cell that was not scored. */
export const NULL_COLOUR: Rgb = [217, 217, 217];
const HATCH: Rgb = [176, 176, 176];
const CIRCUIT_STROKE: Rgb = [0, 0, 0];
// Low-relevance heads: black-and-white dashes, visible on deep blue, deep red and white alike.
const LOW_STROKE: Rgb = [0, 0, 0];
const LOW_GAP: Rgb = [255, 255, 255];

/** Lay out the grid; ragged rows are padded with "not scored", non-finite scores count as not scored. */
export function heatGrid(input: HeatmapInput): HeatGrid {
  const layers = input.scores.length;
  const heads = input.scores.reduce((m, r) => Math.max(m, r.length), 0);
  const key = ([l, h]: [number, number]) => `${l},${h}`;
  const circuit = new Set(input.circuit.map(key));
  const low = new Set((input.low ?? []).map(key));
  let vmax = 0;
  for (const row of input.scores) for (const v of row) if (v !== null && Number.isFinite(v)) vmax = Math.max(vmax, Math.abs(v));
  if (vmax === 0) vmax = 1;
  const cells: HeatCell[] = [];
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const raw = input.scores[l]?.[h];
      const score = raw === null || raw === undefined || !Number.isFinite(raw) ? null : raw;
      cells.push({ layer: l, head: h, score, colour: score === null ? NULL_COLOUR : diverging(score / vmax), circuit: circuit.has(`${l},${h}`), low: low.has(`${l},${h}`) });
    }
  }
  return { layers, heads, vmax, cells };
}

/** The low-relevance mark: a 2 px outline of alternating black and white dashes. */
function lowMark(x: number, y: number, size: number): string {
  const r = `x="${x}" y="${y}" width="${size}" height="${size}" fill="none" stroke-width="2"`;
  return `<rect ${r} stroke="${hex(LOW_GAP)}"/><rect ${r} stroke="${hex(LOW_STROKE)}" stroke-dasharray="4 4"/>`;
}

function svgNum(x: number): string {
  return shortNum(x).replaceAll("-", MINUS);
}

/**
 * The heatmap as an inline `<svg>` element (no namespace URL needed inside HTML): one cell
 * per head coloured on a diverging scale, circuit cells outlined solid black, low-relevance
 * heads outlined with black-and-white dashes, unscored cells hatched grey, axis labels, a colour-bar legend
 * and a `<title>` tooltip per cell.
 */
export function heatmapSvg(input: HeatmapInput, opts: { title?: string } = {}): string {
  const g = heatGrid(input);
  if (g.layers === 0 || g.heads === 0) return `<p class="note">No relevance scores.</p>`;
  // Fit about 560 × 720 px, but never below 24 px per cell.
  const cell = Math.max(24, Math.min(48, Math.floor(560 / g.heads), Math.floor(720 / g.layers)));
  const left = 56;
  const top = 48;
  const gridW = g.heads * cell;
  const gridH = g.layers * cell;
  const legendTop = top + gridH + 28;
  const width = Math.max(left + gridW + 20, 470);
  const height = legendTop + 70;
  const showValues = cell >= 36;
  const o: string[] = [];
  o.push(
    `<svg class="heatmap" role="img" aria-label="${escapeHtml(opts.title ?? "Head relevance heatmap")}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="11">`,
  );
  o.push(
    `<defs><pattern id="hm-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="${hex(NULL_COLOUR)}"/><line x1="0" y1="0" x2="0" y2="6" stroke="${hex(HATCH)}" stroke-width="2"/></pattern>`,
  );
  o.push(`<linearGradient id="hm-scale" x1="0" x2="1" y1="0" y2="0">`);
  for (let i = 0; i <= 8; i++) o.push(`<stop offset="${(i / 8).toFixed(3)}" stop-color="${hex(diverging(i / 4 - 1))}"/>`);
  o.push(`</linearGradient></defs>`);
  o.push(`<text x="${left + gridW / 2}" y="14" text-anchor="middle" font-weight="600">head</text>`);
  o.push(`<text transform="translate(14 ${top + gridH / 2}) rotate(-90)" text-anchor="middle" font-weight="600">layer</text>`);
  for (let h = 0; h < g.heads; h++) o.push(`<text x="${left + h * cell + cell / 2}" y="${top - 8}" text-anchor="middle">${h}</text>`);
  for (let l = 0; l < g.layers; l++) o.push(`<text x="${left - 8}" y="${top + l * cell + cell / 2 + 4}" text-anchor="end">${l}</text>`);
  for (const c of g.cells) {
    const x = left + c.head * cell;
    const y = top + c.layer * cell;
    const label = `L${c.layer} H${c.head}: ${c.score === null ? "not scored" : svgNum(c.score)}${c.circuit ? " (circuit)" : ""}${c.low ? " (low relevance)" : ""}`;
    o.push(`<g><title>${escapeHtml(label)}</title><rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${c.score === null ? "url(#hm-hatch)" : hex(c.colour)}" stroke="#ffffff" stroke-width="1"/>`);
    if (c.low) o.push(lowMark(x + 3, y + 3, cell - 6));
    if (c.circuit) o.push(`<rect x="${x + 2}" y="${y + 2}" width="${cell - 4}" height="${cell - 4}" fill="none" stroke="${hex(CIRCUIT_STROKE)}" stroke-width="3"/>`);
    if (showValues && c.score !== null) {
      o.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" font-size="10" fill="${isDark(c.colour) ? "#ffffff" : "#222222"}">${escapeHtml(svgNum(c.score))}</text>`);
    }
    o.push(`</g>`);
  }
  // Legend: colour bar with −vmax, 0, +vmax, then the three markers.
  const barW = 200;
  o.push(`<text x="${left}" y="${legendTop - 6}" font-weight="600">relevance (− hurts the gold class, + helps)</text>`);
  o.push(`<rect x="${left}" y="${legendTop}" width="${barW}" height="12" fill="url(#hm-scale)" stroke="#888888" stroke-width="0.5"/>`);
  o.push(`<text x="${left}" y="${legendTop + 26}" text-anchor="start">${escapeHtml(svgNum(-g.vmax))}</text>`);
  o.push(`<text x="${left + barW / 2}" y="${legendTop + 26}" text-anchor="middle">0</text>`);
  o.push(`<text x="${left + barW}" y="${legendTop + 26}" text-anchor="end">+${escapeHtml(svgNum(g.vmax))}</text>`);
  const lx = left + barW + 20;
  o.push(`<rect x="${lx}" y="${legendTop - 2}" width="16" height="16" fill="#ffffff" stroke="${hex(CIRCUIT_STROKE)}" stroke-width="3"/><text x="${lx + 22}" y="${legendTop + 10}">circuit</text>`);
  o.push(`<rect x="${lx}" y="${legendTop + 22}" width="16" height="16" fill="#bbbbbb"/>${lowMark(lx + 1, legendTop + 23, 14)}<text x="${lx + 22}" y="${legendTop + 34}">low relevance</text>`);
  o.push(`<rect x="${lx + 110}" y="${legendTop - 2}" width="16" height="16" fill="url(#hm-hatch)"/><text x="${lx + 132}" y="${legendTop + 10}">not scored</text>`);
  o.push(`</svg>`);
  return o.join("\n");
}

// ---------------------------------------------------------------------------------------
// Raster

// 5×7 bitmap font: 7 rows of 5 bits (MSB = leftmost pixel). Lowercase maps to uppercase.
const FONT: Record<string, number[]> = {
  "0": [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
  "1": [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  "2": [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
  "3": [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  "4": [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
  "5": [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  "6": [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
  "7": [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  "8": [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
  "9": [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
  A: [0x0e, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11],
  B: [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
  C: [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
  D: [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
  E: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
  F: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
  G: [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
  H: [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
  I: [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
  J: [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
  K: [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
  L: [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
  M: [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
  N: [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
  O: [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  P: [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
  Q: [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
  R: [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
  S: [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
  T: [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
  U: [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  V: [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
  W: [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
  X: [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
  Y: [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04],
  Z: [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
  "-": [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
  "+": [0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00],
  ".": [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
  ",": [0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08],
  ":": [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
  "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
  ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
  "/": [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
  "=": [0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00],
  " ": [0, 0, 0, 0, 0, 0, 0],
  "?": [0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
};

/** An RGB raster with the few drawing operations the heatmap needs. */
class Raster {
  readonly pixels: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
    bg: Rgb,
  ) {
    this.pixels = new Uint8Array(width * height * 3);
    this.fill(0, 0, width, height, bg);
  }
  set(x: number, y: number, [r, g, b]: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.pixels[i] = r;
    this.pixels[i + 1] = g;
    this.pixels[i + 2] = b;
  }
  fill(x0: number, y0: number, w: number, h: number, c: Rgb): void {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) this.set(x, y, c);
  }
  /** An outline `t` px thick inside the box; `dash` > 0 draws dashes of that length. */
  /** An outline `t` px thick inside the box; `dash` > 0 alternates `c` and `gap` every `dash` px. */
  outline(x0: number, y0: number, w: number, h: number, t: number, c: Rgb, dash = 0, gap?: Rgb): void {
    const col = (k: number) => (dash === 0 || Math.floor(k / dash) % 2 === 0 ? c : gap);
    for (let k = 0; k < w; k++) {
      const cc = col(k);
      if (!cc) continue;
      for (let j = 0; j < t; j++) {
        this.set(x0 + k, y0 + j, cc);
        this.set(x0 + k, y0 + h - 1 - j, cc);
      }
    }
    for (let k = 0; k < h; k++) {
      const cc = col(k);
      if (!cc) continue;
      for (let j = 0; j < t; j++) {
        this.set(x0 + j, y0 + k, cc);
        this.set(x0 + w - 1 - j, y0 + k, cc);
      }
    }
  }
  static textWidth(s: string, scale: number): number {
    return s.length === 0 ? 0 : (s.length * 6 - 1) * scale;
  }
  text(s: string, x0: number, y0: number, scale: number, c: Rgb): void {
    let x = x0;
    for (const ch of s.toUpperCase()) {
      const glyph = FONT[ch] ?? (FONT["?"] as number[]);
      for (let row = 0; row < 7; row++) {
        const bits = glyph[row] as number;
        for (let col = 0; col < 5; col++) if (bits & (0x10 >> col)) this.fill(x + col * scale, y0 + row * scale, scale, scale, c);
      }
      x += 6 * scale;
    }
  }
}

/** Pixel geometry of {@link heatmapPng}, exported so tests can sample known cells. */
export interface HeatmapLayout {
  cell: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The PNG heatmap's layout for a grid of `layers` × `heads` (cells are 32 px, at least 24). */
export function heatmapLayout(layers: number, heads: number, cell = 32): HeatmapLayout {
  const c = Math.max(24, Math.floor(cell));
  const left = 64;
  const top = 52;
  const legendH = 96;
  const width = Math.max(left + heads * c + 16, 440);
  const height = top + Math.max(1, layers) * c + legendH;
  return { cell: c, left, top, width, height };
}

/**
 * The heatmap rasterised as an RGB PNG: same colours as the SVG, cells of `cell` px
 * (≥ 24), circuit cells outlined solid black (3 px), low-relevance heads outlined with
 * black-and-white dashes, unscored cells hatched grey, layer/head axis labels and a legend drawn with a
 * built-in 5×7 pixel font.
 */
export function heatmapPng(input: HeatmapInput, cell = 32): Buffer {
  const g = heatGrid(input);
  const L = heatmapLayout(g.layers, g.heads, cell);
  const white: Rgb = [255, 255, 255];
  const ink: Rgb = [34, 34, 34];
  const r = new Raster(L.width, L.height, white);
  const c = L.cell;
  const gridW = g.heads * c;
  const gridH = g.layers * c;
  // Axis titles and labels.
  if (g.layers === 0 || g.heads === 0) r.text("NO RELEVANCE SCORES", L.left, 6, 2, ink);
  else {
    r.text("LAYER", 4, 6, 2, ink);
    r.text("HEAD", Math.max(4 + Raster.textWidth("LAYER", 2) + 16, L.left + Math.floor((gridW - Raster.textWidth("HEAD", 2)) / 2)), 6, 2, ink);
  }
  for (let h = 0; h < g.heads; h++) {
    const s = String(h);
    const scale = Raster.textWidth(s, 2) <= c - 4 ? 2 : 1;
    r.text(s, L.left + h * c + Math.floor((c - Raster.textWidth(s, scale)) / 2), L.top - 6 - 7 * scale, scale, ink);
  }
  for (let l = 0; l < g.layers; l++) {
    const s = String(l);
    const scale = c >= 18 ? 2 : 1;
    r.text(s, L.left - 8 - Raster.textWidth(s, scale), L.top + l * c + Math.floor((c - 7 * scale) / 2), scale, ink);
  }
  // Cells.
  for (const cl of g.cells) {
    const x = L.left + cl.head * c;
    const y = L.top + cl.layer * c;
    r.fill(x, y, c, c, cl.colour);
    if (cl.score === null) {
      for (let j = 0; j < c; j++) for (let i = 0; i < c; i++) if ((i + j) % 6 < 2) r.set(x + i, y + j, HATCH);
    }
    // 1 px white gutter between cells.
    for (let k = 0; k < c; k++) {
      r.set(x + c - 1, y + k, white);
      r.set(x + k, y + c - 1, white);
    }
    if (cl.low) r.outline(x + 3, y + 3, c - 7, c - 7, 2, LOW_STROKE, 4, LOW_GAP);
    if (cl.circuit) r.outline(x + 1, y + 1, c - 3, c - 3, 3, CIRCUIT_STROKE);
  }
  // Legend: colour bar and markers.
  const ly = L.top + gridH + 16;
  const barW = 200;
  for (let i = 0; i < barW; i++) r.fill(L.left + i, ly, 1, 14, diverging((i / (barW - 1)) * 2 - 1));
  r.outline(L.left - 1, ly - 1, barW + 2, 16, 1, [136, 136, 136]);
  const lo = `-${shortNum(g.vmax)}`;
  const hi = `+${shortNum(g.vmax)}`;
  r.text(lo, L.left, ly + 22, 1, ink);
  r.text("0", L.left + barW / 2 - 2, ly + 22, 1, ink);
  r.text(hi, L.left + barW - Raster.textWidth(hi, 1), ly + 22, 1, ink);
  r.text("RELEVANCE", L.left, ly + 36, 1, ink);
  const mx = L.left + barW + 16;
  r.fill(mx, ly - 2, 18, 18, white);
  r.outline(mx, ly - 2, 18, 18, 3, CIRCUIT_STROKE);
  r.text("CIRCUIT", mx + 24, ly + 3, 1, ink);
  r.fill(mx, ly + 22, 18, 18, [187, 187, 187]);
  r.outline(mx + 1, ly + 23, 16, 16, 2, LOW_STROKE, 4, LOW_GAP);
  r.text("LOW", mx + 24, ly + 27, 1, ink);
  r.fill(mx, ly + 46, 18, 18, NULL_COLOUR);
  for (let j = 0; j < 18; j++) for (let i = 0; i < 18; i++) if ((i + j) % 6 < 2) r.set(mx + i, ly + 46 + j, HATCH);
  r.text("NOT SCORED", mx + 24, ly + 51, 1, ink);
  return encodePng({ width: L.width, height: L.height, channels: 3, pixels: r.pixels });
}
