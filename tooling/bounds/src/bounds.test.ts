import { buildAllocator, PAGE_SIZE, type Strategy } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { staticBackend } from "@alloc/page-backend-static";
import { sizeClasses } from "@alloc/size-classes";
import { sharedTracesDir } from "@alloc/test-utils";
import { measureWork, parseTrace, WORKLOADS, type Trace, type Workload, type WorkResult } from "@alloc/trace";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  ALLOWANCE,
  binaryOf,
  COMPOSITIONS,
  MEMORY_FACTOR,
  LONGER,
  measurePair,
  memoryApplies,
  memoryOver,
  memoryViolations,
  N,
  peakLive,
  referenceHeapOf,
  SEEDS,
  WORK_BOUND,
  workViolations,
  type Pair,
} from "./bounds.ts";

/**
 * Today's failures, `composition | workload | bound` → the cause. These run as `test.fails`, so
 * the suite stays green while the strategy rewrites land; when a fix makes one pass, its
 * `test.fails` fails ("expected to fail"): delete its line here and it is a plain test from then on.
 */
const KNOWN_FAILURES: Record<string, string> = {
  // KNOWN_FAILURES_BEGIN (measured at 88b1c7e: `KEYS=1 pnpm --filter @alloc/bounds measure` prints the keys that fail)
  // phase-change, seed 1, since size-classes' small headers lost their padding: the heap ends 64 KiB above its old end, 40 KiB past the
  // bound, as the free list's cells between the 16-256 KiB buffers fall otherwise. Over seeds 1-12 the mean end memory fell (2,709 -> 2,683 KiB:
  // `measureWork` of size-classes > free-list on `generateWorkload("phase-change", { seed, ops: 80_000 })`, before and after).
  // The cause (measured at 906f994 by walking the free list's cells at every growth): at that grow, the first 702 KiB of the heap hold
  // 115 spans (170 KiB) with 528 KiB free between them, no cell over 74 KiB, so no buffer fits there. 72 of them are empty spans kept as
  // their class's only span (108 KiB; 56 of classes of 500-1,028 bytes, which only the medium phase uses), 40 hold the 61 small blocks
  // carried from the last phase; with the free list alone that region is 196 KiB. Giving empty spans back (no kept span) ends seeds 1-12 at
  // 2,549 KiB on average (2,688 now, none over the bound) and halves realloc-churn's memory, but asks the parent for 1,700 to 6,100
  // more spans per 80,000 operations: 11-38 % more instructions per operation on phase-change, realloc-growth, realloc-doubling,
  // sawtooth and realloc-churn. Releasing only kept spans that stay idle needs a clock that ticks in the large phase (a step on every
  // call to the parent): +6 % instructions on large-blocks, +18 % on sawtooth. Left for a decision.
  "size-classes > free-list | phase-change | memory": "1.68x peak live 1,680 KiB at 80k ops (2,816 KiB; the bound is 2,776 KiB; 2,752 KiB before small headers lost their padding): the last grow, op 54,526, is a 255 KiB buffer while the free list holds 1,048 KiB in 78 cells, the largest 251 KiB",
  // Seeds 2 and 3 (since the suite runs SEEDS), measured at e7f2676 with `measureWork` at 20k, 80k, 320k and 1.28M ops:
  "free-list | bin-head-poison (seed 2) | memory": "not flat: 3,008 KiB at 20k ops, 3,712 KiB at 80k (live 2,882 -> 2,977 KiB); bounded after: 3,712 KiB at 320k, 4,224 KiB at 1.28M (1.32x live 3,212 KiB; dlmalloc's heap 3,200 KiB). The pattern puts more than the 8 cells find follows of just-too-small cells in front of the fitting ones in a request's bin (TLSF's known weakness; seed 4 the same, seed 1 reaches 4,224 KiB only at 1.28M ops)",
  "size-classes > free-list | big-among-small (seed 2) | memory": "1.72x peak live 1,412 KiB at 80k ops (2,432 KiB; dlmalloc's heap 2,048 KiB, 1.45x); the free list alone passes. Cause not measured (helper h2 found it; likely the spans kept by classes, as on phase-change above)",
  "size-classes > free-list | compiler (seed 3) | memory": "not flat: 9,600 KiB at 20k ops, 13,440 KiB at 80k (live 9,244 -> 9,899 KiB), 15,424 KiB at 1.28M (1.42x live 10,843 KiB) while the free list alone stays at 11,392 KiB (1.05x) and dlmalloc's heap at 10,880 KiB; at seed 1 size-classes creeps too, past 80k ops (11,456 KiB at 20k and 80k, 15,616 KiB at 1.28M for 10,950 KiB live). Cause not measured; likely h2's (spans kept by idle classes)",
  // KNOWN_FAILURES_END
};

