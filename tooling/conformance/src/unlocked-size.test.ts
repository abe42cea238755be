/**
 * The `usableSizeUnlocked` contract (@alloc/core's contracts.ts), checked on the machine code:
 * thread caches call the top strategy's `usableSize` without the lock, so the bytes it reads for a
 * live block must be written by no call on another block. Every memory access of a thread-safe
 * build is instrumented (Binaryen's instrument-memory pass; bulk memory off, so that fills and
 * copies are byte stores too; the heap's state lives in memory in a thread-safe build, so no state
 * escapes as a Wasm global), and random operations on other blocks run between two reads of a
 * target block's size: none may store into a byte that read touched (the lock's two words aside).
 */
import { binaryen, buildAllocator, PAGE_SIZE, type BuildOptions, type Strategy } from "@alloc/core";
import { STRATEGIES } from "@alloc/cli";
import { describe, expect, test } from "vitest";
import { CACHE_TOPS, threadedCompositions } from "./compositions.ts";

/**
 * The lock word of a thread-safe build at the default state address, which every call writes,
 * and the grown-pages word after it, which every call's lock reads and every grow writes.
 */
const LOCK = [1024, 1032] as const;

interface Conflict {
  readonly target: number;
  readonly byte: number;
  readonly op: string;
}

/** Runs `steps` rounds of: read a random live block's size, then `between` random operations on other blocks. The first conflict, if any. */
async function findConflict(options: BuildOptions, steps: number, seed: number): Promise<Conflict | undefined> {
  const built = buildAllocator({
    ...options,
    exports: ["malloc", "free", "calloc", "realloc", "aligned_alloc", "malloc_usable_size"],
    bulkMemory: false,
    optimize: "none",
  });
  const module = binaryen.readBinary(built.binary);
  const F = binaryen.Features;
  module.setFeatures(F.MutableGlobals | F.SignExt | F.Atomics | F.BulkMemory | F.BulkMemoryOpt);
  module.runPasses(["instrument-memory"]);
  const binary = module.emitBinary();
  module.dispose();

  let recording: "reads" | "writes" | undefined;
  const reads = new Set<number>(), writes = new Map<number, number>();
  const touch = (kind: "load" | "store", bytes: number, offset: number, ptr: number) => {
    const at = (ptr >>> 0) + offset;
    if (recording === "reads" && kind === "load") for (let i = 0; i < bytes; i++) reads.add(at + i);
    if (recording === "writes" && kind === "store") for (let i = 0; i < bytes; i++) writes.set(at + i, 1);
    return ptr;
  };
  const pass = (_id: number, value: unknown) => value;
  const env: Record<string, unknown> = {
    memory: new WebAssembly.Memory({ initial: built.memory.initialPages, maximum: 4096, shared: true }),
    load_ptr: (_id: number, bytes: number, offset: number, ptr: number) => touch("load", bytes, offset, ptr),
    store_ptr: (_id: number, bytes: number, offset: number, ptr: number) => touch("store", bytes, offset, ptr),
    memory_grow_pre: pass,
    memory_grow_post: pass,
  };
  for (const t of ["i32", "i64", "f32", "f64"]) env[`load_val_${t}`] = env[`store_val_${t}`] = pass;
  const { instance } = await WebAssembly.instantiate(binary as BufferSource, { env: env as WebAssembly.ModuleImports });
  const f = instance.exports as Record<string, (...args: number[]) => number>;

  let s = seed;
  const rand = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const size = () => (rand(10) < 8 ? 1 + rand(600) : 1 + rand(3 * PAGE_SIZE));
  const live: number[] = [];
  const ops: [string, () => void][] = [
    ["malloc", () => void live.push(f.malloc!(size()) >>> 0)],
    ["calloc", () => void live.push(f.calloc!(1 + rand(8), 1 + rand(100)) >>> 0)],
    ["aligned_alloc", () => void live.push(f.aligned_alloc!(2 ** (3 + rand(10)), size()) >>> 0)],
    ["realloc", () => { const i = rand(live.length); live[i] = f.realloc!(live[i]!, size()) >>> 0; }],
    ["free", () => { const [p] = live.splice(rand(live.length), 1); f.free!(p!); }],
  ];
  for (let i = 0; i < 20; i++) ops[0]![1]();
  for (let step = 0; step < steps; step++) {
    // The target leaves the list while the others run.
    const [target] = live.splice(rand(live.length), 1);
    if (!target) continue;
    reads.clear();
    recording = "reads";
    f.malloc_usable_size!(target);
    // (Nothing read would make the check vacuous.)
    if (reads.size === 0) throw new Error(`malloc_usable_size(${target}) read no memory: the instrumentation is broken`);
    recording = "writes";
    for (let k = 0; k < 12; k++) {
      writes.clear();
      const [name, run] = live.length < 8 ? ops[rand(3)]! : ops[rand(ops.length)]!;
      run();
      for (const byte of reads) if (writes.has(byte) && (byte < LOCK[0] || byte >= LOCK[1])) return { target, byte, op: name };
    }
    recording = undefined;
    live.push(target);
    for (let i = live.length - 1; i >= 0; i--) if (live[i] === 0) live.splice(i, 1);
  }
  return undefined;
}

/** The wasm32 thread-safe compositions whose top strategy declares the contract (thread caches build there). */
const declaring = threadedCompositions().filter((c) => {
  if (c.memory64) return false;
  try {
    buildAllocator({ ...c.options, threadCache: true, optimize: "none" });
    return true;
  } catch {
    return false;
  }
});

describe("usableSizeUnlocked: a live block's size is read from bytes no call on another block writes", () => {
  test("the compositions that declare it are the size-classes and free-list ones", () => {
    expect(new Set(declaring.map((c) => c.stack[0]))).toEqual(CACHE_TOPS);
    expect(declaring.length).toBeGreaterThanOrEqual(3);
  });

  test.each(declaring.map((c) => [c.name, c]))("%s", async (_name, composition) => {
    expect(await findConflict(composition.options, 150, 3)).toBeUndefined();
  });

  test("the check finds a usableSize that reads a word every alloc writes (it can fail)", async () => {
    const options = declaring.find((c) => c.stack[1] === "free-list")!.options;
    expect(await findConflict({ ...options, strategy: [counting(STRATEGIES["size-classes"]!.create()), STRATEGIES["free-list"]!.create()] }, 50, 3)).toMatchObject({
      op: expect.stringMatching(/alloc|realloc/),
    });
  });
});

/** `inner` with a counter of allocations (a state cell) that its usableSize reads too: what the contract forbids. */
function counting(inner: Strategy): Strategy {
  return {
    ...inner,
    emit(ctx, parent) {
      const { allocFixed: _fixed, ...f } = inner.emit(ctx, parent);
      const { cg, scope } = ctx;
      const counter = cg.global(scope("counter"));
      const alloc = cg.function(scope("counting_alloc"), ["size", "align"], "usize", (s) => [
        counter.set(cg.add(counter.get(), cg.size(1))),
        cg.call(f.alloc, [s.param("size").get(), s.param("align").get()]),
      ]);
      const usableSize = cg.function(scope("counting_usable_size"), ["ptr"], "usize", (s) =>
        cg.add(cg.call(f.usableSize!, [s.param("ptr").get()]), cg.and(counter.get(), cg.size(0))),
      );
      return { ...f, alloc, usableSize };
    },
  };
}
