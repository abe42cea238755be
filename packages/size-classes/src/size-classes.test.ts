import { AllocConfigError, buildAllocator, PAGE_SIZE, type BuildOptions } from "@alloc/core";
import { bump } from "@alloc/bump";
import { freeList } from "@alloc/free-list";
import { generateWorkload, measureWork } from "@alloc/trace";
import { describe, expect, test } from "vitest";
import { C_ALL, conformance, instantiate, type StackUnderTest } from "../../free-list/test-support/conformance.ts";
import { sizeClasses, type SizeClassesOptions } from "./index.ts";

/** size-classes over free-list over grow: the speed layer over the default free list. */
const overFreeList: StackUnderTest = {
  name: "size-classes over free-list",
  stack: () => [sizeClasses(), freeList()],
  mallocZero: "block",
  bounded: "all",
};
const overBins: StackUnderTest = {
  name: "size-classes over free-list (bins fit)",
  stack: () => [sizeClasses(), freeList({ fit: "bins" })],
  mallocZero: "block",
  bounded: "all",
};
/** Slab over bump: small blocks are reused, large ones only when freed last. */
const overBump: StackUnderTest = {
  name: "size-classes over bump",
  stack: () => [sizeClasses(), bump()],
  mallocZero: "block",
  bounded: "small",
  largest: 2_000,
};

for (const s of [overFreeList, overBins, overBump]) conformance(s);

/** An allocator with explicit options (so no default is restated here), over free-list. */
async function withClasses(options: SizeClassesOptions, setup: Omit<BuildOptions, "strategy"> = {}) {
  return instantiate({ ...overFreeList, stack: () => [sizeClasses(options), freeList()] }, setup);
}

describe.each([
  { maxSmall: 256, classes: 32 },
  { maxSmall: 1024, classes: 16 },
  { maxSmall: 64, classes: 1 },
])("size-classes with maxSmall $maxSmall and $classes classes", (options) => {
  const step = options.maxSmall / options.classes;
  const header = 4; // one word (wasm32), not padded: a block and its header take a multiple of the spacing
  /** The class of a small request: its block and header take the next multiple of the spacing, or for the last class, of the minimum alignment (8). */
  const classOf = (size: number) => Math.min(Math.ceil((size + header) / step) * step, Math.ceil((options.maxSmall + header) / 8) * 8) - header;

  test("sizes on both sides of every class boundary get their class; above maxSmall, the parent", async () => {
    const { a, model } = await withClasses(options);
    const boundaries = Array.from({ length: options.classes + 1 }, (_, k) => (k + 1) * step - header);
    for (const size of [...boundaries.flatMap((b) => [b - 1, b, b + 1]), options.maxSmall, options.maxSmall + 1]) {
      if (size < 1) continue;
      const p = a.malloc(size);
      model.add(p, size);
      const usable = a.malloc_usable_size(p);
      if (size <= options.maxSmall) expect(usable, `malloc(${size})`).toBe(classOf(size));
      else expect(usable, `malloc(${size}) is large: its exact size`).toBe(size);
    }
  });

  test("a class's blocks are carved one after another, aligned: the per-allocation overhead is the header word", async () => {
    const { a } = await withClasses({ ...options, spanBlocks: 3 }); // (three blocks in the first span)
    for (const size of [1, step, step - header, options.maxSmall - header, options.maxSmall]) {
      const p = a.malloc(size), q = a.malloc(size), r = a.malloc(size);
      expect(a.malloc_usable_size(p), `malloc(${size})`).toBe(classOf(size));
      expect([q - p, r - q], `class ${classOf(size)}`).toEqual([classOf(size) + header, classOf(size) + header]);
      expect([p % 8, q % 8, r % 8]).toEqual([0, 0, 0]);
    }
  });

  test("free needs no size: a freed block is the next one of its class (O(1), newest first)", async () => {
    const { a } = await withClasses(options);
    const small = [1, step, options.maxSmall].map((n) => a.malloc(n));
    const large = a.malloc(options.maxSmall + 1);
    for (const p of [...small, large]) a.free(p);
    expect(a.malloc(options.maxSmall)).toBe(small[2]);
    expect(a.malloc(step)).toBe(small[1]);
    expect(a.malloc(1)).toBe(small[0]);
    expect(a.malloc(options.maxSmall + 1)).toBe(large); // back through the parent
  });
});

