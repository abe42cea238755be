import { buildAllocator } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";
import { sharedTracesDir } from "@alloc/test-utils";
import { generateWorkload, parseTrace, replay, WORKLOADS, type Trace } from "@alloc/trace";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  buildGrid,
  CELL,
  gridScale,
  LIVE_LEVELS,
  PAGE_BYTES,
  recordHeap,
  renderHeapMap,
  renderHeapMapHtml,
  SIZE_CLASSES,
  sizeClassOf,
  type HeapRecording,
} from "./index.ts";
import { LAYOUT } from "./svg.ts";
import { liveCode } from "./grid.ts";

const exports = ["malloc", "free", "realloc"] as const;
const freeListAllocator = buildAllocator({ strategy: freeList(), exports: [...exports] });
const stackedAllocator = buildAllocator({ strategy: [sizeClasses(), freeList()], exports: [...exports] });

async function record(trace: Trace, allocator = freeListAllocator, label = "free-list") {
  const target = await allocator.instantiate();
  return { recording: recordHeap(target, trace, { label }), memoryBytes: target.memory.buffer.byteLength };
}

// ---- the SVG, read back ---------------------------------------------------------------------

type Node = Record<string, unknown>;
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "", preserveOrder: false, isArray: (name) => ["g", "path", "polyline", "text", "rect"].includes(name) });

/** Every element named `name` under `node`, depth first. */
function all(node: unknown, name: string): Node[] {
  const found: Node[] = [];
  const walk = (n: unknown) => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (typeof n !== "object" || n === null) return;
    for (const [key, value] of Object.entries(n as Node)) {
      if (key === name) (Array.isArray(value) ? value : [value]).forEach((v) => found.push(v as Node));
      walk(value);
    }
  };
  walk(node);
  return found;
}

interface Panel {
  readonly attrs: Record<string, number | string>;
  readonly node: Node;
  /** The chart's polylines as [x, bytes] points. */
  readonly live: [number, number][];
  readonly memory: [number, number][];
  readonly growMarks: number;
  /** The cell runs: code, column, row from the top, length. */
  readonly runs: { code: number; column: number; y: number; length: number }[];
}

/** Parses an SVG the way a user's viewer would have to: well formed, with the panels' data. */
function readSvg(svg: string): { root: Node; panels: Panel[] } {
  expect(XMLValidator.validate(svg)).toBe(true);
  const root = parser.parse(svg).svg as Node;
  expect(root.xmlns).toBe("http://www.w3.org/2000/svg");
  const panels = all(root, "g")
    .filter((g) => g.class === "heap-map")
    .map((g): Panel => {
      const attrs = Object.fromEntries(
        Object.entries(g)
          .filter(([k]) => k.startsWith("data-"))
          .map(([k, v]) => [k.slice(5), /^\d+$/.test(String(v)) ? Number(v) : String(v)]),
      );
      const chartMax = attrs["chart-max-bytes"] as number;
      const chartTop = LAYOUT.top + LAYOUT.heapHeight + LAYOUT.gap;
      const points = (cls: string): [number, number][] =>
        String(all(g, "polyline").find((p) => p.class === cls)!.points)
          .split(" ")
          .map((pair) => pair.split(",").map(Number) as [number, number])
          .map(([x, y]) => [x, ((chartTop + LAYOUT.chartHeight - y) / LAYOUT.chartHeight) * chartMax]);
      const grow = String(all(g, "path").find((p) => p.class === "grow")!.d);
      const cells = all(g, "g").find((c) => c.class === "cells")!;
      const runs = all(cells, "path").flatMap((p) => {
        const code = Number(String(p.class).slice(1));
        return [...String(p.d).matchAll(/M(\d+) (\d+)h(\d+)v1h-\3/g)].map((m) => ({ code, column: Number(m[1]), y: Number(m[2]), length: Number(m[3]) }));
      });
      return { attrs, node: g, live: points("live"), memory: points("memory"), growMarks: (grow.match(/M/g) ?? []).length, runs };
    });
  return { root, panels };
}

/** The bytes one chart pixel's tenth stands for: how close a value read back from the chart must be. */
const resolution = (panel: Panel) => ((panel.attrs["chart-max-bytes"] as number) / LAYOUT.chartHeight) * 0.06;

