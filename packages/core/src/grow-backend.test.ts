import { describe, expect, test } from "vitest";
import { AllocConfigError, buildAllocator, growBackend, PAGE_SIZE, type BuildOptions, type GrowBackendOptions } from "./index.ts";
import { pagePerBlock } from "./testing.ts";

/**
 * page-per-block (one fresh page per malloc) over the grow backend, and a counter of memory.grow
 * calls. By default over an imported memory: there the backend hands out pages through
 * `allocPages` and keeps its reserve (a module that owns its memory gives strategies a run
 * instead, whose growth the strategies' own tests measure).
 */
async function heap(backend: GrowBackendOptions, setup: Omit<BuildOptions, "strategy"> = { memory: { mode: "import" } }, memory?: WebAssembly.Memory) {
  const a = await buildAllocator({ strategy: pagePerBlock(), backend: growBackend(backend), exports: ["malloc"], ...setup }).instantiate(
    memory ? { memory } : {},
  );
  let grows = 0;
  let bytes = a.memoryBytes();
  const malloc = (size = 8) => {
    const p = a.malloc(size);
    if (a.memoryBytes() !== bytes) grows++;
    bytes = a.memoryBytes();
    return p;
  };
  return { a, malloc, grows: () => grows, pages: () => a.memoryBytes() / PAGE_SIZE };
}

/** Blocks are page aligned, inside the memory, and distinct (page-per-block gives each its own page). */
function expectDistinctPages(blocks: number[], memoryBytes: number) {
  expect(new Set(blocks).size).toBe(blocks.length);
  for (const p of blocks) {
    expect(p % PAGE_SIZE).toBe(0);
    expect(p).toBeGreaterThan(0);
    expect(p + PAGE_SIZE).toBeLessThanOrEqual(memoryBytes);
  }
}

describe("growth policy", () => {
  test("by default memory grows in steps of at least a sixteenth: 2000 one-page requests, few memory.grow calls", async () => {
    const h = await heap({});
    const blocks = Array.from({ length: 2000 }, () => h.malloc());
    expectDistinctPages(blocks, h.a.memoryBytes());
    // 1 -> 16 pages one at a time, then by a sixteenth (log(2001 / 16) / log(17 / 16), about 80):
    // about 95 grows in all, against 2000 with exact growth.
    expect(h.grows()).toBeLessThan(110);
    // At most a sixteenth more than needed (2001 pages with page 0) is held.
    expect(h.pages()).toBeLessThanOrEqual(Math.ceil(2001 * 1.0625) + 1);
  });

  test('"exact" grows once per request, by just the pages asked for', async () => {
    const h = await heap({ growth: "exact" });
    const blocks = Array.from({ length: 300 }, () => h.malloc());
    expectDistinctPages(blocks, h.a.memoryBytes());
    expect(h.grows()).toBe(300);
    expect(h.pages()).toBe(301);
  });

  test("a larger step (1/2) grows less often than the default", async () => {
    const half = await heap({ growth: 1 / 2 });
    const sixteenth = await heap({});
    const blocks = { half: [] as number[], sixteenth: [] as number[] };
    for (let i = 0; i < 1000; i++) blocks.half.push(half.malloc()), blocks.sixteenth.push(sixteenth.malloc());
    expectDistinctPages(blocks.half, half.a.memoryBytes());
    expectDistinctPages(blocks.sixteenth, sixteenth.a.memoryBytes());
    expect(half.grows()).toBeLessThan(sixteenth.grows());
  });

  test("reserve pages are handed out in order, adjacent to the pages before them", async () => {
    const h = await heap({});
    const blocks = Array.from({ length: 200 }, () => h.malloc());
    expect(blocks).toEqual(blocks.map((_, i) => (i + 1) * PAGE_SIZE));
  });

  test.each<[string, GrowBackendOptions, Omit<BuildOptions, "strategy">, number]>([
    ["the backend's maximum", { maximumPages: 100 }, {}, 100],
    ["the module's declared maximum", {}, { memory: { maximumPages: 90 } }, 90],
    ["the backend's maximum over an imported memory", { maximumPages: 70 }, { memory: { mode: "import" } }, 70],
  ])("the step is capped by %s, which is never passed; refusal returns 0 and leaves the heap usable", async (_name, backend, setup, max) => {
    const h = await heap(backend, setup);
    const blocks: number[] = [];
    for (let p = h.malloc(); p !== 0; p = h.malloc()) {
      blocks.push(p);
      expect(h.pages()).toBeLessThanOrEqual(max);
    }
    // Every page but page 0 was handed out, none twice.
    expect(blocks.length).toBe(max - 1);
    expectDistinctPages(blocks, h.a.memoryBytes());
    expect(h.malloc()).toBe(0);
    expect(h.pages()).toBe(max);
  });

  test("an imported memory whose host maximum refuses the step still grows by the pages asked for", async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 20 });
    const h = await heap({}, undefined, memory);
    const blocks: number[] = [];
    for (let p = h.malloc(); p !== 0; p = h.malloc()) blocks.push(p);
    expect(blocks.length).toBe(19);
    expectDistinctPages(blocks, memory.buffer.byteLength);
  });

  test("a reserve separated by pages the host grew is dropped: no block in the host's pages", async () => {
    const h = await heap({});
    const blocks = Array.from({ length: 30 }, () => h.malloc());
    // 31 pages in use, and a reserve: the last grow was by a sixteenth of 17 or more pages.
    expect(h.pages()).toBeGreaterThan(31);
    const hostPage = h.a.memory.grow(1);
    new Uint8Array(h.a.memory.buffer, hostPage * PAGE_SIZE, PAGE_SIZE).fill(0xab);
    blocks.push(...Array.from({ length: 100 }, () => h.malloc()));
    expectDistinctPages(blocks, h.a.memoryBytes());
    expect(blocks).not.toContain(hostPage * PAGE_SIZE);
    // The reserve below the host's page was used up first: every page below it is a block.
    for (let page = 1; page < hostPage; page++) expect(blocks).toContain(page * PAGE_SIZE);
    expect(new Uint8Array(h.a.memory.buffer, hostPage * PAGE_SIZE, PAGE_SIZE).every((b) => b === 0xab)).toBe(true);
  });

  test.each<[string, unknown, RegExp]>([
    ["not a power-of-two fraction", 0.3, /growth must be "exact" or a fraction .* got 0\.3/],
    ["more than the memory", 2, /growth must be/],
    ["a string", "1/8", /growth must be .* got "1\/8"/],
    ["exclusive as a string", undefined, /exclusive must be true or false, got "no"/],
  ])("growth option %s is refused", (_name, growth, message) => {
    const make = () => growBackend(growth === undefined ? ({ exclusive: "no" } as never) : ({ growth } as never));
    expect(make).toThrow(AllocConfigError);
    expect(make).toThrow(message);
  });

  test("code size: exact matches the backend without a policy; the default reserve costs under 120 bytes (imported memory, which also checks the limit)", () => {
    const size = (backend: GrowBackendOptions) =>
      buildAllocator({ strategy: pagePerBlock(), backend: growBackend(backend), exports: ["malloc"], memory: { mode: "import" } }).size;
    const exact = size({ growth: "exact" });
    expect(size({}) - exact).toBeGreaterThan(0);
    expect(size({}) - exact).toBeLessThan(120);
  });
});