describe("size-classes: bytes per small block", () => {
  // What one block of each request size takes (header and block: the distance between two blocks
  // of its class carved one after the other) and its usable size. A block and its one-word header
  // take a multiple of the class spacing (max(8, minAlign)), or for the last class of the
  // minimum alignment: no padding. (Before, the header was padded to minAlign: at 16, a request
  // of 8 bytes took 32.)
  const FOOTPRINT = {
    "wasm32, minAlign 8": { 4: [8, 4], 8: [16, 12], 16: [24, 20], 24: [32, 28], 100: [104, 100], 1000: [1008, 1004], 1024: [1032, 1028] },
    "wasm32, minAlign 16": { 4: [16, 12], 8: [16, 12], 16: [32, 28], 24: [32, 28], 100: [112, 108], 1000: [1008, 1004], 1024: [1040, 1036] },
    "memory64, minAlign 8": { 4: [16, 8], 8: [16, 8], 16: [24, 16], 24: [32, 24], 100: [112, 104], 1000: [1008, 1000], 1024: [1032, 1024] },
    "memory64, minAlign 16": { 4: [16, 8], 8: [16, 8], 16: [32, 24], 24: [32, 24], 100: [112, 104], 1000: [1008, 1000], 1024: [1040, 1032] },
  } as const;
  const setups = Object.keys(FOOTPRINT).map((name) => ({ name, memory64: name.startsWith("memory64"), minAlign: name.endsWith("16") ? 16 : 8 }));
  const heap = (memory64: boolean, minAlign: number) =>
    buildAllocator({ strategy: [sizeClasses({ spanBlocks: 3 }), freeList()], memory64, minAlign, exports: ["malloc", "free", "malloc_usable_size"] }).instantiate();

  test.each(setups)("$name: the stride and usable size of each request size", async ({ name, memory64, minAlign }) => {
    const measured: Record<number, [number, number]> = {};
    for (const size of Object.keys(FOOTPRINT[name as keyof typeof FOOTPRINT]).map(Number)) {
      const a = await heap(memory64, minAlign);
      const p = a.malloc(size), q = a.malloc(size), r = a.malloc(size);
      expect(r - q, `malloc(${size})`).toBe(q - p);
      measured[size] = [q - p, a.malloc_usable_size(p)];
    }
    expect(measured).toEqual(FOOTPRINT[name as keyof typeof FOOTPRINT]);
  });

  test.each(setups)("$name: every small block is aligned, holds its request, and its header word is all the overhead", async ({ memory64, minAlign }) => {
    const a = await heap(memory64, minAlign);
    const W = memory64 ? 8 : 4;
    for (let size = 1; size <= 1024; size++) {
      // (Three blocks: when a span fills up, one pair of them is in the next span, which holds 3 or more.)
      const p = a.malloc(size), q = a.malloc(size), r = a.malloc(size);
      expect([p % minAlign, q % minAlign, r % minAlign], `malloc(${size})`).toEqual([0, 0, 0]);
      const usable = a.malloc_usable_size(p);
      expect(usable).toBeGreaterThanOrEqual(size);
      // The block and its header: the request rounded up to the spacing, or the last class's.
      expect([q - p, r - q], `malloc(${size})`).toContain(usable + W);
      expect(usable + W).toBeLessThanOrEqual(Math.ceil((size + W) / Math.max(8, minAlign)) * Math.max(8, minAlign));
    }
  });

  test("binary-trees' nodes at minAlign 16 (8 bytes on wasm32): 100,000 of them take 16 bytes each, not 32", async () => {
    const a = await heap(false, 16);
    const before = a.memoryBytes();
    for (let i = 0; i < 100_000; i++) expect(a.malloc(8)).not.toBe(0);
    // (Spans of 4 KiB hold 252 blocks: 1.6 MB and the spans' headers; the grow backend rounds up.)
    expect(a.memoryBytes() - before).toBeLessThanOrEqual(1.1 * 16 * 100_000);
  });
});

