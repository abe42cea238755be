import type { BenchReport } from "./report.ts";

/** Colours: our compositions in blues and greens, the peers in warm greys and oranges. */
const OURS = ["#1f6feb", "#2da44e", "#0a3069", "#54aeff", "#116329"];
const PEERS = ["#bc4c00", "#8c959f", "#d4a72c", "#6e7781"];

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const num = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/**
 * The report as an SVG chart for the README: one small panel per workload (each with its own
 * linear scale), plus the geometric mean, of ns per operation on a reused heap, median with a
 * whisker from the fastest to the slowest round. Shorter is better. A panel's scale ends at four
 * times its median bar, so that one allocator far off (bump growing memory on every replay) does not
 * flatten the others: longer bars are cut, marked with a gap, and labelled with their value.
 */
export function chart(report: BenchReport): string {
  const names = report.contenders.map((c) => c.name);
  let ours = 0, peers = 0;
  const colour = new Map(report.contenders.map((c) => [c.name, c.kind === "ours" ? OURS[ours++ % OURS.length]! : PEERS[peers++ % PEERS.length]!]));
  type Bar = { name: string; median: number; min: number; max: number } | { name: string; missing: string };
  const panels: { title: string; bars: Bar[] }[] = [
    {
      title: "geometric mean",
      bars: report.summary.map((s) => (Number.isNaN(s.reusedGeomean) ? { name: s.contender, missing: "n/a" } : { name: s.contender, median: s.reusedGeomean, min: s.reusedGeomean, max: s.reusedGeomean })),
    },
    ...report.workloads.map((w) => ({
      title: `${w.name} (${w.operations} ops)`,
      bars: names.map((name): Bar => {
        const cell = report.cells.find((c) => c.contender === name && c.workload === w.name);
        if (!cell || cell.error) return { name, missing: "failed verification" };
        if (cell.timedError) return { name, missing: "trapped (out of memory?)" };
        if (!cell.reused) return { name, missing: "not timed" };
        if (cell.failedAllocations || cell.timedFailures) return { name, missing: "out of memory" };
        return { name, median: cell.reused.median, min: cell.reused.min, max: cell.reused.max };
      }),
    })),
  ];

  const columns = 3, panelWidth = 330, label = 150, barHeight = 13, gap = 4, titleHeight = 22, pad = 12;
  const panelHeight = titleHeight + names.length * (barHeight + gap) + pad;
  const legendHeight = 28, headerHeight = 44;
  const width = columns * panelWidth + pad;
  const height = headerHeight + legendHeight + Math.ceil(panels.length / columns) * panelHeight + pad;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-sans-serif, system-ui, sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="${pad}" y="20" font-size="15" font-weight="600" fill="#1f2328">ns per operation, reused heap (shorter is better)</text>`);
  const machine = `${report.mode} run, ${report.config.rounds} rounds, median and min–max · Node ${report.machine.node}, ${report.machine.cpu}`;
  out.push(`<text x="${pad}" y="36" fill="#656d76">${escape(machine)}</text>`);
  let x = pad;
  for (const c of report.contenders) {
    out.push(`<rect x="${x}" y="${headerHeight + 6}" width="10" height="10" fill="${colour.get(c.name)}"/>`);
    const text = `${c.name}${c.isDefault ? " (default)" : ""}`;
    out.push(`<text x="${x + 14}" y="${headerHeight + 15}" fill="#1f2328">${escape(text)}</text>`);
    x = Math.round(x + 24 + text.length * 6.2);
  }
  panels.forEach((panel, i) => {
    const px = pad + (i % columns) * panelWidth, py = headerHeight + legendHeight + Math.floor(i / columns) * panelHeight;
    const medians = panel.bars.flatMap((b) => ("median" in b ? [b.median] : [])).sort((a, b) => a - b);
    const cap = 4 * (medians[Math.floor((medians.length - 1) / 2)] ?? 1);
    const scaleMax = Math.max(Math.min(cap, Math.max(...panel.bars.map((b) => ("max" in b ? b.max : 0)))), 1e-9);
    const barSpace = panelWidth - label - 56;
    out.push(`<g transform="translate(${px},${py})">`);
    out.push(`<text x="0" y="14" font-weight="600" fill="#1f2328">${escape(panel.title)}</text>`);
    panel.bars.forEach((bar, j) => {
      const y = titleHeight + j * (barHeight + gap);
      out.push(`<text x="${label - 6}" y="${y + barHeight - 3}" text-anchor="end" fill="#424a53">${escape(bar.name)}</text>`);
      if ("missing" in bar) {
        out.push(`<text x="${label}" y="${y + barHeight - 3}" fill="#8c959f" font-style="italic">${escape(bar.missing)}</text>`);
        return;
      }
      const w = (v: number) => Math.max(1, Math.min(v / scaleMax, 1) * barSpace);
      out.push(`<rect x="${label}" y="${y}" width="${w(bar.median).toFixed(1)}" height="${barHeight}" fill="${colour.get(bar.name)}"/>`);
      if (bar.median > scaleMax) {
        // Cut: a white gap across the bar near its end.
        const gx = label + barSpace - 14;
        out.push(`<path d="M${gx} ${y - 1} l4 ${barHeight + 2} h3 l-4 ${-(barHeight + 2)} z" fill="#ffffff"/>`);
      } else if (bar.max > bar.min) {
        const y0 = y + barHeight / 2;
        out.push(`<line x1="${(label + w(bar.min)).toFixed(1)}" x2="${(label + w(bar.max)).toFixed(1)}" y1="${y0}" y2="${y0}" stroke="#1f2328" stroke-width="1"/>`);
      }
      out.push(`<text x="${(label + w(bar.max) + 4).toFixed(1)}" y="${y + barHeight - 3}" fill="#1f2328">${num(bar.median)}</text>`);
    });
    out.push(`</g>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
