import { buildGrid, CELL, CELL_CODES, gridScale, LIVE_LEVELS, liveCode, SIZE_CLASSES, type GridOptions, type HeapGrid } from "./grid.ts";
import type { HeapRecording } from "./record.ts";

export interface RenderOptions extends GridOptions {
  /** A title above the maps (default: the trace's name). */
  readonly title?: string;
}

/** Pixel layout of one panel (a recording's heap map over its live-bytes chart). */
export const LAYOUT = {
  left: 76,
  plotWidth: 640,
  right: 28,
  top: 64,
  heapHeight: 300,
  /** From the bottom of the heap plot to the top of the chart. */
  gap: 44,
  chartHeight: 110,
  legendHeight: 112,
} as const;

const PANEL_WIDTH = LAYOUT.left + LAYOUT.plotWidth + LAYOUT.right;
const CHART_TOP = LAYOUT.top + LAYOUT.heapHeight + LAYOUT.gap;
const LEGEND_TOP = CHART_TOP + LAYOUT.chartHeight + 36;

/** Colours of the size classes (Okabe–Ito, distinguishable with colour blindness). */
const CLASS_COLOURS = ["#0072B2", "#56B4E9", "#009E73", "#E69F00", "#D55E00", "#CC79A7", "#7A5195"];
const LEVEL_OPACITY = [0.3, 0.55, 0.8, 1];
const FREE = "#a9a9a9";
const UNTOUCHED = "#e3e8ee";
const MEMORY_LINE = "#222";
const LIVE_LINE = "#D55E00";

/** Class names of the cell codes: `s<code>`. */
const styleClass = (code: number) => `s${code}`;

function cellStyles(): string {
  const rules = [`.${styleClass(CELL.free)}{fill:${FREE}}`, `.${styleClass(CELL.untouched)}{fill:${UNTOUCHED}}`];
  SIZE_CLASSES.forEach((_, c) => {
    for (let l = 0; l < LIVE_LEVELS; l++) rules.push(`.${styleClass(liveCode(c, l))}{fill:${CLASS_COLOURS[c]};fill-opacity:${LEVEL_OPACITY[l]}}`);
  });
  return rules.join("");
}

/** Bytes for axes and titles: `512 B`, `64 KiB`, `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let u = 0, v = bytes;
  while (Math.abs(v) >= 1024 && u < units.length - 1) (v /= 1024), u++;
  return `${Number(v.toFixed(u === 0 ? 0 : 2))} ${units[u]}`;
}

function formatCount(n: number): string {
  if (n >= 1e6) return `${Number((n / 1e6).toFixed(2))}M`;
  if (n >= 1e3) return `${Number((n / 1e3).toFixed(2))}k`;
  return String(n);
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** A tick step: a power of two for bytes, 1, 2 or 5 × 10^k for counts, giving at most `most` steps over `range`. */
function tickStep(range: number, most: number, bytes: boolean): number {
  const want = Math.max(range / most, 1);
  if (bytes) return 2 ** Math.ceil(Math.log2(want));
  const p = 10 ** Math.floor(Math.log10(want));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= want)!;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

/** The cells of one grid as one path per cell code, in cell units (column, row from the top). */
function cellPaths(grid: HeapGrid): string {
  const { columns, rows, cells } = grid;
  const runs: string[][] = Array.from({ length: CELL_CODES }, () => []);
  for (let r = 0; r < rows; r++) {
    const y = rows - 1 - r;
    let j = 0;
    while (j < columns) {
      const code = cells[j * rows + r]!;
      let end = j + 1;
      while (end < columns && cells[end * rows + r] === code) end++;
      if (code !== CELL.outside) runs[code]!.push(`M${j} ${y}h${end - j}v1h-${end - j}`);
      j = end;
    }
  }
  return runs
    .map((d, code) => (d.length ? `<path class="${styleClass(code)}" d="${d.join("")}"/>` : ""))
    .join("");
}

interface Scales {
  readonly chartMax: number;
}