describe("size-classes: realloc", () => {
  test("a small block grown 16 bytes at a time to 1 KiB moves O(log n) times, then grows in place as a large block", async () => {
    const { a, bytes } = await withClasses({});
    let p = a.malloc(16);
    bytes()[p] = 0x5e;
    let moves = 0;
    for (let size = 32; size <= 4096; size += 16) {
      const q = a.realloc(p, size);
      expect(q).not.toBe(0);
      if (q !== p) moves++;
      p = q;
      expect(bytes()[p]).toBe(0x5e);
    }
    // 32 -> 64, 80 -> 160, 176 -> 352, 368 -> 736 (small), 752 -> 1504 (large); then the parent
    // grows the block in place. (Class by class: 254 moves.)
    expect(moves).toBeLessThanOrEqual(8);
  });


  test("within its class a small block stays; past it, it moves and keeps its contents", async () => {
    const { a, bytes } = await withClasses({ maxSmall: 256, classes: 32 });
    const p = a.malloc(20);
    bytes().fill(0x3c, p, p + 20);
    expect(a.malloc_usable_size(p)).toBe(20); // (its class: 20 bytes, 24 with its header)
    expect(a.realloc(p, 17)).toBe(p);
    expect(a.realloc(p, 9)).toBe(p);
    expect(a.realloc(p, 20)).toBe(p);
    const q = a.realloc(p, 100);
    expect(q).not.toBe(p);
    expect(bytes().subarray(q, q + 20).every((b) => b === 0x3c)).toBe(true);
    expect(a.malloc(20)).toBe(p); // the old block went back to its class
  });

  test("a large block grows in place through the parent's resize", async () => {
    const { a, bytes } = await withClasses({});
    const p = a.malloc(5000);
    bytes().fill(0x11, p, p + 5000);
    expect(a.realloc(p, 300_000)).toBe(p);
    expect(a.malloc_usable_size(p)).toBe(300_000);
    expect(a.realloc(p, 1000)).toBe(p);
    expect(bytes().subarray(p, p + 1000).every((b) => b === 0x11)).toBe(true);
  });
});

describe("size-classes: memory", () => {
  test("slab over bump: churning a few small sizes reuses blocks and keeps memory flat", async () => {
    const { a } = await instantiate(overBump);
    const live: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      if (live.length < 500 || i % 2) live.push(a.malloc([16, 24, 100, 200][i % 4]!));
      else a.free(live.splice((i * 7919) % live.length, 1)[0]!);
      if (i === 10_000) var warm = a.memoryBytes();
    }
    expect(a.memoryBytes()).toBe(warm!);
  });

  test("a class's blocks come from its span in address order (successive allocations are adjacent)", async () => {
    const { a } = await withClasses({ spanBytes: 4096 });
    const blocks = Array.from({ length: 50 }, () => a.malloc(40));
    // A span of 4096 bytes holds 84 blocks of 40 bytes, 48 with the header.
    const gaps = blocks.slice(1).map((p, i) => p - blocks[i]!);
    expect(gaps.every((g) => g === 48)).toBe(true);
  });
});

describe("size-classes: spans go back to the parent", () => {
  /** Fills `bytes` with blocks of `size`, and frees them all (in allocation order). */
  const fillAndFree = (a: { malloc(n: number): number; free(p: number): void }, size: number, bytes: number) => {
    const blocks: number[] = [];
    for (let b = 0; b < bytes; b += size) {
      const p = a.malloc(size);
      expect(p).not.toBe(0);
      blocks.push(p);
    }
    for (const p of blocks) a.free(p);
  };

  test("a span whose last block is freed goes back: another class, then a large block, reuse its memory", async () => {
    const { a } = await withClasses({});
    fillAndFree(a, 64, 1 << 20);
    const afterA = a.memoryBytes();
    fillAndFree(a, 200, 1 << 20);
    expect(a.memoryBytes(), "class B reuses class A's memory").toBeLessThanOrEqual(afterA + 2 * PAGE_SIZE);
    const big = a.malloc(1 << 20);
    expect(big).not.toBe(0);
    expect(a.memoryBytes(), "a large block reuses it too").toBeLessThanOrEqual(afterA + 2 * PAGE_SIZE);
  });

  test("every class filled to 256 KiB in turn and freed: memory stays within 1.5x the peak footprint", async () => {
    const { a } = await withClasses({});
    let peakFootprint = 0;
    for (let size = 16; size <= 1024; size += 8) {
      // What the blocks take with their 8-byte headers (the live bytes the classes hold).
      peakFootprint = Math.max(peakFootprint, Math.ceil((256 << 10) / size) * (size + 8));
      fillAndFree(a, size, 256 << 10);
    }
    // (Before: 33.8 MiB. Allowance: the spare spans and the table.)
    expect(a.memoryBytes()).toBeLessThanOrEqual(1.5 * peakFootprint + 2 * PAGE_SIZE);
  });

  test("16 MiB of 64-byte blocks, 16 MiB of 64 KiB blocks and 4 MiB of another small size, three rounds: memory is flat", async () => {
    const { a } = await withClasses({});
    const after: number[] = [];
    for (const small of [24, 200, 640]) {
      fillAndFree(a, 64, 16 << 20);
      fillAndFree(a, 65536, 16 << 20);
      fillAndFree(a, small, 4 << 20);
      after.push(a.memoryBytes());
    }
    // (Before: 34, 54, 76 MiB.) 16 MiB of 64-byte blocks take 24 MiB with their headers.
    expect(after[2]).toBe(after[0]);
    expect(after[0]).toBeLessThanOrEqual(26 << 20);
  }, 180_000); // a million calls from JS: past vitest's minute on a machine under load

  test("a block allocated and freed over and over keeps its span (a spare): same address, no parent calls", async () => {
    const { a } = await withClasses({});
    const keep = a.malloc(24); // another class: one live block, its span stays
    const p = a.malloc(100);
    a.free(p);
    const before = a.memoryBytes();
    for (let i = 0; i < 1000; i++) {
      const q = a.malloc(100);
      expect(q).toBe(p);
      a.free(q);
    }
    expect(a.memoryBytes()).toBe(before);
    a.free(keep);
  });

  test("over bump, which cannot reuse them, spans are kept: churn keeps memory flat", async () => {
    const { a } = await instantiate(overBump);
    for (let round = 0; round < 20; round++) {
      fillAndFree(a, 64, 256 << 10);
      fillAndFree(a, 200, 256 << 10);
      if (round === 0) var first = a.memoryBytes();
    }
    expect(a.memoryBytes()).toBe(first!);
  });
});

