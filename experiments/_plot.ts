/**
 * A dependency-free SVG line chart for the experiment scripts (loss and flip-rate curves).
 *
 * @module
 */

/** One named curve. */
export interface Series {
  /** Legend label. */
  name: string;
  /** `[x, y]` points; non-finite y values are skipped. */
  points: readonly (readonly [number, number])[];
}

/** Chart options. */
export interface PlotOptions {
  /** Title above the chart. */
  title: string;
  /** X-axis label. */
  xLabel: string;
  /** Y-axis label. */
  yLabel: string;
  /** Logarithmic y axis (positive values only). */
  logY?: boolean;
  /** Width in pixels (default 720). */
  width?: number;
  /** Height in pixels (default 420). */
  height?: number;
}

const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Up to ~6 round tick values covering `[lo, hi]`. */
function ticks(lo: number, hi: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
  return out;
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

/**
 * Renders `series` as an SVG line chart.
 *
 * @param series The curves.
 * @param options Title, axis labels, log scale, size.
 * @returns The SVG document.
 */
export function lineChart(series: readonly Series[], options: PlotOptions): string {
  // The legend column grows with the longest series name (~7 px a character at 12 px).
  const longest = Math.max(0, ...series.map((s) => s.name.length));
  const right = Math.max(170, 44 + Math.ceil(7 * longest));
  const width = options.width ?? 550 + right, height = options.height ?? 420;
  const left = 70, top = 40, bottom = 50;
  const pw = width - left - right, ph = height - top - bottom;
  const tf = (y: number) => options.logY ? Math.log10(y) : y;
  const pts = series.flatMap((s) =>
    s.points.filter(([, y]) => Number.isFinite(y) && (!options.logY || y > 0))
  );
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => tf(p[1]));
  const x0 = Math.min(...xs, 0);
  let x1 = Math.max(...xs, 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (!Number.isFinite(y0)) [y0, y1] = [0, 1];
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  if (x1 === x0) x1 = x0 + 1;
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => top + (1 - (tf(y) - y0) / (y1 - y0)) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left + pw / 2}" y="22" text-anchor="middle" font-size="15">${
      escapeXml(options.title)
    }</text>`,
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
  );
  for (const t of ticks(x0, x1)) {
    const x = sx(t).toFixed(1);
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="#eee"/>`,
      `<text x="${x}" y="${top + ph + 16}" text-anchor="middle">${fmt(t)}</text>`,
    );
  }
  const yTicks = options.logY
    ? ticks(Math.floor(y0), Math.ceil(y1)).filter((t) => Number.isInteger(t) && t >= y0 && t <= y1)
      .map((t) => 10 ** t)
    : ticks(y0, y1);
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        fmt(t)
      }</text>`,
    );
  }
  out.push(
    `<text x="${left + pw / 2}" y="${height - 12}" text-anchor="middle">${
      escapeXml(options.xLabel)
    }</text>`,
    `<text x="16" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${
      top + ph / 2
    })">${escapeXml(options.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const path = s.points
      .filter(([, y]) => Number.isFinite(y) && (!options.logY || y > 0))
      .map(([x, y], j) => `${j === 0 ? "M" : "L"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
      .join(" ");
    if (path) {
      out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    }
    const ly = top + 10 + i * 18;
    out.push(
      `<line x1="${left + pw + 12}" y1="${ly}" x2="${
        left + pw + 32
      }" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${left + pw + 38}" y="${ly}" dominant-baseline="middle">${
        escapeXml(s.name)
      }</text>`,
    );
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
