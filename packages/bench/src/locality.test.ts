import { replay, TraceBuilder } from "@alloc/trace";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { recordHeap } from "@alloc/heap-map";
import { describe, expect, test } from "vitest";
import { allocatorModule, freshHeap, locality, LOCALITY_WINDOW, placements, programTrace, replayTimes, traceLocality, traceWork } from "./locality.ts";
import { optimizeForSpeed, PROGRAMS, PROGRAMS_DIR } from "./programs.ts";

describe("locality of successive allocations", () => {
  test("a hand-made address sequence gives the known shares", () => {
    // Pairs: +16 near, +256 near (the window's edge), +257 far, -529 below, 0 same, +1 near, -1 below, +4096 far.
    const addresses = [1000, 1016, 1272, 1529, 1000, 1000, 1001, 1000, 5096];
    expect(locality(addresses)).toEqual({ pairs: 8, nearAfter: 3 / 8, below: 2 / 8 });
    // A narrower window: only +16 and +1 are near.
    expect(locality(addresses, 16)).toEqual({ pairs: 8, nearAfter: 2 / 8, below: 2 / 8 });
    expect(LOCALITY_WINDOW).toBe(256);
    // Fewer than two allocations: no pairs, no shares.
    expect(locality([64])).toEqual({ pairs: 0, nearAfter: NaN, below: NaN });
    expect(() => locality(addresses, 0)).toThrow(RangeError);
  });

  test("placements: allocs and moved reallocs count, frees, in-place reallocs and failures do not", () => {
    const t = new TraceBuilder();
    const a = t.alloc(32);
    const b = t.alloc(32);
    t.alloc(32); // stays live above b
    t.free(a);
    t.realloc(b, 16); // shrinks in place
    t.realloc(b, 100_000); // cannot grow into the live block above: moves
    t.alloc(2 ** 32 - 1); // fails
    t.alloc(48);
    const recording = recordHeap(freshHeap("free-list"), t.build("hand-made"));
    expect(recording.address[4]).toBe(recording.address[1]); // in place: not a placement
    expect(recording.address[5]).not.toBe(recording.address[1]);
    expect(recording.failedAllocations).toBe(1);
    expect([...placements(recording)]).toEqual([0, 1, 2, 5, 7].map((i) => recording.address[i]));
  });

  test("bump places every allocation above the one before: nothing below, on a real program's trace", async () => {
    const trace = await programTrace(PROGRAMS.find((p) => p.name === "json")!, ["1", "20"]);
    expect(trace.allocations).toBeGreaterThan(1_000);
    const bump = traceLocality(trace, "bump");
    expect(bump.below).toBe(0);
    expect(bump.pairs).toBeGreaterThan(1_000);
    // dlmalloc, the programs' own allocator, replayed from the same trace.
    const dlmalloc = traceLocality(trace, "dlmalloc");
    expect(dlmalloc.pairs).toBeGreaterThan(1_000);
    expect(dlmalloc.nearAfter).toBeGreaterThan(0.5);
    expect(() => freshHeap("no-such")).toThrow(/unknown allocator/);
  }, 300_000);
});

describe("the same trace replayed inside Wasm, and the work per call", () => {
  test("replayTimes gives a median per allocator; traceWork counts each allocator's calls on the trace", () => {
    const t = new TraceBuilder();
    for (let i = 0; i < 200; i++) t.alloc(16 + (i % 5) * 8);
    for (let i = 0; i < 200; i += 2) t.free(i);
    const trace = t.build("hand-made");
    const times = replayTimes(trace, ["dlmalloc", "bump"], 3);
    expect([...times.keys()]).toEqual(["dlmalloc", "bump"]);
    for (const ms of times.values()) expect(ms).toBeGreaterThan(0);
    // bump: a malloc is a few steps, a free of a block that is not the latest does nothing.
    const bump = traceWork(trace, "bump");
    const dlmalloc = traceWork(trace, "dlmalloc");
    expect(bump.malloc).toBeLessThan(dlmalloc.malloc);
    expect(bump.free).toBeGreaterThanOrEqual(1);
  });

  test("dlmalloc is replayed as the programs run it: programs/dlmalloc.wasm through the baseline's speed optimiser, verified on a trace", () => {
    const raw = new Uint8Array(readFileSync(join(PROGRAMS_DIR, "dlmalloc.wasm")));
    const { binary } = allocatorModule("dlmalloc");
    expect(binary).toEqual(optimizeForSpeed(raw));
    expect(binary).not.toEqual(raw);
    // Blocks of mixed sizes, half freed, then reused: the optimised module still behaves.
    const t = new TraceBuilder();
    for (let i = 0; i < 300; i++) t.alloc(8 + (i % 7) * 24);
    for (let i = 0; i < 300; i += 2) t.free(i);
    for (let i = 0; i < 100; i++) t.alloc(40);
    for (let i = 1; i < 300; i += 2) t.realloc(i, 200);
    const result = replay(freshHeap("dlmalloc"), t.build("mixed"), { verify: true, align: 16 });
    expect(result.failedAllocations).toBe(0);
    expect(result.operations).toBe(300 + 150 + 100 + 150);
  });
});
