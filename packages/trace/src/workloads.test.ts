import { describe, expect, test } from "vitest";
import { generateWorkload, WORKLOADS, type Trace } from "./index.ts";

/** Replays a trace in JS: which allocations are live, and how many bytes at most. */
function simulate(trace: Trace): { peakLive: number; reallocs: number; maxSize: number } {
  const live = new Map<number, number>();
  let bytes = 0, peakLive = 0, reallocs = 0, maxSize = 0;
  for (const op of trace.ops) {
    if (op.op === "free") {
      bytes -= live.get(op.index) ?? 0;
      live.delete(op.index);
      continue;
    }
    if (op.op === "realloc") reallocs++;
    bytes += op.size - (live.get(op.index) ?? 0);
    live.set(op.index, op.size);
    peakLive = Math.max(peakLive, bytes);
    maxSize = Math.max(maxSize, op.size);
  }
  return { peakLive, reallocs, maxSize };
}

describe("workloads", () => {
  test.each(WORKLOADS.map((w) => [w.name]))("%s: the same seed gives the same trace, another seed another", (name) => {
    const a = generateWorkload(name, { seed: 7, ops: 3_000 });
    expect(generateWorkload(name, { seed: 7, ops: 3_000 })).toEqual(a);
    // The staircase and class stranding are exact sequences from issue 10: the seed changes nothing.
    if (name === "staircase" || name === "class-stranding") expect(generateWorkload(name, { seed: 8, ops: 3_000 }).ops).toEqual(a.ops);
    else expect(generateWorkload(name, { seed: 8, ops: 3_000 }).ops).not.toEqual(a.ops);
    expect(a.name).toBe(`${name}(seed 7)`);
    expect(a.ops.length).toBeGreaterThanOrEqual(3_000);
    expect(a.ops.length).toBeLessThan(3_000 + 2_100);
  });

  const sim = (name: Parameters<typeof generateWorkload>[0]) => simulate(generateWorkload(name, { ops: 20_000 }));

  test("each workload has the shape its description promises", () => {
    expect(sim("small-churn").maxSize).toBeLessThanOrEqual(256);
    const growth = sim("realloc-growth");
    expect(growth.reallocs).toBeGreaterThan(100);
    expect(growth.maxSize).toBe(256 * 1024);
    expect(sim("large-blocks").maxSize).toBeGreaterThan(256 * 1024);
    expect(sim("long-lived").peakLive).toBeGreaterThan(100_000);
  });

  test("the new shapes and patterns have the shapes their descriptions promise", () => {
    const trace = (name: Parameters<typeof generateWorkload>[0], ops = 20_000) => generateWorkload(name, { ops });
    const sizes = (t: Trace) => t.ops.flatMap((op) => (op.op === "alloc" ? [op.size] : [])).sort((a, b) => a - b);
    const share = (xs: number[], lo: number, hi: number) => xs.filter((x) => x >= lo && x <= hi).length / xs.length;

    const compiler = sizes(trace("compiler", 22_000));
    expect(compiler.length).toBe(11_000);
    expect(compiler[compiler.length >> 1]).toBeGreaterThanOrEqual(35);
    expect(compiler[compiler.length >> 1]).toBeLessThanOrEqual(60);
    expect(share(compiler, 1024, 8192)).toBeCloseTo(0.18, 1);
    expect(compiler.filter((s) => s >= 1 << 20)).toHaveLength(4);
    expect(sim("compiler").peakLive).toBeGreaterThan(8e6);
    expect(sim("compiler").peakLive).toBeLessThan(13e6);

    const transcoder = sizes(trace("transcoder"));
    expect(share(transcoder, 1, 150)).toBeGreaterThan(0.94);
    expect(share(transcoder, 1024, 70 * 1024)).toBeCloseTo(0.04, 1);

    expect(sizes(trace("source-map")).filter((s) => s === 144).length).toBeGreaterThan(4_000);
    expect(sim("source-map").maxSize).toBe(1_468_006);
    expect(new Set(sizes(trace("interpreter")))).toEqual(new Set([16, 24, 40, 64]));
    expect(sim("realloc-churn").reallocs).toBeGreaterThan(2_000);

    const doubling = simulate(trace("realloc-doubling", 80_000));
    expect(doubling.maxSize).toBeLessThanOrEqual(79 * 4096);
    expect(doubling.maxSize).toBeGreaterThan(300 * 1024);
    expect(doubling.peakLive).toBeGreaterThan(20 * 2 ** 20);
    expect(doubling.peakLive).toBeLessThan(1.2 * sim("realloc-doubling").peakLive);

    const stairs = trace("staircase", 1_200).ops;
    expect(stairs.slice(0, 3)).toEqual([{ op: "alloc", index: 0, size: 24 * 1024 + 1 }, { op: "alloc", index: 1, size: 16 }, { op: "free", index: 0 }]);
    expect(stairs.at(-3)).toEqual({ op: "alloc", index: 798, size: 24 * 1024 * 400 + 1 });
    expect(sim("class-stranding").peakLive).toBe(256 * 1024);
    const holes = sizes(trace("large-holes"));
    expect(holes[0]).toBeGreaterThan(1024);
    expect(holes.at(-1)).toBeLessThanOrEqual(16 * 1024);
  });

  describe("the seven adversarial patterns of issue 10, item 4, have their defining shapes", () => {
    const trace = (name: Parameters<typeof generateWorkload>[0], ops = 20_000) => generateWorkload(name, { ops });
    const allocs = (t: Trace) => t.ops.flatMap((op) => (op.op === "alloc" ? [op.size] : []));
    /** The number of live blocks after each operation. */
    const liveCounts = (t: Trace) => {
      const live = new Set<number>();
      return t.ops.map((op) => (op.op === "alloc" ? live.add(op.index) : op.op === "free" && live.delete(op.index), live.size));
    };
    /** After the first 10 000 operations, the live blocks stay strictly between `fewest` and `most`. */
    const expectSettledLive = (t: Trace, fewest: number, most: number) => {
      const counts = liveCounts(t).slice(10_000);
      expect(Math.min(...counts)).toBeGreaterThan(fewest);
      expect(Math.max(...counts)).toBeLessThan(most);
    };

    test("bin-boundary: 990-1 030 B on both sides of 1 KiB, about 2 000 live", () => {
      const t = trace("bin-boundary", 80_000);
      const sizes = allocs(t);
      expect(Math.min(...sizes)).toBe(990);
      expect(Math.max(...sizes)).toBe(1_030);
      expect(sizes.filter((s) => s > 1024).length / sizes.length).toBeCloseTo(6 / 41, 1);
      expectSettledLive(t, 1_800, 2_200);
    });

    test("bin-head-poison: rounds of 100 too-small free blocks at both ends of their bin, 100 fitting ones between, then 100 requests", () => {
      const t = trace("bin-head-poison");
      const counts = liveCounts(t);
      const sizeOf = new Map<number, number>();
      for (let round = 0; round < 20; round++) {
        const ops = t.ops.slice(round * 1_000, round * 1_000 + 1_000);
        const [allocated, freed, requests, end] = [ops.slice(0, 400), ops.slice(400, 600), ops.slice(600, 700), ops.slice(700)];
        for (const op of allocated) if (op.op === "alloc") sizeOf.set(op.index, op.size);
        const small = sizeOf.get(allocated[0]!.index)!;
        const fitting = small + Math.max(16, small >> 6);
        expect(small).toBeGreaterThanOrEqual(1024);
        expect(small).toBeLessThanOrEqual(8192);
        // A block, its keeper of the small size, in turn small and fitting.
        expect(allocated.map((op) => op.op === "alloc" && op.size)).toEqual(Array.from({ length: 400 }, (_, i) => (i % 4 === 2 ? fitting : small)));
        // 50 too-small ones freed first and 50 last, the fitting ones between; the keepers stay.
        const freedSizes = freed.map((op) => (op.op === "free" ? sizeOf.get(op.index) : -1));
        expect(freedSizes).toEqual([...Array(50).fill(small), ...Array(100).fill(fitting), ...Array(50).fill(small)]);
        expect(new Set(freed.map((op) => op.index % 2))).toEqual(new Set([allocated[0]!.index % 2]));
        for (const op of requests) {
          expect(op.op).toBe("alloc");
          if (op.op !== "alloc") continue;
          expect(op.size).toBeGreaterThan(small);
          expect(op.size).toBeLessThanOrEqual(fitting);
        }
        expect(new Set(end.map((op) => op.op))).toEqual(new Set(["free"]));
        expect(counts[round * 1_000 + 999]).toBe(0);
      }
    });

    test("log-uniform: as many requests under 1 KiB as over, 16 B to 64 KiB, about 1 500 live", () => {
      const t = trace("log-uniform", 80_000);
      const sizes = allocs(t);
      expect(Math.min(...sizes)).toBe(16);
      expect(Math.max(...sizes)).toBeGreaterThan(60 * 1024);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(64 * 1024);
      expect(sizes.filter((s) => s < 1024).length / sizes.length).toBeCloseTo(0.5, 1);
      expect(sizes.filter((s) => s < 128).length / sizes.length).toBeCloseTo(0.25, 1);
      expectSettledLive(t, 1_300, 1_700);
    });

    test("sawtooth: teeth from 16 B to 20 KB, every other block freed at 400 live", () => {
      const t = trace("sawtooth");
      const sizes = allocs(t);
      const teeth = sizes.filter((s, i) => i > 0 && s < sizes[i - 1]!);
      expect(new Set(teeth)).toEqual(new Set([16]));
      expect(teeth.length).toBeGreaterThan(50);
      for (let i = 1; i < sizes.length; i++) if (sizes[i] !== 16) expect(sizes[i]! / sizes[i - 1]!).toBeGreaterThan(1.03);
      expect(Math.max(...sizes)).toBeGreaterThan(20_000);
      expect(Math.max(...sizes)).toBeLessThan(22_000);
      const counts = liveCounts(t);
      expect(Math.max(...counts)).toBe(400);
      // A halving frees the live blocks 0, 2, 4... in allocation order, and 200 remain.
      const afterHalving = counts.filter((_, i) => t.ops[i]!.op === "free" && t.ops[i + 1]?.op === "alloc");
      expect(afterHalving.length).toBeGreaterThan(40);
      expect(new Set(afterHalving)).toEqual(new Set([200]));
    });

    test("realloc-ping-pong: 64 vectors realloc'd to 16 B-64 KiB, shrinking as often as growing, among 500 small blocks", () => {
      const ops = trace("realloc-ping-pong").ops;
      const size = new Map<number, number>();
      let grows = 0, shrinks = 0;
      for (const op of ops) {
        if (op.op === "alloc") size.set(op.index, op.size);
        if (op.op !== "realloc") continue;
        expect(op.size).toBeGreaterThanOrEqual(16);
        expect(op.size).toBeLessThanOrEqual(64 * 1024);
        if (op.size > size.get(op.index)!) grows++;
        else shrinks++;
        size.set(op.index, op.size);
      }
      expect(new Set(ops.flatMap((op) => (op.op === "realloc" ? [op.index] : []))).size).toBe(64);
      expect(shrinks / (grows + shrinks)).toBeGreaterThan(0.4);
      expect(grows + shrinks).toBeGreaterThan(6_000);
      expect(Math.max(...liveCounts(trace("realloc-ping-pong")))).toBe(64 + 501);
    });

    test("random-lifetimes: 90 % small, 80 % short-lived, 20 % long-lived, and flat live bytes from the start", () => {
      const t = trace("random-lifetimes", 80_000);
      const sizes = allocs(t);
      expect(sizes.filter((s) => s <= 256).length / sizes.length).toBeCloseTo(0.9, 1);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(32 * 1024);
      // Lifetimes in steps (one allocation a step) of the blocks born after the first free, when
      // the warm-up (the long-lived blocks of the 20 000 steps before the first) is over.
      const firstFree = t.ops.findIndex((op) => op.op === "free");
      const counts = liveCounts(t);
      const warm = counts[firstFree - 1]!;
      const born = new Map<number, number>(), lifetime = new Map<number, number>();
      let allocations = 0;
      for (const op of t.ops) {
        if (op.op === "alloc") born.set(op.index, allocations++);
        else if (op.op === "free" && born.get(op.index)! > firstFree) lifetime.set(op.index, allocations - 1 - born.get(op.index)!);
      }
      // Every block born more than 20 000 steps before the end is freed, 80 % after 1-50 steps.
      const settled = [...born].filter(([, b]) => b > firstFree && b < allocations - 20_001).map(([k]) => lifetime.get(k) ?? -1);
      const short = settled.filter((l) => l >= 1 && l <= 50).length;
      const long = settled.filter((l) => l >= 1_000 && l <= 20_000).length;
      expect(short + long).toBe(settled.length);
      expect(short / settled.length).toBeCloseTo(0.8, 1);
      expect(settled.length).toBeGreaterThan(15_000);
      expect(warm).toBeGreaterThan(1_900);
      expect(warm).toBeLessThan(2_300);
      expect(Math.min(...counts.slice(firstFree))).toBeGreaterThan(0.9 * warm);
      expect(Math.max(...counts)).toBeLessThan(1.15 * warm);
      expect(simulate(t).peakLive).toBeLessThan(1.15 * simulate(trace("random-lifetimes", 3_000)).peakLive);
    });

    test("big-among-small: a 200-600 KB buffer replaced every 500 steps among 3 000 small blocks", () => {
      const ops = trace("big-among-small").ops;
      const big = ops.flatMap((op, i) => (op.op === "alloc" && op.size > 200 ? [{ i, op }] : []));
      for (const { op } of big) {
        expect(op.size).toBeGreaterThanOrEqual(200_000);
        expect(op.size).toBeLessThanOrEqual(600_000);
      }
      const small = allocs(trace("big-among-small")).filter((s) => s <= 200);
      expect(Math.min(...small)).toBe(16);
      expect(Math.abs(big.length - small.length / 500)).toBeLessThanOrEqual(1);
      // Each new buffer comes before the old one is freed.
      for (let j = 1; j < big.length; j++) expect(ops[big[j]!.i + 1]).toEqual({ op: "free", index: big[j - 1]!.op.index });
      expect(Math.max(...liveCounts(trace("big-among-small")))).toBe(3_002);
    });
  });

  test("every workload is a shape or an adversarial pattern, and its live bytes stay bounded when run 4 times longer", () => {
    for (const w of WORKLOADS) {
      expect(["shape", "adversarial"]).toContain(w.kind);
      const n = simulate(w.generate({ ops: 20_000 })).peakLive;
      const long = simulate(w.generate({ ops: 80_000 })).peakLive;
      expect(long, w.name).toBeLessThanOrEqual(1.5 * n);
    }
    expect(WORKLOADS.filter((w) => w.kind === "adversarial").map((w) => w.name)).toEqual([
      "fragmentation",
      "realloc-doubling",
      "staircase",
      "class-stranding",
      "large-holes",
      "bin-boundary",
      "bin-head-poison",
      "log-uniform",
      "sawtooth",
      "realloc-ping-pong",
      "random-lifetimes",
      "big-among-small",
    ]);
  });

  test("an unknown workload or a bad length is refused", () => {
    expect(() => generateWorkload("nope" as never)).toThrow(/unknown workload "nope" \(known: small-churn/);
    expect(() => generateWorkload("small-churn", { ops: 0 })).toThrow(/positive integer/);
  });
});
