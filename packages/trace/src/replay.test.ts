import { bump } from "@alloc/bump";
import { buildAllocator } from "@alloc/core";
import { sharedTracesDir } from "@alloc/test-utils";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { createReplayer, generateWorkload, parseTrace, replay, ReplayError, WORKLOADS, type Trace } from "./index.ts";

const bumpAllocator = buildAllocator({ strategy: bump(), exports: ["malloc", "free", "realloc"] });

/** What a correct replay must report, computed in JS. */
function expected(trace: Trace): { peakLive: number; liveAtEnd: number } {
  const live = new Map<number, number>();
  let bytes = 0, peakLive = 0;
  for (const op of trace.ops) {
    const old = live.get(op.index) ?? 0;
    if (op.op === "free" || (op.op === "realloc" && op.size === 0)) {
      bytes -= old;
      live.delete(op.index);
    } else {
      bytes += op.size - (op.op === "realloc" ? old : 0);
      live.set(op.index, op.size);
    }
    peakLive = Math.max(peakLive, bytes);
  }
  return { peakLive, liveAtEnd: bytes };
}

describe("replay against bump", () => {
  const traces = sharedTracesDir();
  const files = traces ? readdirSync(traces).filter((f) => f.endsWith(".trace")) : [];

  test.skipIf(!traces).each(files)("the recorded trace %s replays, verified", async (file) => {
    const trace = parseTrace(readFileSync(join(traces!, file), "utf8"), file);
    const result = replay(await bumpAllocator.instantiate(), trace);
    expect(result).toMatchObject({ trace: file, operations: trace.ops.length, failedAllocations: 0, verified: true });
    expect(result.peakLiveBytes).toBe(expected(trace).peakLive);
    expect(result.liveBytesAtEnd).toBe(expected(trace).liveAtEnd);
    expect(result.peakMemoryBytes).toBeGreaterThanOrEqual(result.peakLiveBytes + result.driverBytes);
  });

  test.each(WORKLOADS.map((w) => [w.name]))("the workload %s replays, verified and fast", async (name) => {
    // bump never reuses a block that is not the latest: the workloads of large blocks grow its
    // memory by their whole volume (staircase: 1.9 GiB at 3,000 operations), so they run shorter.
    const trace = generateWorkload(name, { ops: ["large-blocks", "staircase", "realloc-doubling", "large-holes"].includes(name) ? 300 : 3_000 });
    const verified = replay(await bumpAllocator.instantiate(), trace);
    const fast = replay(await bumpAllocator.instantiate(), trace, { verify: false });
    expect(verified.failedAllocations).toBe(0);
    expect(verified.peakLiveBytes).toBe(expected(trace).peakLive);
    expect(verified.liveBytesAtEnd).toBe(expected(trace).liveAtEnd);
    expect({ ...fast, elapsedMs: 0, nsPerOp: 0, verified: true }).toEqual({ ...verified, elapsedMs: 0, nsPerOp: 0 });
  });

  test("Realloc: the result replaces the allocation; size 0 frees it; a freed one is reallocated from null", async () => {
    const trace = parseTrace("Alloc(24),\nRealloc(0,100),\nAlloc(8),\nRealloc(0,10),\nRealloc(1,0),\nRealloc(1,40),\nFree(0),\n", "r");
    const result = replay(await bumpAllocator.instantiate(), trace);
    expect(result.peakLiveBytes).toBe(108);
    expect(result.liveBytesAtEnd).toBe(40);
    expect(expected(trace)).toEqual({ peakLive: 108, liveAtEnd: 40 });
  });

  test("realloc growing in place from any size: tags are written and checked from every offset", async () => {
    // bump grows the latest block in place, so the driver tags the new tail from the old size on.
    const lines = Array.from({ length: 17 }, (_, n) => `Alloc(${n}),\nRealloc(${n},${n + 1 + (n % 9)}),\nRealloc(${n},${3 * n + 20}),\n`);
    const trace = parseTrace(lines.join(""), "in-place");
    const result = replay(await bumpAllocator.instantiate(), trace);
    expect(result.liveBytesAtEnd).toBe(expected(trace).liveAtEnd);
  });

  test("a heap can be replayed again once the live blocks are freed", async () => {
    const a = await bumpAllocator.instantiate();
    const replayer = createReplayer(a, generateWorkload("small-churn", { ops: 2_000 }));
    const first = replayer.run({ freeLive: true });
    const second = replayer.run({ freeLive: true });
    expect(second.peakLiveBytes).toBe(first.peakLiveBytes);
    replayer.dispose();
  });

  test("an allocation the allocator refuses is counted, and freeing it is a no-op", async () => {
    const small = buildAllocator({ strategy: bump(), exports: ["malloc", "free", "realloc"], memory: { maximumPages: 2 } });
    const trace = parseTrace("Alloc(16),\nAlloc(1000000),\nFree(1),\nRealloc(0,2000000),\nFree(0),\n", "big");
    const result = replay(await small.instantiate(), trace);
    expect(result.failedAllocations).toBe(2);
    expect(result.liveBytesAtEnd).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Broken allocators: every one must be caught, with the operation that revealed it.
// ---------------------------------------------------------------------------------------------

interface Bugs {
  /** Round the top up to 8 (correct) or not. */
  readonly align?: boolean;
  /** realloc copies the old contents (correct) or not. */
  readonly copy?: boolean;
  /** What malloc returns instead of its block `$p`, from the given call on (1-based; the driver's two blocks are calls 1 and 2). */
  readonly from?: { readonly call: number; readonly result: string };
}

/** A bump allocator written by hand in WAT, with optional bugs. */
async function handWritten(bugs: Bugs = {}): Promise<{ instance: WebAssembly.Instance; memory: WebAssembly.Memory }> {
  const round = bugs.align === false ? "" : "(i32.and (i32.add (local.get 0) (i32.const 7)) (i32.const -8))";
  const override = bugs.from
    ? `(global.set $calls (i32.add (global.get $calls) (i32.const 1)))
       (if (i32.ge_u (global.get $calls) (i32.const ${bugs.from.call})) (then (return ${bugs.from.result})))`
    : "";
  const copy =
    bugs.copy === false
      ? ""
      : `(if (local.get $p) (then (loop $copy (if (i32.lt_u (local.get $i) (local.get $size)) (then
           (i32.store8 (i32.add (local.get $q) (local.get $i)) (i32.load8_u (i32.add (local.get $p) (local.get $i))))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br $copy))))))`;
  const wat = `(module
    (memory (export "memory") 1)
    (global $top (mut i32) (i32.const 1024))
    (global $calls (mut i32) (i32.const 0))
    (func $round (param i32) (result i32) ${round || "(local.get 0)"})
    (func $malloc (export "malloc") (param $size i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $top))
      (global.set $top (call $round (i32.add (local.get $p) (local.get $size))))
      (if (i32.gt_u (global.get $top) (i32.shl (memory.size) (i32.const 16))) (then
        (drop (memory.grow (i32.sub (i32.shr_u (i32.add (global.get $top) (i32.const 65535)) (i32.const 16)) (memory.size))))))
      ${override}
      (local.get $p))
    (func (export "free") (param i32))
    (func (export "realloc") (param $p i32) (param $size i32) (result i32)
      (local $q i32) (local $i i32)
      (local.set $q (call $malloc (local.get $size)))
      ${copy}
      (local.get $q)))`;
  const { default: binaryen } = await import("binaryen");
  const module = binaryen.parseText(wat);
  try {
    if (!module.validate()) throw new Error("the hand-written allocator does not validate");
    const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
    return { instance, memory: instance.exports.memory as WebAssembly.Memory };
  } finally {
    module.dispose();
  }
}

/** The ReplayError replaying `trace` against `target` throws (the test fails when none is thrown). */
function replayError(target: Parameters<typeof replay>[0], trace: Trace, options?: Parameters<typeof replay>[2]): ReplayError {
  try {
    replay(target, trace, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ReplayError);
    return error as ReplayError;
  }
  throw new Error("the replay did not fail");
}

describe("replay against a 64-bit bump (memory64: the driver is built 64-bit)", () => {
  const wide = buildAllocator({ strategy: bump(), exports: ["malloc", "free", "realloc"], memory64: true });

  test.each(["small-churn", "realloc-growth", "compiler"] as const)("%s replays, verified, with the live bytes of the trace", async (name) => {
    const trace = generateWorkload(name, { ops: 3_000 });
    const heap = await wide.instantiate();
    const result = replay(heap, trace);
    expect(result).toMatchObject({ operations: trace.ops.length, failedAllocations: 0, verified: true });
    expect(result.peakLiveBytes).toBe(expected(trace).peakLive);
    expect(result.liveBytesAtEnd).toBe(expected(trace).liveAtEnd);
    // Table entries are 16 bytes (an 8-byte pointer and the size): twice the wasm32 driver's.
    const narrow = replay(await bumpAllocator.instantiate(), trace);
    expect(result.driverBytes - narrow.driverBytes).toBe(8 * trace.allocations);
  });

  test("a replayer runs again on the reused heap, and the fast driver too", async () => {
    const trace = generateWorkload("small-churn", { ops: 2_000 });
    for (const verify of [true, false]) {
      const replayer = createReplayer(await wide.instantiate(), trace, { verify });
      expect(replayer.run({ freeLive: true }).failedAllocations).toBe(0);
      expect(replayer.run({ freeLive: true }).liveBytesAtEnd).toBe(expected(trace).liveAtEnd);
      replayer.dispose();
    }
  });
});

describe("broken allocators are caught", () => {
  const churn = generateWorkload("small-churn", { ops: 2_000 });

  test("the hand-written allocator without bugs passes (so the failures below are the bugs')", async () => {
    expect(replay(await handWritten(), churn).operations).toBe(churn.ops.length);
    expect(replay(await handWritten(), generateWorkload("realloc-growth", { ops: 2_000 })).failedAllocations).toBe(0);
  });

  test("blocks that overlap: the free of the overwritten block names the line and the culprit", async () => {
    const trace = parseTrace("Alloc(16),\nAlloc(16),\nAlloc(8),\nFree(0),\n", "overlap.trace");
    const error = replayError(await handWritten({ from: { call: 4, result: "(i32.sub (local.get $p) (i32.const 8))" } }), trace);
    expect(error.op).toBe(3);
    expect(error.line).toBe(4);
    expect(error.message).toMatch(/^overlap\.trace:4: Free\(0\): allocation 0 \(block \d+, 16 bytes\) was overwritten at byte \+8/);
    expect(error.message).toMatch(/it overlaps allocation 1 \(block \d+, 16 bytes from overlap\.trace:2: Alloc\(16\)\)/);
    // In a generated workload too.
    expect(replayError(await handWritten({ from: { call: 4, result: "(i32.sub (local.get $p) (i32.const 8))" } }), churn).message).toMatch(
      /^small-churn\(seed 1\)( op \d+: Free\(\d+\)|: after the last operation): allocation \d+ .* was overwritten/,
    );
  });

  test("a block handed out twice is caught, at the latest by the final check of live blocks", async () => {
    const trace = parseTrace("Alloc(32),\nAlloc(32),\n", "twice.trace");
    const error = replayError(await handWritten({ from: { call: 4, result: "(i32.sub (local.get $p) (i32.const 32))" } }), trace);
    expect(error.op).toBeUndefined();
    expect(error.message).toMatch(/^twice\.trace: after the last operation: allocation 0 .* it overlaps allocation 1/);
  });

  test("a misaligned block", async () => {
    const trace = parseTrace("Alloc(3),\nAlloc(8),\n", "align.trace");
    const error = replayError(await handWritten({ align: false }), trace);
    expect(error.message).toMatch(/^align\.trace:2: Alloc\(8\): allocation 1 got block \d+, which is not 8-aligned/);
    // The alignment asked for is the one checked.
    expect(replay(await handWritten({ align: false }), parseTrace("Alloc(3),\nAlloc(8),\n"), { align: 1 }).operations).toBe(2);
  });

  test("realloc that loses the contents", async () => {
    const trace = parseTrace("Alloc(16),\nRealloc(0,64),\n", "realloc.trace");
    const error = replayError(await handWritten({ copy: false }), trace);
    expect(error.message).toMatch(/^realloc\.trace:2: Realloc\(0,64\): realloc of allocation 0 moved it to block \d+ without its contents: byte \+0/);
  });

  test("a block past the end of memory", async () => {
    const error = replayError(await handWritten({ from: { call: 3, result: "(i32.const 65528)" } }), parseTrace("Alloc(16),\n", "oob"));
    expect(error.message).toMatch(/^oob:1: Alloc\(16\): allocation 0 got block 65528 \(16 bytes\), which ends past the end of memory \(65536 bytes\)/);
  });

  test("a block over the driver's own data", async () => {
    const error = replayError(await handWritten({ from: { call: 3, result: "(i32.const 1024)" } }), parseTrace("Alloc(16),\n", "drv"));
    expect(error.message).toMatch(/^drv:1: Alloc\(16\): allocation 0 got block 1024 \(16 bytes\), which overlaps the driver's op array/);
  });

  test("a trap inside the allocator names the operation", async () => {
    const trace = parseTrace("Alloc(16),\nFree(0),\nAlloc(16),\nAlloc(16),\n", "trap.trace");
    for (const verify of [true, false]) {
      const error = replayError(await handWritten({ from: { call: 4, result: "(unreachable)" } }), trace, { verify });
      expect(error.message).toMatch(/^trap\.trace:3: Alloc\(16\): the allocator trapped \(RuntimeError: unreachable/);
      expect(error.cause).toBeInstanceOf(WebAssembly.RuntimeError);
    }
  });

  test("a debug build's fault inside the trace is reported with its cause, not as a bare trap", async () => {
    const heap = await buildAllocator({ strategy: bump(), debug: true, exports: ["malloc", "free", "realloc"] }).instantiate();
    const replayer = createReplayer(heap, parseTrace("Alloc(8),\nAlloc(64),\n", "uaf.trace"));
    // Memory freed (and poisoned) before the trace runs is written to; the trace's second
    // block reuses it.
    const p = heap.malloc(64);
    heap.free(p);
    new Uint8Array(heap.memory.buffer)[p + 30] = 1;
    let error: unknown;
    try {
      replayer.run();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ReplayError);
    expect((error as ReplayError).message).toMatch(/^uaf\.trace:2: Alloc\(64\): the allocator trapped \(HeapFaultError: bump: write after free: .* \(at 0x[0-9a-f]+\)\)$/);
  });

  test("the fast driver checks nothing (it is for timing only)", async () => {
    const trace = parseTrace("Alloc(16),\nAlloc(16),\nFree(0),\n", "fast");
    expect(replay(await handWritten({ from: { call: 3, result: "(i32.const 2048)" } }), trace, { verify: false }).operations).toBe(3);
  });
});
