import { AllocConfigError, buildAllocator, PAGE_SIZE, type BuildOptions } from "@alloc/core";
import { bump } from "@alloc/bump";
import { freeList } from "@alloc/free-list";
import { staticBackend } from "@alloc/page-backend-static";
import { describe, expect, test } from "vitest";
import { C_ALL, conformance, instantiate, type StackUnderTest } from "../../free-list/test-support/conformance.ts";
import { sizeClasses, type SizeClassesOptions } from "./index.ts";

/** The default composition of `alloc build`: size-classes over free-list over grow. */
const overFreeList: StackUnderTest = {
  name: "size-classes over free-list (the default composition)",
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
  const header = 8; // one word, padded to the minimum alignment (8)

  test("sizes on both sides of every class boundary get their class; above maxSmall, the parent", async () => {
    const { a, model } = await withClasses(options);
    for (let k = 1; k <= options.classes; k++) {
      for (const size of [k * step - 1, k * step, k * step + 1]) {
        if (size < 1) continue;
        const p = a.malloc(size);
        model.add(p, size);
        const usable = a.malloc_usable_size(p);
        if (size <= options.maxSmall) expect(usable, `malloc(${size})`).toBe(Math.ceil(size / step) * step);
        else expect(usable, `malloc(${size}) is large: its exact size`).toBe(size);
      }
    }
  });

  test("a class's blocks are carved one after another: the per-allocation overhead is the header", async () => {
    const { a } = await withClasses(options);
    for (const size of [step, options.maxSmall]) {
      const p = a.malloc(size), q = a.malloc(size), r = a.malloc(size);
      expect([q - p, r - q], `class ${size}`).toEqual([size + header, size + header]);
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

describe("size-classes: realloc", () => {
  test("within its class a small block stays; past it, it moves and keeps its contents", async () => {
    const { a, bytes } = await withClasses({ maxSmall: 256, classes: 32 });
    const p = a.malloc(20);
    bytes().fill(0x3c, p, p + 20);
    expect(a.realloc(p, 24)).toBe(p);
    expect(a.realloc(p, 9)).toBe(p);
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

  test("a chunk is asked of the parent only when the current one is used up", async () => {
    const chunkBytes = 1024;
    const { a } = await withClasses({ maxSmall: 256, classes: 32, chunkBytes }, { backend: staticBackend({ start: PAGE_SIZE, size: PAGE_SIZE }) });
    // 24-byte blocks take 32 bytes each: after the table (128 bytes) the first chunk holds 28.
    const blocks = Array.from({ length: 28 }, () => a.malloc(24));
    expect(blocks.at(-1)! - blocks[0]!).toBe(27 * 32);
    const next = a.malloc(24); // the 29th: a new chunk
    expect(next - blocks[0]!).not.toBe(28 * 32);
  });

  test("chunks start at 4 KiB and double up to chunkBytes", async () => {
    // Over bump, chunks follow one another: a gap between two blocks of one class is a chunk's
    // unused tail. 1024-byte blocks take 1032 bytes; the first chunk also holds the table (512).
    const { a } = await instantiate({ ...overBump, stack: () => [sizeClasses({ chunkBytes: 16384 }), bump()] });
    const blocks = Array.from({ length: 40 }, () => a.malloc(1024));
    const runs = [1];
    for (let i = 1; i < blocks.length; i++) {
      if (blocks[i]! - blocks[i - 1]! === 1032) runs[runs.length - 1]!++;
      else runs.push(1);
    }
    expect(runs).toEqual([3, 7, 15, 15]); // (4096 - 512) / 1032, 8192 / 1032, 16384 / 1032, ...
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
    ["too many classes", { maxSmall: 65536, classes: 8192 }, /at most 4096 classes/],
    ["chunk smaller than the largest block", { maxSmall: 4096, classes: 512, chunkBytes: 4096 }, /chunkBytes \(4096\) must .* hold the class table and the largest small block/],
    ["chunk not a multiple of the alignment", { chunkBytes: 4100 }, /must be a multiple of the minimum alignment/],
    ["chunk of 16 MiB and more", { chunkBytes: 2 ** 24 + 8 }, /chunkBytes must be an integer from 64 to 16 MiB/],
  ])("%s is refused before anything is emitted", (_name, options, message) => {
    expect(() => build(options)).toThrow(AllocConfigError);
    expect(() => build(options)).toThrow(message);
  });

  test("the default spacing follows a larger minimum alignment", async () => {
    const a = await build({}, 16).instantiate();
    const p = a.malloc(1), q = a.malloc(1);
    expect(p % 16).toBe(0);
    expect(q - p).toBe(32); // class 16, header 16
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

  test("memory + malloc + free, size-classes over free-list over grow: at most 900 bytes", () => {
    expect(size("free-list", ["malloc", "free"])).toBeLessThanOrEqual(900);
  });

  test("memory + the five C functions, size-classes over free-list over grow: at most 1,200 bytes", () => {
    expect(size("free-list", C_API)).toBeLessThanOrEqual(1200);
  });

  test("sizes of size-classes compositions (a change here is a reviewed change)", () => {
    expect({
      "free-list, malloc+free": size("free-list", ["malloc", "free"]),
      "free-list, C API": size("free-list", C_API),
      "bump, malloc+free": size("bump", ["malloc", "free"]),
      "bump, C API": size("bump", C_API),
      "free-list, imported memory, malloc+free": size("free-list", ["malloc", "free"], { memory: { mode: "import" } }),
    }).toMatchSnapshot();
  });
});
