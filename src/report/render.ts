// Vega-Lite specs -> SVG (vega's headless SVG renderer) -> PNG (resvg), all offline in Node.
import { Resvg } from "@resvg/resvg-js";
import type { TopLevelSpec } from "vega-lite";

// vega and vega-lite are ES modules with top-level await, which `require()` cannot load: they
// are imported on first use, with a dynamic import the CommonJS build keeps as one (see
// scripts/build.mjs). The SDK also loads faster without them.
let engines: Promise<[typeof import("vega"), typeof import("vega-lite")]> | undefined;
const loadEngines = () => (engines ??= Promise.all([import("vega"), import("vega-lite")]));

/** The chart as a standalone `<svg>` string (vega's own renderer; no DOM, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vl] = await loadEngines();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** An SVG rasterised to PNG bytes at `scale` × its size, with the system's fonts for text. */
export function svgToPng(svg: string, scale = 1): Uint8Array {
  const resvg = new Resvg(svg, { fitTo: { mode: "zoom", value: scale }, font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "white" });
  return resvg.render().asPng();
}