function panel(recording: HeapRecording, grid: HeapGrid, scales: Scales, index: number): string {
  const { left, plotWidth: W, top, heapHeight: H, chartHeight: CH } = LAYOUT;
  const { operations: n, columns, rows, addressLow: low, addressHigh: high } = grid;
  const xOfOp = (op: number) => left + (n ? (op / n) * W : 0);
  const yOfAddress = (a: number) => top + H - ((a - low) / (high - low)) * H;
  const yOfBytes = (b: number) => CHART_TOP + CH - (b / scales.chartMax) * CH;
  const finalMemory = columns ? grid.memoryBytes[columns - 1]! : grid.initialMemoryBytes;
  const out: string[] = [];
  out.push(
    `<g class="heap-map" transform="translate(${index * PANEL_WIDTH},0)" data-trace="${escapeXml(recording.trace)}" data-label="${escapeXml(recording.label)}"` +
      ` data-operations="${n}" data-columns="${columns}" data-rows="${rows}" data-address-low="${low}" data-address-high="${high}" data-row-bytes="${grid.rowBytes}"` +
      ` data-peak-live-bytes="${recording.peakLiveBytes}" data-final-memory-bytes="${finalMemory}" data-grow-steps="${grid.growOps.length}" data-chart-max-bytes="${scales.chartMax}">`,
  );
  if (recording.label) out.push(`<text class="title" x="${left}" y="${top - 26}">${escapeXml(recording.label)}</text>`);
  out.push(
    `<text class="sub" x="${left}" y="${top - 10}">peak live ${formatBytes(recording.peakLiveBytes)}, memory ${formatBytes(finalMemory)} at the end, ` +
      `${grid.growOps.length} memory.grow step${grid.growOps.length === 1 ? "" : "s"}${recording.failedAllocations ? `, ${recording.failedAllocations} failed` : ""}</text>`,
  );

  // The heap: cells, the memory's end over time, grow marks, axes.
  out.push(`<rect class="plot" x="${left}" y="${top}" width="${W}" height="${H}"/>`);
  out.push(
    `<g class="cells" transform="translate(${left},${top}) scale(${W / columns},${H / rows})" shape-rendering="crispEdges">${cellPaths(grid)}</g>`,
  );
  let edge = `M${left} ${r1(yOfAddress(grid.initialMemoryBytes))}`;
  grid.growOps.forEach((op, k) => (edge += `H${r1(xOfOp(op))}V${r1(yOfAddress(grid.growBytes[k]!))}`));
  out.push(`<path class="memory-edge" d="${edge}H${left + W}"/>`);
  out.push(`<path class="grow" d="${grid.growOps.map((op) => `M${r1(xOfOp(op + 0.5))} ${top + H + 2}v7`).join("")}"/>`);
  const aStep = tickStep(high - low, 6, true);
  for (let a = Math.ceil(low / aStep) * aStep; a <= high; a += aStep) {
    const y = r1(yOfAddress(a));
    out.push(`<path class="tick" d="M${left - 4} ${y}h4"/><text class="axis" x="${left - 6}" y="${y + 3}" text-anchor="end">${formatBytes(a)}</text>`);
  }
  out.push(`<text class="axis" transform="translate(12,${top + H / 2}) rotate(-90)" text-anchor="middle">address</text>`);
  const opTicks = (y: number) => {
    const step = tickStep(n, 8, false);
    for (let op = 0; op <= n; op += step) {
      out.push(`<text class="axis" x="${r1(xOfOp(op))}" y="${y}" text-anchor="middle">${formatCount(op)}</text>`);
    }
  };
  opTicks(top + H + 22);

  // Live bytes and memory over time.
  out.push(`<rect class="plot" x="${left}" y="${CHART_TOP}" width="${W}" height="${CH}"/>`);
  const bStep = tickStep(scales.chartMax, 4, true);
  for (let b = 0; b <= scales.chartMax; b += bStep) {
    const y = r1(yOfBytes(b));
    out.push(`<path class="grid-line" d="M${left} ${y}h${W}"/><text class="axis" x="${left - 6}" y="${y + 3}" text-anchor="end">${formatBytes(b)}</text>`);
  }
  const line = (cls: string, start: number, values: Float64Array) => {
    const points = [`${left},${r1(yOfBytes(start))}`];
    values.forEach((v, j) => points.push(`${r1(xOfOp(grid.opStart[j + 1]!))},${r1(yOfBytes(v))}`));
    return `<polyline class="${cls}" points="${points.join(" ")}"/>`;
  };
  out.push(line("memory", grid.initialMemoryBytes, grid.memoryBytes), line("live", 0, grid.liveBytes));
  opTicks(CHART_TOP + CH + 14);
  out.push(`<text class="axis" x="${left + W}" y="${CHART_TOP + CH + 28}" text-anchor="end">operation</text>`);
  out.push(`</g>`);
  return out.join("");
}

