/**
 * The trace replays on 64-bit builds: every stack of the registry that can run a workload, built
 * with `memory64: true`, replays the recorded traces (when present) and every seeded workload
 * inside Wasm with the 64-bit driver, every block tagged and checked, and reports the same live bytes as its wasm32
 * build. A broken 64-bit allocator is caught the same way (the driver's 16-byte slots included).
 */
import { buildAllocator } from "@alloc/core";
import { STRATEGIES } from "@alloc/cli";
import { sharedTracesDir } from "@alloc/test-utils";
import { generateWorkload, parseTrace, replay, ReplayError, WORKLOADS, type Trace } from "@alloc/trace";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { NEVER_ALLOCATES, stacks } from "./compositions.ts";

/** Operations per generated workload: enough to grow, reuse and shrink the heap. */
const OPS = 4_000;

function traces(): Trace[] {
  const dir = sharedTracesDir();
  const recorded = dir
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".trace"))
        .map((f) => parseTrace(readFileSync(join(dir, f), "utf8"), f))
    : [];
  return [...recorded, ...WORKLOADS.map((w) => generateWorkload(w.name, { ops: OPS }))];
}

/**
 * Stacks that can run a workload: not fail (it never allocates), nor page (a fresh page for every
 * block, never reused: thousands of live blocks take gigabytes).
 */
const replayable = stacks().filter((s) => !s.some((n) => n === "page" || NEVER_ALLOCATES.has(n)));

describe.each(replayable.map((s) => s.join(" > ")))("%s, memory64", (name) => {
  const stack = name.split(" > ");
  const build = (memory64: boolean) =>
    buildAllocator({ strategy: stack.map((n) => STRATEGIES[n]!.create()), exports: ["malloc", "free", "realloc"], memory64 });
  const wide = build(true);
  const narrow = build(false);

  // Bump alone never reuses memory: the staircase takes it to 4 GiB (on wasm32 too), for minutes.
  const cases = traces().filter((t) => name !== "bump" || !t.name.startsWith("staircase"));
  test.each(cases.map((t) => [t.name, t] as const))("%s replays, verified, as on wasm32", async (_name, trace) => {
    const heap = await wide.instantiate();
    expect(heap.memory64).toBe(true);
    const result = replay(heap, trace);
    const reference = replay(await narrow.instantiate(), trace);
    expect(result).toMatchObject({ verified: true, failedAllocations: reference.failedAllocations });
    expect(result.peakLiveBytes).toBe(reference.peakLiveBytes);
    expect(result.liveBytesAtEnd).toBe(reference.liveBytesAtEnd);
  });
});

describe("the 64-bit driver catches a broken allocator", () => {
  /**
   * A 64-bit "allocator" in JS: it hands out 64-byte aligned blocks upwards, but the trace's
   * second block is its first one again (the first two calls are the driver's data).
   */
  function twice() {
    const memory = new WebAssembly.Memory({ initial: 4, index: "i64" } as WebAssembly.MemoryDescriptor);
    let next = 1024n, last = 0n, calls = 0;
    const malloc = (size: bigint) => {
      if (++calls === 4) return last;
      last = next;
      next += (size + 63n) & ~63n;
      return last;
    };
    const exports = { malloc, free: () => {}, realloc: () => 0n };
    return { instance: { exports } as unknown as WebAssembly.Instance, memory, memory64: true };
  }

  test("two live blocks that overlap are reported with the culprit", () => {
    const trace = parseTrace("Alloc(64),\nAlloc(64),\nAlloc(64),\nFree(0),\n", "overlap.trace");
    let error: unknown;
    try {
      replay(twice(), trace);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ReplayError);
    expect((error as Error).message).toMatch(
      /^overlap\.trace:4: Free\(0\): allocation 0 \(block \d+, 64 bytes\) was overwritten at byte \+0 .*; it overlaps allocation 1 \(block \d+, 64 bytes from overlap\.trace:2: Alloc\(64\)\)/,
    );
  });
});
