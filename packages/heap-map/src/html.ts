import { CELL, LIVE_LEVELS, SIZE_CLASSES } from "./grid.ts";
import type { HeapRecording } from "./record.ts";
import { escapeXml, layout, renderGrids, type RenderOptions } from "./svg.ts";

/** What the page's script reads for its tooltips: one entry per map. */
interface PanelData {
  readonly n: number;
  readonly rows: number;
  readonly low: number;
  readonly rowBytes: number;
  readonly opStart: number[];
  /** Cell codes, column-major, each as the character 48 + code. */
  readonly cells: string;
  readonly live: number[];
  readonly memory: number[];
}

/** The names of the cell codes, for tooltips. */
function codeNames(): string[] {
  const names: string[] = [];
  names[CELL.outside] = "not memory yet";
  names[CELL.untouched] = "never touched";
  names[CELL.free] = "free";
  for (const c of SIZE_CLASSES) {
    for (let l = 0; l < LIVE_LEVELS; l++) names.push(`live, mostly ${c.label} blocks, ≤ ${l + 1}/${LIVE_LEVELS} live`);
  }
  return names;
}

// The tooltip: finds the map under the pointer and says what its cell holds. Kept small and
// dependency-free; it reads the data from the JSON script element.
const SCRIPT = `
const data = JSON.parse(document.getElementById("heap-map-data").textContent);
const tip = document.getElementById("tip");
const kib = (b) => b < 1024 ? b + " B" : b < 1048576 ? (b / 1024).toFixed(1) + " KiB" : (b / 1048576).toFixed(2) + " MiB";
document.querySelectorAll(".heap-map").forEach((g, i) => {
  const p = data.panels[i], plot = g.querySelector("rect.plot"), columns = p.opStart.length - 1;
  plot.style.pointerEvents = "all";
  plot.addEventListener("mousemove", (e) => {
    const box = plot.getBoundingClientRect();
    const j = Math.min(columns - 1, Math.floor(((e.clientX - box.left) / box.width) * columns));
    const r = Math.min(p.rows - 1, p.rows - 1 - Math.floor(((e.clientY - box.top) / box.height) * p.rows));
    const a = p.low + r * p.rowBytes, code = p.cells.charCodeAt(j * p.rows + r) - 48;
    tip.textContent = "operations " + p.opStart[j] + "–" + (p.opStart[j + 1] - 1) + ", addresses " + a + "–" + (a + p.rowBytes - 1) +
      ": " + data.names[code] + "; live up to " + kib(p.live[j]) + ", memory " + kib(p.memory[j]);
    tip.style.left = e.clientX + 12 + "px";
    tip.style.top = e.clientY + 12 + "px";
    tip.hidden = false;
  });
  plot.addEventListener("mouseleave", () => (tip.hidden = true));
});
`;

/**
 * The heap map as a standalone HTML page: the SVG of {@link renderHeapMap} with a tooltip that
 * names the operations, the addresses and what a cell holds.
 */
export function renderHeapMapHtml(recordings: HeapRecording | readonly HeapRecording[], options: RenderOptions = {}): string {
  const laid = layout(recordings, options);
  const panels: PanelData[] = laid.grids.map((g) => ({
    n: g.operations,
    rows: g.rows,
    low: g.addressLow,
    rowBytes: g.rowBytes,
    opStart: Array.from(g.opStart),
    cells: Array.from(g.cells, (c) => String.fromCharCode(48 + c)).join(""),
    live: Array.from(g.liveBytes),
    memory: Array.from(g.memoryBytes),
  }));
  const title = options.title ?? laid.recordings[0]!.trace;
  // "<" never appears in the JSON's strings except through trace names; escape it so the script element cannot end early.
  const json = JSON.stringify({ names: codeNames(), panels }).replace(/</g, "\\u003c");
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(`heap map: ${title}`)}</title>` +
    `<style>body{margin:16px;font:13px system-ui,sans-serif}#tip{position:fixed;pointer-events:none;background:#fffffff0;border:1px solid #999;padding:4px 6px;max-width:420px}</style>` +
    `</head><body>\n${renderGrids(laid, options)}<div id="tip" hidden></div>\n` +
    `<script type="application/json" id="heap-map-data">${json}</script>\n<script>${SCRIPT}</script>\n</body></html>\n`
  );
}