describe("size-classes: work per operation", () => {
  test("bounded whatever the history: the worst malloc, free and realloc cost the same over 4x the operations (over bump)", () => {
    const binary = buildAllocator({ strategy: [sizeClasses(), bump()], exports: ["malloc", "free", "realloc"] }).binary;
    for (const name of ["class-stranding", "small-churn", "fragmentation"] as const) {
      const short = measureWork(binary, generateWorkload(name, { ops: 20_000 }));
      const long = measureWork(binary, generateWorkload(name, { ops: 80_000 }));
      for (const op of ["malloc", "free"] as const) {
        expect(long[op].worst, `${name}: worst ${op}`).toBeLessThanOrEqual(short[op].worst);
      }
    }
  });
});

describe("size-classes: configuration", () => {
  const build = (options: SizeClassesOptions, minAlign?: number) =>
    buildAllocator({ strategy: [sizeClasses(options), freeList()], ...(minAlign && { minAlign }) });

  test.each<[string, SizeClassesOptions, RegExp]>([
    ["maxSmall 0", { maxSmall: 0 }, /maxSmall must be an integer from 1 to 65536/],
    ["maxSmall 1.5", { maxSmall: 1.5 }, /maxSmall must be an integer/],
    ["maxSmall 2^17", { maxSmall: 2 ** 17 }, /maxSmall must be an integer from 1 to 65536/],
    ["classes 0", { classes: 0 }, /classes must be an integer from 1 to maxSmall/],
    ["more classes than bytes", { maxSmall: 16, classes: 32 }, /classes must be an integer from 1 to maxSmall/],
    ["spacing not a power of two", { maxSmall: 256, classes: 3 }, /must be a power of two/],
    ["spacing below the minimum alignment", { maxSmall: 256, classes: 64 }, /less than the minimum alignment \(8\)/],
    ["too many classes", { maxSmall: 65536, classes: 8192 }, /^size-classes: classes must be at most 4096, got 8192$/],
    ["span not a multiple of the alignment", { spanBytes: 4100 }, /spanBytes \(4100\) must be a multiple of the minimum alignment/],
    ["span of 16 MiB and more", { spanBytes: 2 ** 24 + 8 }, /spanBytes must be an integer from 256 to 16 MiB/],
    ["span below 256 bytes", { spanBytes: 128 }, /spanBytes must be an integer from 256 to 16 MiB/],
    ["no blocks in a span", { spanBlocks: 0 }, /spanBlocks must be an integer from 1 to 4096/],
    ["spares not a power of two", { spareSpans: 3 }, /spareSpans must be 0 or a power of two up to 256/],
  ])("%s is refused before anything is emitted", (_name, options, message) => {
    expect(() => build(options)).toThrow(AllocConfigError);
    expect(() => build(options)).toThrow(message);
  });

  // Issue 11: the messages say what to change, with numbers that work.
  test("a maxSmall below the minimum alignment: the message says to raise one or lower the other (not \"at most 0 classes\")", () => {
    const message = "size-classes: maxSmall (1024) is below the minimum alignment (2048), so no two classes can be 2048 bytes apart: " +
      "raise maxSmall to at least 2048, or lower minAlign to 1024 or less";
    expect(() => build({}, 2048)).toThrow(new AllocConfigError(message));
    expect(() => build({ maxSmall: 1000 }, 1024)).toThrow(/^size-classes: maxSmall \(1000\) is below the minimum alignment \(1024\).*lower minAlign to 512 or less$/);
    // Both suggestions work.
    expect(build({ maxSmall: 2048 }, 2048).size).toBeGreaterThan(0);
    expect(build({}, 1024).size).toBeGreaterThan(0);
    // More classes than the alignment allows, with maxSmall above it: "at most N" with N >= 1.
    expect(() => build({ maxSmall: 4096, classes: 4 }, 2048)).toThrow(/use fewer classes \(at most 2\) or a larger maxSmall$/);
  });

  test("too many classes at the default spacing: the message names classes, with an example that builds", () => {
    const message = "size-classes: maxSmall 65536 at the default spacing (minAlign 8) makes 8192 classes, more than the 4096 allowed: " +
      "pass classes (at most 4096, e.g. { maxSmall: 65536, classes: 4096 }) or a maxSmall of at most 32768";
    expect(() => build({ maxSmall: 65536 })).toThrow(new AllocConfigError(message));
    expect(build({ maxSmall: 65536, classes: 4096 }).size).toBeGreaterThan(0);
    expect(build({ maxSmall: 32768 }).size).toBeGreaterThan(0);
    // The example's spacing is a power of two that divides maxSmall; none, and there is no example.
    expect(() => build({ maxSmall: 40000 })).toThrow(/makes 5000 classes.*pass classes \(at most 4096, e.g. \{ maxSmall: 40000, classes: 2500 \}\) or a maxSmall of at most 32768$/);
    expect(build({ maxSmall: 40000, classes: 2500 }).size).toBeGreaterThan(0);
    expect(() => build({ maxSmall: 40001 })).toThrow(/pass classes \(at most 4096\) or a maxSmall of at most 32768$/);
    // At minAlign 16 the default spacing is 16: 4096 classes, allowed.
    expect(build({ maxSmall: 65536 }, 16).size).toBeGreaterThan(0);
  });

  test("the default spacing follows a larger minimum alignment", async () => {
    const a = await build({}, 16).instantiate();
    const p = a.malloc(1), q = a.malloc(1);
    expect(p % 16).toBe(0);
    expect(q - p).toBe(16); // class 12, header 4
    expect(() => build({ classes: 128 }, 16)).toThrow(/less than the minimum alignment \(16\)/);
  });

  test("it sits on another strategy only", () => {
    expect(() => buildAllocator({ strategy: sizeClasses() })).toThrow(AllocConfigError);
  });
});