/** The map's cell codes back from its runs, column-major (rows from the bottom), as the grid stores them. */
function cellsOf(panel: Panel): number[] {
  const { columns, rows } = panel.attrs as { columns: number; rows: number };
  const cells = new Array<number>(columns * rows).fill(CELL.outside);
  for (const run of panel.runs) for (let j = run.column; j < run.column + run.length; j++) cells[j * rows + (rows - 1 - run.y)] = run.code;
  return cells;
}

/** Checks the numbers a map states against what the replay measured. */
function checkNumbers(panel: Panel, recording: HeapRecording, expected: { peakLiveBytes: number; memoryBytes: number }) {
  expect(panel.attrs["peak-live-bytes"]).toBe(expected.peakLiveBytes);
  expect(panel.attrs["final-memory-bytes"]).toBe(expected.memoryBytes);
  const pagesGrown = recording.pages.filter((p, i) => p > (i === 0 ? recording.initialPages : recording.pages[i - 1]!)).length;
  expect(panel.attrs["grow-steps"]).toBe(pagesGrown);
  expect(panel.growMarks).toBe(pagesGrown);
  // The curves, read back through the axis: the live curve peaks at the replay's peak, the
  // memory curve ends at the module's memory size and never goes down.
  const peak = Math.max(...panel.live.map(([, b]) => b));
  expect(Math.abs(peak - expected.peakLiveBytes)).toBeLessThanOrEqual(resolution(panel));
  expect(Math.abs(panel.memory.at(-1)![1] - expected.memoryBytes)).toBeLessThanOrEqual(resolution(panel));
  panel.memory.slice(1).forEach(([, b], i) => expect(b).toBeGreaterThanOrEqual(panel.memory[i]![1] - resolution(panel)));
  expect(panel.live.at(-1)![0]).toBeCloseTo(LAYOUT.left + LAYOUT.plotWidth, 1);
}

// ---- recording ------------------------------------------------------------------------------

