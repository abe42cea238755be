import { buildAllocator, DEFAULT_THREAD_CACHE, THREAD_CACHE_FLUSH, THREAD_STATE_BYTES } from "@alloc/core";
import { describe, expect, test } from "vitest";
import { cachedCompositions } from "./compositions.ts";
import { hammer, hammerBroken } from "./threads/hammer.ts";
import { pipe } from "./threads/pipe.ts";

/** Operations per thread in CI; `pnpm soak --threads` runs as many as you like. */
const OPS = Number(process.env.ALLOC_THREAD_OPS ?? 2000);

/** What one thread may leave cached without flushing: every class full (blocks under twice their class size), and the table. */
const CLASSES = DEFAULT_THREAD_CACHE.maxSize / 16;
const PER_THREAD_BOUND = CLASSES * DEFAULT_THREAD_CACHE.classBytes * 2 + CLASSES * 8;

describe.each(cachedCompositions())("$name", (composition) => {
  test("2 threads: every block keeps its tag, blocks freed by another thread included; each hands its cache back", async () => {
    const built = buildAllocator(composition.options);
    const { counts } = await hammer({ built, threads: 2, ops: OPS, seed: 11, finish: THREAD_CACHE_FLUSH });
    expect(counts.received).toBe(counts.given);
    expect(counts.given).toBeGreaterThan(0);
    expect(counts.calloc).toBeGreaterThan(0);
  });

  test("4 threads (waiting lock): the same", async () => {
    const built = buildAllocator({ ...composition.options, threads: { wait: true } });
    const { counts } = await hammer({ built, threads: 4, ops: OPS, seed: 12, finish: THREAD_CACHE_FLUSH });
    expect(counts.received).toBe(counts.given);
  });

  test("debug build, 4 threads: the heap walker passes while they run; after the hand-back no byte is in use", async () => {
    const built = buildAllocator({ ...composition.options, debug: true });
    const { report, walks } = await hammer({ built, threads: 4, ops: OPS / 2, seed: 13, walkWhileRunning: true, finish: THREAD_CACHE_FLUSH });
    expect(walks).toBeGreaterThan(0);
    const top = report!.layers[0]!;
    expect(top.layer).toBe(composition.stack[0]);
    expect([top.usedBlocks, top.usedBytes]).toEqual([0, 0]);
  });

  test("stats build (release), 2 threads: heap_stats counts no byte in use after the hand-back", async () => {
    const built = buildAllocator({ ...composition.options, stats: true });
    const { report } = await hammer({ built, threads: 2, ops: OPS / 2, seed: 15, finish: THREAD_CACHE_FLUSH });
    expect(report!.layers[0]).toMatchObject({ layer: composition.stack[0], usedBlocks: 0, usedBytes: 0 });
  });

  test("debug build, threads that end without the hand-back: their caches stay in use, within the documented bound", async () => {
    const built = buildAllocator({ ...composition.options, debug: true });
    const { report } = await hammer({ built, threads: 2, ops: OPS / 2, seed: 14 });
    const top = report!.layers[0]!;
    expect(top.usedBytes).toBeGreaterThan(0);
    expect(top.usedBytes).toBeLessThanOrEqual(2 * PER_THREAD_BOUND);
  });
});

describe("a producer thread allocates, a consumer frees", () => {
  const composition = cachedCompositions().find((c) => c.name.startsWith("size-classes > free-list over grow"))!;

  test("memory levels off: a run four times as long takes no more memory than the cache's bound more", async () => {
    const built = buildAllocator(composition.options);
    const short = await pipe(built, 20_000);
    const long = await pipe(built, 80_000);
    expect(long).toBeLessThanOrEqual(short + PER_THREAD_BOUND + 65536);
  }, 120_000);

  test("the same test fails for a cache without a useful bound (it can tell)", async () => {
    // classBytes at its largest: the consumer keeps nearly everything it frees.
    const built = buildAllocator({ ...composition.options, threadCache: { classBytes: 2 ** 20 } });
    const short = await pipe(built, 20_000);
    const long = await pipe(built, 80_000);
    expect(long).toBeGreaterThan(short + PER_THREAD_BOUND + 65536);
  }, 120_000);
});

test("the hammer catches a cache whose lists are shared by the threads (it is not a test that cannot fail)", async () => {
  const composition = cachedCompositions().find((c) => c.name.startsWith("size-classes > free-list over grow"))!;
  const built = buildAllocator({ ...composition.options, optimize: "none" });
  // The per-instance table global becomes a word of shared memory (the state area's last one,
  // which no cell uses): every thread then pops and pushes the same lists without the lock.
  const shared = `(i32.const ${1024 + THREAD_STATE_BYTES - 4})`;
  const text = built.text
    .replace(/\(global\.get \$~alloc\/thread-cache\/table\)/g, `(i32.load ${shared})`)
    .replace(/\(global\.set \$~alloc\/thread-cache\/table\s+(\((?:local\.get \$\d+|i32\.const 0)\))\s*\)/g, `(i32.store ${shared} $1)`);
  expect(text).not.toMatch(/global\.[gs]et \$~alloc\/thread-cache\/table/);
  expect(await hammerBroken(built, text, 40)).toBeInstanceOf(Error);
}, 240_000);
