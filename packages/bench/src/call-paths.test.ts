import { parseTrace } from "@alloc/trace";
import { describe, expect, test } from "vitest";
import { formatPaths, measurePaths } from "./call-paths.ts";
import { contenders } from "./contenders.ts";

describe("paths: instructions per call on the reused-heap replay", () => {
  const [freeList] = contenders(["free-list"]).contenders;
  // 64 blocks of 100 bytes, then every other one freed and 32 of 100 bytes again: on the counted
  // pass (after every live block was freed) the first 64 come from the top, the frees of every
  // other one have no free neighbour, and the last 32 are hits in their bin, newest first.
  const lines = [
    ...Array.from({ length: 64 }, () => "Alloc(100),"),
    ...Array.from({ length: 32 }, (_, i) => `Free(${2 * i}),`),
    ...Array.from({ length: 32 }, () => "Alloc(100),"),
  ];
  const trace = parseTrace(lines.join("\n"), "every-other");
  const cell = measurePaths(freeList!, trace);

  test("every call of the counted pass is counted once, by kind", () => {
    expect(cell.kinds.map((k) => [k.kind, k.count])).toEqual([
      ["malloc", 96],
      ["free", 32],
    ]);
    expect(cell.paths.reduce((s, p) => s + p.count, 0)).toBe(128);
    for (const k of cell.kinds) {
      const paths = cell.paths.filter((p) => p.kind === k.kind);
      expect(paths.reduce((s, p) => s + p.instructions * p.count, 0) / k.count).toBeCloseTo(k.mean, 9);
    }
  });

  test("the same path costs the same: the paths come in the shares the trace gives them", () => {
    // Allocations from the top (the first too: the heap is empty and whole) share one count; the
    // frees with no free neighbour, and the exact hits, one count each but for the first block of
    // the region (its own prev), freed first and taken last.
    expect(cell.paths.slice(0, 3).map((p) => [p.kind, p.count])).toEqual([
      ["malloc", 64],
      ["free", 31],
      ["malloc", 31],
    ]);
    expect(cell.paths.length).toBe(5);
    const [top, , hit] = cell.paths;
    expect(hit!.instructions).toBeLessThan(top!.instructions);
  });

  test("the text names each contender and its most frequent paths", () => {
    const text = formatPaths([cell], 2);
    expect(text).toContain("## every-other");
    expect(text).toMatch(/free-list: malloc 96 x [\d.]+, free 32 x [\d.]+/);
    expect(text).toMatch(/paths: malloc \d+ \(50\.0 %\), free \d+ \(24\.2 %\)$/m);
  });
});