/** The legend: swatches and labels flowed into rows of the panel's width. */
function legend(): string {
  const out: string[] = [`<g class="legend" transform="translate(${LAYOUT.left},${LEGEND_TOP})">`];
  const width = LAYOUT.plotWidth + LAYOUT.right;
  let x = 0, y = 0;
  const item = (swatch: string, label: string) => {
    const w = 28 + label.length * 6.4;
    if (x > 0 && x + w > width) (x = 0), (y += 20);
    out.push(`<g transform="translate(${x},${y})">${swatch}<text x="16" y="10">${escapeXml(label)}</text></g>`);
    x += w;
  };
  const heading = (text: string) => {
    if (x > 0) (x = 0), (y += 20);
    out.push(`<text y="${y + 10}">${escapeXml(text)}</text>`);
    x = 6.4 * text.length + 8;
  };
  const box = (cls: string) => `<rect class="${cls}" width="12" height="12"/>`;
  heading("live blocks by requested size:");
  SIZE_CLASSES.forEach((c, k) => item(box(styleClass(liveCode(k, LIVE_LEVELS - 1))), c.label));
  heading("shade, live share of the cell:");
  for (let l = 0; l < LIVE_LEVELS; l++) item(box(styleClass(liveCode(2, l))), `≤ ${l + 1}/${LIVE_LEVELS}`);
  item(box(styleClass(CELL.free)), "free (between blocks so far)");
  item(box(styleClass(CELL.untouched)), "never touched (below or above every block so far)");
  item(`<rect class="plot" width="12" height="12"/>`, "not memory yet");
  item(`<path class="memory-edge" d="M0 6h12"/>`, "memory size");
  item(`<path class="grow" d="M6 2v9"/>`, "memory.grow");
  item(`<path class="live" d="M0 6h12"/>`, "live bytes (the most in each column)");
  item(`<path class="memory" d="M0 6h12"/>`, "memory bytes");
  out.push(`</g>`);
  return out.join("");
}

/**
 * The heap map of one recording, or of several recordings of the same trace side by side on the
 * same scales (address, operations and bytes): an SVG document as a string.
 *
 * Each map shows addresses (bottom to top) over operations (left to right), aggregated into at
 * most `maxColumns` × `maxRows` cells; below it, live bytes and memory over the operations.
 */
export function renderHeapMap(recordings: HeapRecording | readonly HeapRecording[], options: RenderOptions = {}): string {
  return renderGrids(layout(recordings, options), options);
}

export interface Layout {
  readonly recordings: readonly HeapRecording[];
  readonly grids: readonly HeapGrid[];
}

/** The grids of the recordings on one scale. */
export function layout(recordings: HeapRecording | readonly HeapRecording[], options: GridOptions = {}): Layout {
  const list: readonly HeapRecording[] = Array.isArray(recordings) ? recordings : [recordings as HeapRecording];
  const scale = gridScale(list, options);
  return { recordings: list, grids: list.map((r) => buildGrid(r, scale)) };
}

/** The SVG document of grids built by {@link layout}. */
export function renderGrids({ recordings, grids }: Layout, options: RenderOptions = {}): string {
  const most = (f: (g: HeapGrid) => number) => Math.max(...grids.map(f));
  const top = Math.max(
    most((g) => g.initialMemoryBytes),
    most((g) => Math.max(0, ...g.memoryBytes)),
    most((g) => Math.max(0, ...g.liveBytes)),
    1,
  );
  const step = tickStep(top, 4, true);
  const scales: Scales = { chartMax: Math.ceil(top / step) * step };
  const width = PANEL_WIDTH * grids.length;
  const height = LEGEND_TOP + LAYOUT.legendHeight;
  const title = options.title ?? recordings[0]!.trace;
  const style =
    `text{font:11px system-ui,sans-serif;fill:#222}.title{font-size:13px;font-weight:600}.sub{fill:#555}` +
    `.plot{fill:#fff;stroke:#999;stroke-width:.5}.tick{stroke:#999}.grid-line{stroke:#e5e5e5}` +
    `.memory-edge{fill:none;stroke:${MEMORY_LINE};stroke-width:1}.grow{stroke:${LIVE_LINE};stroke-width:1}` +
    `.live{fill:none;stroke:${LIVE_LINE};stroke-width:1.2}.memory{fill:none;stroke:${MEMORY_LINE};stroke-width:1.2}` +
    cellStyles();
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">` +
    `<title>${escapeXml(`heap map: ${title}`)}</title><style>${style}</style>` +
    `<rect width="${width}" height="${height}" fill="#fff"/>` +
    `<text class="title" x="${LAYOUT.left}" y="18">${escapeXml(title)}</text>` +
    grids.map((g, i) => panel(recordings[i]!, g, scales, i)).join("") +
    legend() +
    `</svg>\n`
  );
}