describe("recordHeap", () => {
  test("follows the replay's semantics: realloc replaces, realloc(p, 0) and free give back, a freed allocation is a no-op", async () => {
    const trace = parseTrace("Alloc(24),\nRealloc(0,100),\nAlloc(8),\nRealloc(0,10),\nRealloc(1,0),\nRealloc(1,40),\nFree(0),\nFree(0),\n", "r");
    const { recording } = await record(trace);
    expect(recording.peakLiveBytes).toBe(108);
    expect(recording.liveBytesAtEnd).toBe(40);
    expect(Array.from(recording.size)).toEqual([24, 100, 8, 10, 0, 40, 0, 0]);
    expect(Array.from(recording.releasedSize)).toEqual([0, 24, 0, 100, 8, 0, 10, 0]);
    // What op 1 handed out, op 3 gave back; what op 3 handed out, op 6 freed.
    expect(recording.released[3]).toBe(recording.address[1]);
    expect(recording.released[6]).toBe(recording.address[3]);
    expect(recording.released[7]).toBe(0);
  });

  test.each(WORKLOADS.map((w) => [w.name]))("%s: live blocks never overlap, and the peak is the verified replay's", async (name) => {
    // The workloads of large blocks are shorter: the verified replay tags every byte of them.
    const trace = generateWorkload(name, { ops: ["large-blocks", "staircase", "realloc-doubling", "large-holes"].includes(name) ? 300 : 3_000 });
    const { recording } = await record(trace, stackedAllocator);
    const replayed = replay(await stackedAllocator.instantiate(), trace);
    expect(recording.peakLiveBytes).toBe(replayed.peakLiveBytes);
    expect(recording.liveBytesAtEnd).toBe(replayed.liveBytesAtEnd);
    expect(recording.failedAllocations).toBe(0);
    // Sweep the recording: every block is inside memory and overlaps no live block (the live
    // blocks kept sorted by address: a new one must end before the next and start after the previous).
    const starts: number[] = [], ends = new Map<number, number>(), sizes = new Map<number, number>();
    const at = (p: number) => {
      let lo = 0, hi = starts.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (starts[mid]! < p) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    for (let i = 0; i < recording.operations; i++) {
      const gone = recording.released[i]!;
      if (gone) {
        expect(starts[at(gone)]).toBe(gone);
        starts.splice(at(gone), 1);
        ends.delete(gone);
        sizes.delete(gone);
      }
      const p = recording.address[i]!, end = p + Math.max(recording.size[i]!, 1);
      if (!p) continue;
      const k = at(p);
      const before = starts[k - 1], after = starts[k];
      if (end > recording.pages[i]! * PAGE_BYTES) throw new Error(`op ${i}: [${p}, ${end}) is past the end of memory`);
      if (before !== undefined && ends.get(before)! > p) throw new Error(`op ${i}: [${p}, ${end}) overlaps the block at ${before}`);
      if (after !== undefined && after < end) throw new Error(`op ${i}: [${p}, ${end}) overlaps the block at ${after}`);
      starts.splice(k, 0, p);
      ends.set(p, end);
      sizes.set(p, recording.size[i]!);
    }
    expect([...sizes.values()].reduce((a, b) => a + b, 0)).toBe(replayed.liveBytesAtEnd);
  });

  test("names the missing export", async () => {
    const target = await buildAllocator({ strategy: freeList(), exports: ["malloc", "free"] }).instantiate();
    expect(() => recordHeap(target, parseTrace("Alloc(8),\nRealloc(0,16),\n", "t"))).toThrow(/does not export "realloc"/);
  });
});

/** A hand-made recording: 2 pages, rows of 16 KiB. */
const made: HeapRecording = {
  trace: "made",
  label: "",
  operations: 4,
  //                         alloc A      alloc B      free A       (nothing)
  address: Uint32Array.from([16384, 32768 + 64, 0, 0]),
  size: Uint32Array.from([16384, 100, 0, 0]),
  released: Uint32Array.from([0, 0, 16384, 0]),
  releasedSize: Uint32Array.from([0, 0, 16384, 0]),
  pages: Uint32Array.from([1, 1, 2, 2]),
  initialPages: 1,
  peakLiveBytes: 16484,
  liveBytesAtEnd: 100,
  failedAllocations: 0,
  growSteps: 1,
};

// ---- the grid -------------------------------------------------------------------------------

describe("cells", () => {
  test("each cell shows the dominant size class shaded by its live share, else free, never touched, or not memory yet", () => {
    const scale = gridScale([made], { maxRows: 8 });
    expect(scale).toMatchObject({ columns: 4, rows: 8, addressLow: 0, addressHigh: 2 * PAGE_BYTES, rowBytes: 16384 });
    const grid = buildGrid(made, scale);
    const column = (j: number) => Array.from(grid.cells.subarray(j * 8, j * 8 + 8));
    const { free: F, untouched: U, outside: O } = CELL;
    const A = liveCode(sizeClassOf(16384), LIVE_LEVELS - 1), B = liveCode(sizeClassOf(100), 0);
    expect(sizeClassOf(16384)).toBe(SIZE_CLASSES.findIndex((c) => c.label === "4–64 KiB"));
    // Row 0 lies below every block: never touched; row 1 is free once A is gone, between blocks.
    expect(column(0)).toEqual([U, A, U, U, O, O, O, O]);
    expect(column(1)).toEqual([U, A, B, U, O, O, O, O]);
    expect(column(2)).toEqual([U, F, B, U, U, U, U, U]);
    expect(column(3)).toEqual(column(2));
    expect(Array.from(grid.liveBytes)).toEqual([16384, 16484, 16484, 100]);
    expect(Array.from(grid.memoryBytes)).toEqual([65536, 65536, 131072, 131072]);
    expect(grid.growOps).toEqual([2]);
  });

  test("a column of several operations integrates them: the live column max, the dominant class", () => {
    const grid = buildGrid(made, gridScale([made], { maxRows: 8, maxColumns: 2 }));
    expect(Array.from(grid.opStart)).toEqual([0, 2, 4]);
    expect(Array.from(grid.liveBytes)).toEqual([16484, 16484]);
    // Row 4 was not memory during ops 0-1, then untouched memory during ops 2-3.
    expect(grid.cells[0 * 8 + 4]).toBe(CELL.outside);
    expect(grid.cells[1 * 8 + 4]).toBe(CELL.untouched);
    // Row 1: A live over ops 0-1; free afterwards.
    expect(grid.cells[0 * 8 + 1]).toBe(liveCode(sizeClassOf(16384), LIVE_LEVELS - 1));
    expect(grid.cells[1 * 8 + 1]).toBe(CELL.free);
  });

  test("bad options are refused by name", () => {
    expect(() => gridScale([made], { maxRows: 0 })).toThrow(/maxRows must be a positive integer, got 0/);
    expect(() => gridScale([made], { maxColumns: 1.5 })).toThrow(/maxColumns must be a positive integer, got 1.5/);
    expect(() => gridScale([])).toThrow(/at least one recording/);
    expect(() => gridScale([made, { ...made, operations: 3 }])).toThrow(/same operations/);
  });
});

// ---- the picture ----------------------------------------------------------------------------

describe("renderHeapMap", () => {
  test("100 operations: one column per operation, the curves and grow steps match the replay", async () => {
    const trace = generateWorkload("realloc-churn", { ops: 100 });
    const { recording, memoryBytes } = await record(trace);
    const svg = renderHeapMap(recording);
    const { panels } = readSvg(svg);
    expect(panels).toHaveLength(1);
    const panel = panels[0]!;
    expect(panel.attrs).toMatchObject({ trace: trace.name, label: "free-list", operations: 100, columns: 100 });
    const replayed = replay(await freeListAllocator.instantiate(), trace);
    checkNumbers(panel, recording, { peakLiveBytes: replayed.peakLiveBytes, memoryBytes });
    // The runs read back are the grid's cells.
    expect(cellsOf(panel)).toEqual(Array.from(buildGrid(recording).cells));
    expect(svg.length).toBeLessThan(40_000);
  });

  test("1,000,000 operations stay within 256 × 160 cells and a small SVG", async () => {
    const trace = generateWorkload("transcoder", { ops: 1_000_000 });
    const { recording, memoryBytes } = await record(trace);
    const svg = renderHeapMap(recording);
    const panel = readSvg(svg).panels[0]!;
    expect(panel.attrs).toMatchObject({ operations: 1_000_000, columns: 256 });
    expect(panel.attrs.rows).toBeLessThanOrEqual(160);
    checkNumbers(panel, recording, { peakLiveBytes: recording.peakLiveBytes, memoryBytes });
    expect(svg.length).toBeLessThan(300_000);
    // Every cell is drawn at most once.
    const drawn = panel.runs.reduce((n, r) => n + r.length, 0);
    expect(drawn).toBeLessThanOrEqual(256 * (panel.attrs.rows as number));
    expect(cellsOf(panel)).toEqual(Array.from(buildGrid(recording).cells));
  }, 120_000);

  test("two compositions side by side share the address, time and bytes scales", async () => {
    const trace = generateWorkload("phase-change", { ops: 20_000 });
    const a = await record(trace, freeListAllocator, "free-list");
    const b = await record(trace, stackedAllocator, "size-classes > free-list");
    const { panels } = readSvg(renderHeapMap([a.recording, b.recording]));
    expect(panels.map((p) => p.attrs.label)).toEqual(["free-list", "size-classes > free-list"]);
    for (const key of ["address-low", "address-high", "row-bytes", "rows", "columns", "chart-max-bytes", "operations"]) {
      expect(panels[1]!.attrs[key], key).toBe(panels[0]!.attrs[key]);
    }
    expect(panels[0]!.attrs["address-high"]).toBe(Math.max(a.memoryBytes, b.memoryBytes));
    checkNumbers(panels[0]!, a.recording, { peakLiveBytes: a.recording.peakLiveBytes, memoryBytes: a.memoryBytes });
    checkNumbers(panels[1]!, b.recording, { peakLiveBytes: b.recording.peakLiveBytes, memoryBytes: b.memoryBytes });
    // Different allocators, different pictures.
    expect(cellsOf(panels[0]!)).not.toEqual(cellsOf(panels[1]!));
  });

  test("the HTML page wraps the same SVG with the cells' data for its tooltips", async () => {
    const { recording } = await record(generateWorkload("small-churn", { ops: 500 }));
    const html = renderHeapMapHtml(recording);
    expect(html).toContain(renderHeapMap(recording));
    const json = JSON.parse(/<script type="application\/json" id="heap-map-data">(.*?)<\/script>/s.exec(html)![1]!);
    const grid = buildGrid(recording);
    expect(json.panels[0].cells).toBe(Array.from(grid.cells, (c) => String.fromCharCode(48 + c)).join(""));
    expect(json.panels[0].opStart).toEqual(Array.from(grid.opStart));
    expect(json.names).toHaveLength(3 + SIZE_CLASSES.length * LIVE_LEVELS);
  });

  test("the page's tooltip names a cell's operations, addresses and contents", () => {
    const html = renderHeapMapHtml(made, { maxRows: 8 });
    const json = /<script type="application\/json" id="heap-map-data">(.*?)<\/script>/s.exec(html)![1]!;
    const script = /<script>(.*?)<\/script>/s.exec(html)![1]!;
    // The few DOM calls the script makes, on a heap plot at (100, 50), 640 × 300 pixels.
    const listeners = new Map<string, (e: { clientX: number; clientY: number }) => void>();
    const plot = {
      style: {},
      addEventListener: (type: string, f: (e: { clientX: number; clientY: number }) => void) => listeners.set(type, f),
      getBoundingClientRect: () => ({ left: 100, top: 50, width: 640, height: 300 }),
    };
    const tip = { textContent: "", style: {} as Record<string, string>, hidden: true };
    const document = {
      getElementById: (id: string) => (id === "tip" ? tip : { textContent: json }),
      querySelectorAll: () => [{ querySelector: (selector: string) => (selector === "rect.plot" ? plot : undefined) }],
    };
    new Function("document", script)(document);
    // Column 1 (operation 1) of 4, row 2 of 8 from the bottom: B, 100 bytes at 32832.
    listeners.get("mousemove")!({ clientX: 100 + 640 * (1.5 / 4), clientY: 50 + 300 * (5.5 / 8) });
    expect(tip.hidden).toBe(false);
    expect(tip.textContent).toBe("operations 1–1, addresses 32768–49151: live, mostly 65–256 B blocks, ≤ 1/4 live; live up to 16.1 KiB, memory 64.0 KiB");
    listeners.get("mousemove")!({ clientX: 100 + 640 * (3.5 / 4), clientY: 50 + 300 * (0.5 / 8) });
    expect(tip.textContent).toMatch(/^operations 3–3, addresses 114688–131071: never touched; /);
    listeners.get("mouseleave")!({ clientX: 0, clientY: 0 });
    expect(tip.hidden).toBe(true);
  });

  test("names are escaped", async () => {
    const trace = { ...generateWorkload("small-churn", { ops: 50 }), name: `a<b & "c"` };
    const { recording } = await record(trace, freeListAllocator, "x > y");
    const { panels } = readSvg(renderHeapMap(recording));
    expect(panels[0]!.attrs).toMatchObject({ trace: `a<b & "c"`, label: "x > y" });
  });
});

test("the package uses no Node APIs and imports nothing at run time but its own files (browsers load it as it is)", () => {
  const dir = import.meta.dirname;
  const sources = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
  expect(sources).toContain("index.ts");
  for (const file of sources) {
    const text = readFileSync(join(dir, file), "utf8");
    expect(text).not.toMatch(/["']node:|\bprocess\.|\bBuffer\b/);
    const imports = [...text.matchAll(/^import (type )?[\s\S]*? from "([^"]+)";$/gm)];
    for (const [, isType, from] of imports) expect(isType !== undefined || from!.startsWith("./"), `${file} imports ${from}`).toBe(true);
  }
});

describe("recorded traces", () => {
  const dir = sharedTracesDir();
  const files = dir ? readdirSync(dir).filter((f) => f.endsWith(".trace")) : [];
  test.skipIf(!dir).each(files)("%s: the map's numbers are the replay's", async (file) => {
    const trace = parseTrace(readFileSync(join(dir!, file), "utf8"), file);
    const { recording, memoryBytes } = await record(trace);
    const replayed = replay(await freeListAllocator.instantiate(), trace);
    const panel = readSvg(renderHeapMap(recording)).panels[0]!;
    checkNumbers(panel, recording, { peakLiveBytes: replayed.peakLiveBytes, memoryBytes });
  });

  test("the README's picture is small, and states the trace's peak", () => {
    const svg = readFileSync(join(import.meta.dirname, "..", "..", "..", "docs", "heap-map-dogfood.svg"), "utf8");
    expect(svg.length).toBeLessThan(200_000);
    const panels = readSvg(svg).panels;
    for (const panel of panels) expect(panel.attrs.trace).toMatch(/dogfood\.trace$/);
    expect(panels).toHaveLength(2);
    // Live bytes depend on the trace alone: 1,359,176 at the peak (the replay says so above).
    for (const panel of panels) expect(panel.attrs["peak-live-bytes"]).toBe(1_359_176);
  });
});