describe("size-classes: code size", () => {
  const size = (stack: "free-list" | "bump", exports: readonly string[], options: Omit<BuildOptions, "strategy" | "exports"> = {}) =>
    buildAllocator({ strategy: [sizeClasses(), stack === "free-list" ? freeList() : bump()], exports, ...options }).size;
  const C_API = C_ALL.filter((f) => f !== "malloc_usable_size");

  // size-classes' own share: the composition less free-list alone (so that a change of the
  // parent does not move it). Spans that go back to the parent, their lists, the spares and the
  // realloc jump cost about twice the old shared-chunk design's ~290 bytes; spans that grow per
  // class and a class's first span kept when empty about 80 more (see the README).
  const share = (exports: readonly string[]) =>
    size("free-list", exports) - buildAllocator({ strategy: freeList(), exports }).size;

  test("size-classes' share over free-list, memory + malloc + free: at most 720 bytes", () => {
    expect(share(["malloc", "free"])).toBeLessThanOrEqual(720);
  });

  test("size-classes' share over free-list, the five C functions: at most 820 bytes", () => {
    expect(share(C_API)).toBeLessThanOrEqual(820);
  });

  test("sizes of size-classes compositions (a change here is a reviewed change)", () => {
    expect({
      "free-list, malloc+free": size("free-list", ["malloc", "free"]),
      "free-list, C API": size("free-list", C_API),
      "bump, malloc+free": size("bump", ["malloc", "free"]),
      "bump, C API": size("bump", C_API),
      "free-list, imported memory, malloc+free": size("free-list", ["malloc", "free"], { memory: { mode: "import" } }),
      "share over free-list, malloc+free": share(["malloc", "free"]),
      "share over free-list, C API": share(C_API),
    }).toMatchSnapshot();
  });
});
