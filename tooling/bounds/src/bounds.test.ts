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
  memoryViolations,
  N,
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
  // realloc-ping-pong, measured at b9b7e57: where the heap grows, by a replay of a `stats: true` build reading heapStats() before each
  // operation (the same at 320k and 1M ops); the peers by `pnpm --filter @alloc/bench growth --workloads realloc-ping-pong` (seed 1, 100k ops)
  "free-list | realloc-ping-pong | memory": "1.74x peak live 2.5 MiB at 20k and 80k ops (4.4 MiB; measured at 458c882, `src/measure.ts 20000 realloc-ping-pong`; 1.87x at 80k at b9b7e57, when best fit within a bin was push order): the heap grows only when a vector is realloc'd to 44-64 KiB while the free memory between the 64 vectors and the small blocks is cut into smaller cells (at b9b7e57 the last grow, op 63,416: 57 KiB asked, 2.1 MiB free in 120 cells, the largest 56 KiB); wasi-libc's dlmalloc needs 1.65x, Rust std's 2.2x",
  "size-classes > free-list | realloc-ping-pong | memory": "1.52x peak live 2.5 MiB at 20k ops (3.9 MiB), 1.62x at 80k (4.1 MiB): the vectors are large blocks of the free list below, which grows only when a vector is realloc'd to 57-64 KiB while its free memory is cut into smaller cells (the last grow, op 53,093: 61 KiB asked, 1.7 MiB free in 78 cells, the largest 60 KiB); wasi-libc's dlmalloc needs 1.65x",
  // phase-change, seed 1, since size-classes' small headers lost their padding: the heap ends 64 KiB above its old end, 40 KiB past the
  // bound, as the free list's cells between the 16-256 KiB buffers fall otherwise. Over seeds 1-12 the mean end memory fell (2,709 -> 2,683 KiB:
  // `measureWork` of size-classes > free-list on `generateWorkload("phase-change", { seed, ops: 80_000 })`, before and after).
  "size-classes > free-list | phase-change | memory": "1.68x peak live 1,680 KiB at 80k ops (2,816 KiB; the bound is 2,776 KiB; 2,752 KiB before small headers lost their padding): the last grow, op 54,526, is a 255 KiB buffer while the free list holds 1,048 KiB in 78 cells, the largest 251 KiB",
  // KNOWN_FAILURES_END
};

describe.each(COMPOSITIONS.map((c) => [c.name, c] as const))("%s", (_name, c) => {
  for (const w of WORKLOADS) {
    const workKey = `${c.name} | ${w.name} | work`;
    (KNOWN_FAILURES[workKey] ? test.fails : test)(`${w.name} (${w.kind}): the worst op's work stays under ${WORK_BOUND} and does not grow from ${N} to ${N * LONGER} ops`, () => {
      expect(workViolations(measurePair(c, w))).toEqual([]);
    });
    if (!memoryApplies(c, w.generate({ seed: 1, ops: N * LONGER }))) continue;
    const memoryKey = `${c.name} | ${w.name} | memory`;
    (KNOWN_FAILURES[memoryKey] ? test.fails : test)(`${w.name} (${w.kind}): memory ≤ 1.5 × peak live + ${ALLOWANCE / 1024} KiB, and flat from ${N} to ${N * LONGER} ops`, () => {
      expect(memoryViolations(measurePair(c, w))).toEqual([]);
    });
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
      if (memoryApplies(c, trace) && r.endMemoryBytes > MEMORY_FACTOR * r.peakLiveBytes + ALLOWANCE) {
        problems.push(`${trace.name}: memory ${r.endMemoryBytes} > ${MEMORY_FACTOR} × peak live ${r.peakLiveBytes} + ${ALLOWANCE}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("the bounds catch what they are for", () => {
  const result = (worst: number, memory: number, live: number): WorkResult => {
    const w = { count: 1, total: worst, mean: worst, worst, worstOp: 0 };
    return { trace: "t", unit: "", operations: 1, malloc: w, free: w, realloc: w, all: w, failedAllocations: 0, peakMemoryBytes: memory, endMemoryBytes: memory, peakLiveBytes: live, liveBytesAtEnd: 0 };
  };
  const pair = (short: WorkResult, long: WorkResult): Pair => ({ short, long, memoryApplies: true });

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
