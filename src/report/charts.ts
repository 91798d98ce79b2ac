// Inline SVG charts: training-loss curves and grouped bar charts with error bars.
import { escapeHtml, niceTicks, tickLabel } from "./format.ts";

/** One line of a line chart. */
export interface Series {
  name: string;
  colour: string;
  /** y per x = 1, 2, …; non-finite values break the line. */
  ys: number[];
}

const MAX_POINTS = 600;
const TITLE_CHARS = 64;
/** Approximate width of a 13 px bold title. */
const titleWidth = (t: string) => Math.ceil(Math.min(t.length, TITLE_CHARS) * 8.2);

/** A chart title (SVG text), shortened with an ellipsis past 64 characters; the full text is its tooltip. */
function titleText(title: string, x: number): string {
  const shown = title.length > TITLE_CHARS ? `${title.slice(0, TITLE_CHARS - 1)}…` : title;
  return `<text x="${x}" y="16" font-weight="600" font-size="13"><title>${escapeHtml(title)}</title>${escapeHtml(shown)}</text>`;
}

/** Bucket-average a long series down to at most `MAX_POINTS` points, keeping x positions. */
function downsample(ys: number[]): [number, number][] {
  if (ys.length <= MAX_POINTS) return ys.map((y, i) => [i + 1, y]);
  const out: [number, number][] = [];
  const per = ys.length / MAX_POINTS;
  for (let b = 0; b < MAX_POINTS; b++) {
    const s = Math.floor(b * per);
    const e = Math.max(s + 1, Math.floor((b + 1) * per));
    const part = ys.slice(s, e).filter(Number.isFinite);
    out.push([(s + e + 1) / 2, part.length ? part.reduce((a, v) => a + v, 0) / part.length : Number.NaN]);
  }
  return out;
}

function legend(items: { name: string; colour: string }[], x: number, y: number, width: number): { svg: string; height: number } {
  const parts: string[] = [];
  let cx = x;
  let cy = y;
  for (const it of items) {
    const w = 22 + it.name.length * 7 + 14;
    if (cx + w > x + width && cx > x) {
      cx = x;
      cy += 18;
    }
    parts.push(`<rect x="${cx}" y="${cy - 9}" width="14" height="10" fill="${escapeHtml(it.colour)}"/><text x="${cx + 18}" y="${cy}">${escapeHtml(it.name)}</text>`);
    cx += w;
  }
  return { svg: parts.join(""), height: cy - y + 18 };
}

/**
 * A line chart (x = training step) as inline SVG, with axes, ticks, axis titles and a
 * legend. Empty input gives a short note instead.
 */
export function lineChart(title: string, series: Series[], opts: { xLabel?: string; yLabel?: string; width?: number; height?: number } = {}): string {
  const width = Math.max(opts.width ?? 520, 56 + titleWidth(title) + 14);
  const plotH = opts.height ?? 220;
  const pts = series.map((s) => ({ ...s, pts: downsample(s.ys) }));
  const all = pts.flatMap((s) => s.pts).filter(([, y]) => Number.isFinite(y));
  if (all.length === 0) return `<figure class="chart"><figcaption>${escapeHtml(title)}</figcaption><p class="note">No training-loss data.</p></figure>`;
  const xMax = Math.max(2, ...all.map(([x]) => x));
  const ys = all.map(([, y]) => y);
  const yt = niceTicks(Math.min(0, ...ys) < 0 ? Math.min(...ys) : Math.min(...ys) * 0.95, Math.max(...ys), 5);
  const xt = niceTicks(1, xMax, 6).filter((v) => v >= 0);
  const [y0, y1] = [yt[0] as number, yt.at(-1) as number];
  const [x0, x1] = [Math.min(1, xt[0] as number), Math.max(xMax, xt.at(-1) as number)];
  const m = { l: 56, r: 14, t: 28, b: 40 };
  const pw = width - m.l - m.r;
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * pw;
  const Y = (y: number) => m.t + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const leg = legend(series, m.l, m.t + plotH + m.b + 6, pw);
  const height = m.t + plotH + m.b + leg.height + 8;
  const o: string[] = [];
  o.push(`<figure class="chart"><svg role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="11">`);
  o.push(titleText(title, m.l));
  for (const v of yt) o.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#e4e4e4"/><text x="${m.l - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${tickLabel(v, yt)}</text>`);
  for (const v of xt) if (v >= x0 && v <= x1) o.push(`<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${m.t + plotH}" y2="${m.t + plotH + 4}" stroke="#555555"/><text x="${X(v).toFixed(1)}" y="${m.t + plotH + 16}" text-anchor="middle">${tickLabel(v, xt)}</text>`);
  o.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + plotH}" y2="${m.t + plotH}" stroke="#555555"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + plotH}" stroke="#555555"/>`);
  o.push(`<text x="${m.l + pw / 2}" y="${m.t + plotH + 32}" text-anchor="middle">${escapeHtml(opts.xLabel ?? "step")}</text>`);
  o.push(`<text transform="translate(14 ${m.t + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(opts.yLabel ?? "loss")}</text>`);
  for (const s of pts) {
    let seg: string[] = [];
    const flush = () => {
      if (seg.length === 1) o.push(`<circle cx="${seg[0]?.split(",")[0]}" cy="${seg[0]?.split(",")[1]}" r="2" fill="${escapeHtml(s.colour)}"/>`);
      else if (seg.length > 1) o.push(`<polyline fill="none" stroke="${escapeHtml(s.colour)}" stroke-width="1.8" stroke-linejoin="round" points="${seg.join(" ")}"><title>${escapeHtml(s.name)}</title></polyline>`);
      seg = [];
    };
    for (const [x, y] of s.pts) {
      if (Number.isFinite(y)) seg.push(`${X(x).toFixed(1)},${Y(y).toFixed(1)}`);
      else flush();
    }
    flush();
  }
  o.push(leg.svg);
  o.push(`</svg></figure>`);
  return o.join("\n");
}

