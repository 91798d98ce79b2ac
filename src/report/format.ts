// Text and number formatting shared by the Markdown and HTML reports, and the colours.

/** The minus sign used in displayed numbers (U+2212), so negative values read as such. */
export const MINUS = "\u2212";

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : "&#39;"));
}

/**
 * Escape text for a Markdown document (table cells and list items included): inline
 * Markdown punctuation and `|` are backslash-escaped, `<`, `>` and `&` become entities so no
 * raw HTML reaches a renderer, a leading block marker is escaped and newlines become spaces.
 */
export function escapeMarkdown(s: string): string {
  return s
    .replace(/\r?\n/g, " ")
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/^([#+\-=])/, "\\$1");
}

/** `x` with `digits` decimals and a real minus sign; "—" for null or non-finite. */
export function fixed(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  const s = x.toFixed(digits);
  // -0.0 reads as 0.0
  if (Number(s) === 0) return (0).toFixed(digits);
  return s.startsWith("-") ? MINUS + s.slice(1) : s;
}

/** Like {@link fixed} but with an explicit "+" on positive values (for differences). */
export function signed(x: number | null | undefined, digits = 1): string {
  const s = fixed(x, digits);
  return s === "—" || s.startsWith(MINUS) || Number(s) === 0 ? s : `+${s}`;
}

/** A fraction 0..1 as percent points with one decimal. */
export function pct(x: number | null | undefined): string {
  return fixed(x === null || x === undefined ? x : x * 100, 1);
}

/** Three significant digits (for % of parameters updated). */
export function sig3(x: number): string {
  if (!Number.isFinite(x)) return "—";
  if (x === 0) return "0";
  const s = x.toPrecision(3);
  return s.startsWith("-") ? MINUS + s.slice(1) : s;
}

/** A relevance score compactly: two significant digits, plain ASCII. */
export function shortNum(x: number): string {
  if (!Number.isFinite(x)) return "?";
  if (x === 0) return "0";
  const a = Math.abs(x);
  const s = a >= 1e-3 && a < 1e4 ? String(Number(x.toPrecision(2))) : x.toExponential(1);
  return s;
}

/** Heads as `L3H2` tokens. */
export function headName([l, h]: [number, number]): string {
  return `L${l}H${h}`;
}

/** An RGB colour. */
export type Rgb = [number, number, number];

/** ColorBrewer RdBu (9 classes), blue for negative, near-white at zero, red for positive. */
export const RDBU: Rgb[] = [
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
];

/** The diverging colour for `t` in [−1, 1] (clamped): −1 deep blue, 0 near-white, +1 deep red. */
export function diverging(t: number): Rgb {
  const u = ((Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0)) + 1) / 2) * (RDBU.length - 1);
  const i = Math.min(RDBU.length - 2, Math.floor(u));
  const f = u - i;
  const a = RDBU[i] as Rgb;
  const b = RDBU[i + 1] as Rgb;
  return [0, 1, 2].map((k) => Math.round((a[k] as number) + ((b[k] as number) - (a[k] as number)) * f)) as Rgb;
}

/** `#rrggbb` for an RGB colour. */
export function hex([r, g, b]: Rgb): string {
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

/** Relative luminance (sRGB, approximate) to pick black or white text on a colour. */
export function isDark([r, g, b]: Rgb): boolean {
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 120;
}

const METHOD_COLOURS: Record<string, string> = {
  full: "#555555",
  ctsft: "#D55E00",
  "ctsft-low": "#E69F00",
  random: "#56B4E9",
  norms: "#009E73",
  lora: "#CC79A7",
};
const EXTRA_COLOURS = ["#0072B2", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD"];

/** A stable colour per method (Okabe–Ito for the known methods; a fallback cycle otherwise). */
export function methodColour(method: string, index: number): string {
  return METHOD_COLOURS[method] ?? (EXTRA_COLOURS[index % EXTRA_COLOURS.length] as string);
}