describe.each(COMPOSITIONS.map((c) => [c.name, c] as const))("%s", (_name, c) => {
  for (const seed of SEEDS) {
    for (const w of WORKLOADS) {
      // (Seed 1's keys and names carry no seed.)
      const at = seed === 1 ? w.name : `${w.name} (seed ${seed})`;
      const workKey = `${c.name} | ${at} | work`;
      (KNOWN_FAILURES[workKey] ? test.fails : test)(`${at} (${w.kind}): the worst op's work stays under ${WORK_BOUND} and does not grow from ${N} to ${N * LONGER} ops`, () => {
        expect(workViolations(measurePair(c, w, N, seed))).toEqual([]);
      });
      if (!memoryApplies(c, w.generate({ seed, ops: N * LONGER }))) continue;
      const memoryKey = `${c.name} | ${at} | memory`;
      (KNOWN_FAILURES[memoryKey] ? test.fails : test)(`${at} (${w.kind}): memory ≤ 1.5 × peak live + ${ALLOWANCE / 1024} KiB, and flat from ${N} to ${N * LONGER} ops`, () => {
        expect(memoryViolations(measurePair(c, w, N, seed))).toEqual([]);
      });
    }
  }
});

/** The real programs' traces of ../shared/traces, when present (they join as they arrive). */
function recordedTraces(): Trace[] {
  const dir = sharedTracesDir();
  if (!dir) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".trace"))
    .sort()
    .map((f) => parseTrace(readFileSync(join(dir, f), "utf8"), f));
}

describe("recorded traces (../shared/traces): the same bounds, once through", () => {
  const traces = recordedTraces();
  test.skipIf(traces.length === 0).each(COMPOSITIONS.map((c) => [c.name, c] as const))("%s: the worst op under the work bound, and memory within bounds where they apply", (_name, c) => {
    const problems: string[] = [];
    for (const trace of traces) {
      const r = measureWork(binaryOf(c), trace, { maxMemoryBytes: 1 << 30 });
      if (r.all.worst > WORK_BOUND) problems.push(`${trace.name}: worst op ${r.all.worst} (op ${r.all.worstOp}) > ${WORK_BOUND}`);
      const over = memoryApplies(c, trace) ? memoryOver(r, referenceHeapOf(trace)) : undefined;
      if (over) problems.push(`${trace.name}: ${over}`);
    }
    expect(problems).toEqual([]);
  });
});

