/**
 * A small hand-written SVG bar chart: one group per case, one bar per
 * contender (engine, or fs / C), values on a linear axis, value labels on
 * the bars.
 */
export interface ChartRow {
  name: string;
  values: { engine: string; value: number }[];
}

/** Value unit, axis caption and colours of a chart. */
export interface ChartStyle {
  /** Appended to each bar's label: `ns`, `MB/s`. */
  unit: string;
  /** Axis caption: `median ns/op (lower is better)`. */
  axis: string;
  /** Bar colour per contender (default: wasm, js, fs, c). */
  colors?: Record<string, string>;
}

const COLORS: Record<string, string> = { wasm: '#654ff0', js: '#f0a020', fs: '#3a9a50', c: '#707070' };
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function barChart(title: string, rows: ChartRow[], style: ChartStyle): string {
  const colors = style.colors ?? COLORS;
  const engines = [...new Set(rows.flatMap((r) => r.values.map((v) => v.engine)))];
  const barH = 16;
  const groupGap = 14;
  const left = 190;
  const width = 820;
  const plotW = width - left - 90;
  const top = 50;
  const groupH = engines.length * barH + groupGap;
  const height = top + rows.length * groupH + 30;
  const max = Math.max(...rows.flatMap((r) => r.values.map((v) => v.value)), 1);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  engines.forEach((e, i) => {
    const x = left + i * 90;
    out.push(`<rect x="${x}" y="30" width="12" height="12" fill="${colors[e] ?? '#888'}"/>`);
    out.push(`<text x="${x + 16}" y="40">${esc(e)}</text>`);
  });
  rows.forEach((r, gi) => {
    const y0 = top + gi * groupH;
    out.push(`<text x="${left - 8}" y="${y0 + (engines.length * barH) / 2 + 4}" text-anchor="end">${esc(r.name)}</text>`);
    engines.forEach((e, ei) => {
      const v = r.values.find((x) => x.engine === e);
      if (!v) return;
      const w = Math.max(1, (v.value / max) * plotW);
      const y = y0 + ei * barH;
      out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colors[e] ?? '#888'}"/>`);
      out.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 5}">${fmt(v.value)} ${esc(style.unit)}</text>`);
    });
  });
  const axisY = top + rows.length * groupH;
  out.push(`<line x1="${left}" y1="${axisY}" x2="${left + plotW}" y2="${axisY}" stroke="#444"/>`);
  out.push(`<text x="${left + plotW}" y="${axisY + 16}" text-anchor="end">${esc(style.axis)}</text>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}

const fmt = (v: number): string => (v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));