/** One bar: its group (x category), series (colour), value and optional ± error. */
export interface Bar {
  group: string;
  series: string;
  colour: string;
  value: number;
  error?: number;
}

/**
 * A grouped bar chart as inline SVG: groups along x, one bar per series within a group,
 * error bars (± `error`), a zero line (values may be negative), axis, legend, tooltips.
 */
export function barChart(title: string, bars: Bar[], opts: { yLabel?: string; width?: number; height?: number } = {}): string {
  const finite = bars.filter((b) => Number.isFinite(b.value));
  if (finite.length === 0) return `<figure class="chart"><figcaption>${escapeHtml(title)}</figcaption><p class="note">No data.</p></figure>`;
  const groups = [...new Set(finite.map((b) => b.group))];
  const series = [...new Map(finite.map((b) => [b.series, b.colour])).entries()].map(([name, colour]) => ({ name, colour }));
  const lo = Math.min(0, ...finite.map((b) => b.value - (b.error ?? 0)));
  const hi = Math.max(0, ...finite.map((b) => b.value + (b.error ?? 0)));
  const yt = niceTicks(lo, hi, 5);
  const [y0, y1] = [yt[0] as number, yt.at(-1) as number];
  const barW = 16;
  const m = { l: 56, r: 14, t: 28, b: 36 };
  const plotH = opts.height ?? 200;
  // At least room for the bars, the title and a 300 px plot; groups share the width evenly.
  const width = Math.max(m.l + groups.length * (series.length * barW + 24) + m.r, m.l + 300 + m.r, m.l + titleWidth(title) + m.r, opts.width ?? 0);
  const pw = width - m.l - m.r;
  const groupW = pw / groups.length;
  const Y = (y: number) => m.t + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const leg = legend(series, m.l, m.t + plotH + m.b + 4, width - m.l - m.r);
  const height = m.t + plotH + m.b + leg.height + 6;
  const o: string[] = [];
  o.push(`<figure class="chart"><svg role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="11">`);
  o.push(titleText(title, m.l));
  for (const v of yt) o.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#e4e4e4"/><text x="${m.l - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${tickLabel(v, yt)}</text>`);
  o.push(`<text transform="translate(14 ${m.t + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(opts.yLabel ?? "")}</text>`);
  groups.forEach((g, gi) => {
    const gx = m.l + gi * groupW + (groupW - series.length * barW) / 2;
    series.forEach((s, si) => {
      const b = finite.find((q) => q.group === g && q.series === s.name);
      if (!b) return;
      const x = gx + si * barW;
      const ya = Y(Math.max(0, b.value));
      const yb = Y(Math.min(0, b.value));
      const tip = `${g} · ${s.name}: ${b.value.toFixed(1)}${b.error !== undefined ? ` ± ${b.error.toFixed(1)}` : ""}`;
      o.push(`<g><title>${escapeHtml(tip)}</title><rect x="${x + 1}" y="${ya.toFixed(1)}" width="${barW - 2}" height="${Math.max(0.5, yb - ya).toFixed(1)}" fill="${escapeHtml(s.colour)}"/>`);
      if (b.error !== undefined && b.error > 0 && Number.isFinite(b.error)) {
        const cx = x + barW / 2;
        const e1 = Y(b.value + b.error).toFixed(1);
        const e0 = Y(b.value - b.error).toFixed(1);
        o.push(`<line x1="${cx}" x2="${cx}" y1="${e1}" y2="${e0}" stroke="#222222"/><line x1="${cx - 3}" x2="${cx + 3}" y1="${e1}" y2="${e1}" stroke="#222222"/><line x1="${cx - 3}" x2="${cx + 3}" y1="${e0}" y2="${e0}" stroke="#222222"/>`);
      }
      o.push(`</g>`);
    });
    const maxChars = Math.max(4, Math.floor((groupW - 8) / 6.5));
    const shown = g.length > maxChars ? `${g.slice(0, maxChars - 1)}…` : g;
    o.push(`<text x="${gx + (series.length * barW) / 2}" y="${m.t + plotH + 16}" text-anchor="middle"><title>${escapeHtml(g)}</title>${escapeHtml(shown)}</text>`);
  });
  o.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(0).toFixed(1)}" y2="${Y(0).toFixed(1)}" stroke="#555555"/><line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + plotH}" stroke="#555555"/>`);
  o.push(leg.svg);
  o.push(`</svg></figure>`);
  return o.join("\n");
}