describe("the bounds catch what they are for", () => {
  const result = (worst: number, memory: number, live: number): WorkResult => {
    const w = { count: 1, total: worst, mean: worst, worst, worstOp: 0 };
    return { trace: "t", unit: "", operations: 1, malloc: w, free: w, realloc: w, all: w, failedAllocations: 0, peakMemoryBytes: memory, endMemoryBytes: memory, peakLiveBytes: live, liveBytesAtEnd: 0 };
  };
  const pair = (short: WorkResult, long: WorkResult, reference = { short: 0, long: 0 }): Pair => ({ short, long, memoryApplies: true, reference });

  test("a worst op that grows with the trace, or passes the bound, fails", () => {
    expect(workViolations(pair(result(10, 0, 0), result(20, 0, 0)))).toEqual([]);
    expect(workViolations(pair(result(10, 0, 0), result(40, 0, 0))).join("\n")).toMatch(/grows with the trace: 10 at 1 ops, 40/);
    expect(workViolations(pair(result(100, 0, 0), result(WORK_BOUND + 1, 0, 0))).join("\n")).toMatch(/does 129 > 128/);
  });

  test("a first fit's walks break the work bound on real runs (the bound is not vacuous)", () => {
    const firstFit = { name: "free-list(first fit)", stack: () => [freeList({ fit: "first" })], memory: "all" as const };
    const broken = (["small-churn", "fragmentation", "compiler", "phase-change", "realloc-doubling"] as const).filter(
      (name) => workViolations(measurePair(firstFit, WORKLOADS.find((w) => w.name === name) as Workload)).length > 0,
    );
    expect(broken.length).toBeGreaterThanOrEqual(3);
  });

  test("memory above 1.5 × live + the allowance, or climbing, fails", () => {
    const MiB = 2 ** 20;
    expect(memoryViolations(pair(result(1, 10 * MiB, 8 * MiB), result(1, 10 * MiB, 8 * MiB)))).toEqual([]);
    expect(memoryViolations(pair(result(1, 20 * MiB, 8 * MiB), result(1, 20 * MiB, 8 * MiB))).join("\n")).toMatch(/memory 20480 KiB > 1.5 × peak live 8192 KiB/);
    expect(memoryViolations(pair(result(1, 10 * MiB, 8 * MiB), result(1, 12 * MiB, 8 * MiB))).join("\n")).toMatch(/not flat/);
  });

  test("memory that grows with the live bytes is flat; beyond them it is not", () => {
    const MiB = 2 ** 20;
    // Live 8 -> 10 MiB (×1.25): 10 MiB of memory may become 1.1 × 1.25 × 10 MiB + 256 KiB.
    expect(memoryViolations(pair(result(1, 10 * MiB, 8 * MiB), result(1, 13.5 * MiB, 10 * MiB)))).toEqual([]);
    expect(memoryViolations(pair(result(1, 10 * MiB, 8 * MiB), result(1, 14.2 * MiB, 10 * MiB))).join("\n")).toMatch(/not flat: .*live bytes ×1\.25/);
    // Live bytes that fall give no room: 1.1 × 10 MiB + 256 KiB is the bound still.
    expect(memoryViolations(pair(result(1, 10 * MiB, 8 * MiB), result(1, 11.2 * MiB, 7.9 * MiB)))).toEqual([]);
    expect(memoryViolations(pair(result(1, 10 * MiB, 8 * MiB), result(1, 11.4 * MiB, 7.9 * MiB))).join("\n")).toMatch(/not flat: memory 10240 KiB at 1 ops, 11674 KiB at 1 \(> 1\.1× \+ 256 KiB\)/);
  });

  test("where dlmalloc itself needs more than 1.5 × live, up to 1.2 × dlmalloc's heap passes, and no more", () => {
    const MiB = 2 ** 20;
    const run = result(1, 15 * MiB, 8 * MiB); // 1.875x live: over 1.5 x 8 MiB + 256 KiB
    expect(memoryViolations(pair(run, run)).join("\n")).toMatch(/needs 0 KiB: at most 1.5× live/);
    // dlmalloc needs 13 MiB (1.625x live): 15 MiB is within 1.2 x 13 = 15.6 MiB.
    expect(memoryViolations(pair(run, run, { short: 13 * MiB, long: 13 * MiB }))).toEqual([]);
    // dlmalloc needs 12 MiB (1.5x live, not more): the 1.5x bound stands.
    expect(memoryViolations(pair(run, run, { short: 12 * MiB, long: 12 * MiB })).length).toBe(2);
    // dlmalloc needs 12.4 MiB: 15 MiB is over 1.2 x 12.4 = 14.88 MiB.
    expect(memoryViolations(pair(run, run, { short: 12.4 * MiB, long: 12.4 * MiB })).join("\n")).toMatch(/and > 1.2 × wasi-libc dlmalloc's 12698 KiB/);
  });

  test("the reference is wasi-libc's dlmalloc, replayed: it needs more than 1.5 × live on realloc-ping-pong", () => {
    const w = WORKLOADS.find((w) => w.name === "realloc-ping-pong")!;
    const trace = w.generate({ seed: 1, ops: N });
    expect(referenceHeapOf(trace)).toBeGreaterThan(MEMORY_FACTOR * peakLive(trace));
    expect(referenceHeapOf(trace)).toBeLessThan(2 * peakLive(trace));
  });

  test("bump, which reuses nothing, breaks the memory bounds on a real run (the bounds are not vacuous)", () => {
    const bump = COMPOSITIONS.find((c) => c.name === "bump")!;
    const run = measurePair(bump, WORKLOADS.find((w) => w.name === "transcoder")!);
    expect(memoryViolations({ ...run, memoryApplies: true }).length).toBeGreaterThan(0);
  });
});

describe("satisfiable requests are served", () => {
  // Issue 10: a static region of 4 pages; malloc(100000) then malloc(150000) returned 0 with
  // 162,112 free bytes at the region's end.
  const stacks: [string, () => Strategy[], string | undefined][] = [
    ["free-list", () => [freeList()], KNOWN_FAILURES["free-list | static region | satisfiable"]],
    ["size-classes > free-list", () => [sizeClasses(), freeList()], KNOWN_FAILURES["size-classes > free-list | static region | satisfiable"]],
  ];
  for (const [name, stack, known] of stacks) {
    (known ? test.fails : test)(`${name} over a static region of 4 pages: malloc(100000) then malloc(150000) both succeed`, async () => {
      const heap = await buildAllocator({ strategy: stack(), backend: staticBackend({ start: PAGE_SIZE, size: 4 * PAGE_SIZE }), exports: ["malloc", "free"] }).instantiate();
      const a = heap.malloc(100_000);
      expect(a).not.toBe(0);
      expect(heap.malloc(150_000)).not.toBe(0);
    });
  }
});
