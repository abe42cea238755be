import { buildAllocator } from "@alloc/core";
import { bump } from "@alloc/bump";
import binaryen from "binaryen";
import { describe, expect, test } from "vitest";
import { generateWorkload, instrumentWork, measureWork, TraceBuilder, WORK_EXPORT, type Trace } from "./index.ts";

/** A module from text, as bytes. */
function wat(text: string): Uint8Array {
  const module = binaryen.parseText(text);
  try {
    module.setFeatures(binaryen.Features.All);
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

/**
 * A deliberately O(n) allocator: first fit over a LIFO free list of whole cells (no splitting,
 * no coalescing), bump allocation when nothing fits. Cell: [size][next] then the payload.
 */
const FIRST_FIT = wat(`(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (global $head (mut i32) (i32.const 0))
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $c i32) (local $prev i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (local.set $n (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8)))
    (local.set $c (global.get $head))
    (block $done (loop $walk
      (br_if $done (i32.eqz (local.get $c)))
      (if (i32.ge_u (i32.load (local.get $c)) (local.get $n)) (then
        (if (local.get $prev)
          (then (i32.store offset=4 (local.get $prev) (i32.load offset=4 (local.get $c))))
          (else (global.set $head (i32.load offset=4 (local.get $c)))))
        (return (i32.add (local.get $c) (i32.const 8)))))
      (local.set $prev (local.get $c))
      (local.set $c (i32.load offset=4 (local.get $c)))
      (br $walk)))
    (local.set $c (global.get $top))
    (global.set $top (i32.add (local.get $c) (i32.add (local.get $n) (i32.const 8))))
    (if (i32.gt_u (global.get $top) (i32.shl (memory.size) (i32.const 16))) (then
      (if (i32.lt_s (memory.grow (i32.shr_u (i32.sub (i32.add (global.get $top) (i32.const 65535)) (i32.shl (memory.size) (i32.const 16))) (i32.const 16))) (i32.const 0))
        (then (global.set $top (local.get $c)) (return (i32.const 0))))))
    (i32.store (local.get $c) (local.get $n))
    (i32.add (local.get $c) (i32.const 8)))
  (func $free (export "free") (param $p i32)
    (if (i32.eqz (local.get $p)) (then (return)))
    (i32.store (i32.sub (local.get $p) (i32.const 4)) (global.get $head))
    (global.set $head (i32.sub (local.get $p) (i32.const 8))))
  (func (export "realloc") (param $p i32) (param $n i32) (result i32)
    (local $q i32)
    (if (i32.eqz (local.get $p)) (then (return (call $malloc (local.get $n)))))
    (if (i32.eqz (local.get $n)) (then (call $free (local.get $p)) (return (i32.const 0))))
    (if (i32.le_u (local.get $n) (i32.load (i32.sub (local.get $p) (i32.const 8)))) (then (return (local.get $p))))
    (local.set $q (call $malloc (local.get $n)))
    (if (local.get $q) (then
      (memory.copy (local.get $q) (local.get $p) (i32.load (i32.sub (local.get $p) (i32.const 8))))
      (call $free (local.get $p))))
    (local.get $q)))`);

/** 2,000 blocks of 32 bytes, every other one freed (1,000 free cells no 64-byte request fits), then `requests` blocks of 64 bytes kept. */
function thousandCells(requests: number): Trace {
  const b = new TraceBuilder();
  const blocks = Array.from({ length: 2_000 }, () => b.alloc(32));
  blocks.forEach((k, i) => i % 2 === 0 && b.free(k));
  for (let i = 0; i < requests; i++) b.alloc(64);
  return b.build("1,000 free cells");
}

const bumpBinary = buildAllocator({ strategy: bump(), exports: ["malloc", "free", "realloc"], optimize: "speed" }).binary;

describe("work count", () => {
  test("counts function entries, the last expression of bodies of several, returns and loop iterations, exactly", () => {
    const spin = wat(`(module (memory (export "memory") 1)
      (func $helper)
      (func (export "malloc") (param $n i32) (result i32) (local $i i32)
        (call $helper)
        (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (i32.const 8))
      (func (export "free") (param i32)))`);
    const b = new TraceBuilder();
    const ks = [1, 10, 1_000].map((n) => b.alloc(n));
    b.free(ks[0]!);
    const r = measureWork(spin, b.build("spin"));
    // malloc(n): its entry and its last expression (a body of three), helper's entry (an empty body), n loop iterations.
    expect(r.malloc).toEqual({ count: 3, total: 3 * 3 + 1 + 10 + 1_000, mean: (9 + 1_011) / 3, worst: 1_003, worstOp: 2 });
    // free: its entry only.
    expect(r.free).toEqual({ count: 1, total: 1, mean: 1, worst: 1, worstOp: 3 });
    expect(r.realloc.count).toBe(0);
    expect(r.all.count).toBe(4);
  });

  test("the instrumented module keeps its exports and adds the counter", () => {
    const module = new WebAssembly.Module(instrumentWork(bumpBinary) as BufferSource);
    const names = WebAssembly.Module.exports(module).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(["memory", "malloc", "free", "realloc", WORK_EXPORT]));
    expect(WebAssembly.Module.imports(module)).toEqual(WebAssembly.Module.imports(new WebAssembly.Module(bumpBinary as BufferSource)));
  });

  test("a 64-bit build is refused clearly (work is measured on wasm32 builds)", () => {
    const wide = buildAllocator({ strategy: bump(), exports: ["malloc", "free"], memory64: true }).binary;
    expect(() => instrumentWork(wide)).toThrow(/instrumentWork: the module has a memory64 memory; work is measured on wasm32 builds only/);
  });

  test("a first-fit walk over 1,000 free cells fails a bound that bump meets", () => {
    const bound = 200;
    const trace = thousandCells(200);
    const walk = measureWork(FIRST_FIT, trace);
    expect(walk.malloc.worst).toBeGreaterThan(1_000);
    expect(walk.malloc.worst).toBeGreaterThan(bound);
    expect(walk.malloc.worstOp).toBeGreaterThanOrEqual(3_000);
    const flat = measureWork(bumpBinary, trace);
    expect(flat.malloc.worst).toBeLessThanOrEqual(bound);
    expect(flat.free.worst).toBeLessThanOrEqual(bound);
  });

  test("the worst op of the first fit grows with the trace; bump's does not", () => {
    const short = (name: Parameters<typeof generateWorkload>[0], ops: number, bin: Uint8Array) => measureWork(bin, generateWorkload(name, { ops })).all.worst;
    expect(short("fragmentation", 8_000, FIRST_FIT)).toBeGreaterThan(2 * short("fragmentation", 2_000, FIRST_FIT));
    expect(short("small-churn", 40_000, bumpBinary)).toBe(short("small-churn", 10_000, bumpBinary));
  });

  test("memory, live bytes and failures are measured; a runaway heap is stopped", () => {
    const trace = generateWorkload("large-blocks", { ops: 2_000 });
    const r = measureWork(bumpBinary, trace);
    expect(r.operations).toBe(trace.ops.length);
    expect(r.peakLiveBytes).toBeGreaterThan(1 << 20);
    expect(r.peakMemoryBytes).toBeGreaterThanOrEqual(r.peakLiveBytes);
    expect(r.endMemoryBytes).toBe(r.peakMemoryBytes);
    expect(r.failedAllocations).toBe(0);
    const stopped = measureWork(bumpBinary, trace, { maxMemoryBytes: 16 << 20 });
    expect(stopped.stopped).toMatch(/past the limit of 16777216/);
    expect(stopped.operations).toBeLessThan(trace.ops.length);
  });

  test("100,000 ops are counted in a few seconds", () => {
    const trace = generateWorkload("small-churn", { ops: 100_000 });
    const start = performance.now();
    const r = measureWork(bumpBinary, trace);
    expect(r.all.count).toBeGreaterThan(90_000);
    expect(performance.now() - start).toBeLessThan(5_000);
  });

  test("a module that imports its memory is counted over the memory given", () => {
    const imported = wat(`(module (import "env" "memory" (memory 1))
      (global $top (mut i32) (i32.const 16))
      (func (export "malloc") (param $n i32) (result i32) (local $p i32)
        (local.set $p (global.get $top))
        (global.set $top (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
        (local.get $p))
      (func (export "free") (param i32)))`);
    const memory = new WebAssembly.Memory({ initial: 1 });
    const b = new TraceBuilder();
    b.free(b.alloc(100));
    const r = measureWork(imported, b.build("imported"), { imports: { env: { memory } }, memory });
    // Its entry and the last of its three expressions.
    expect(r.malloc).toMatchObject({ count: 1, worst: 2 });
    expect(r.peakMemoryBytes).toBe(65536);
    expect(() => measureWork(imported, b.build("imported"), { imports: { env: { memory } } })).toThrow(/exports no memory and none was given/);
  });

  test("a misaligned block is a ReplayError naming the op", () => {
    const bad = wat(`(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 12)) (func (export "free") (param i32)))`);
    const b = new TraceBuilder();
    b.alloc(4);
    expect(() => measureWork(bad, b.build("t"))).toThrow(/t op 0: Alloc\(4\): allocation 0 got block 12, which is not 8-aligned/);
  });
});
