/**
 * The checks every general-purpose stack must pass, whatever its layers: real traces and seeded
 * workloads replayed inside Wasm with every block verified, random operations against a JS
 * model, every alignment, impossible sizes, realloc's corner cases, bounded growth, every backend
 * and memory mode. Used by the tests of @alloc/free-list and @alloc/size-classes (test code only:
 * this folder is not published).
 */
import { binaryen, buildAllocator, growBackend, installAllocator, PAGE_SIZE, type BuildOptions, type Strategy } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import { BlockModel, rng, sharedTracesDir } from "@alloc/test-utils";
import { generateWorkload, parseTrace, replay, WORKLOADS } from "@alloc/trace";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";

export type Setup = Omit<BuildOptions, "strategy">;

/** The backends and memory modes a stack must work over. */
export const SETUPS: Readonly<Record<string, Setup>> = {
  "grow (own memory)": {},
  // Speed builds emit fast paths of their own (EmitContext.goal): the free list's carving in place.
  "grow (own memory), optimised for speed": { optimize: "speed" },
  "grow (own memory), debug build with the speed paths": { goal: "speed", debug: true },
  "grow (own memory, exclusive, exact growth)": { backend: growBackend({ exclusive: true, growth: "exact" }) },
  "grow (imported memory)": { memory: { mode: "import" } },
  "grow (own memory, Wasm MVP: no bulk memory)": { bulkMemory: false },
  "static region": { backend: staticBackend({ start: 2 * PAGE_SIZE, size: 256 * PAGE_SIZE }) },
  "static region (imported memory)": {
    backend: staticBackend({ start: PAGE_SIZE, size: 128 * PAGE_SIZE }),
    memory: { mode: "import" },
  },
};

export interface StackUnderTest {
  /** Names the stack in test titles. */
  readonly name: string;
  readonly stack: () => Strategy | Strategy[];
  /** What malloc(0) returns: 0, or a block. */
  readonly mallocZero: "null" | "block";
  /**
   * Which bounded-growth patterns apply: "all", or "small" for a stack whose large blocks go to
   * a strategy that does not reuse memory (bump).
   */
  readonly bounded: "all" | "small";
  /** The largest size random operations ask for (default 40 000). */
  readonly largest?: number;
}

/** Every C function, malloc_usable_size included. */
export const C_ALL = ["malloc", "free", "calloc", "realloc", "aligned_alloc", "malloc_usable_size"];

export async function instantiate(s: StackUnderTest, setup: Setup = {}) {
  const a = await buildAllocator({ strategy: s.stack(), exports: C_ALL, ...setup }).instantiate();
  const model = new BlockModel(() => new Uint8Array(a.memory.buffer));
  return { a, model, bytes: () => new Uint8Array(a.memory.buffer) };
}

/** Recorded traces in ../shared/traces, parsed; empty when the folder is absent. */
export function sharedTraces() {
  const dir = sharedTracesDir();
  const files = dir ? readdirSync(dir).filter((f) => f.endsWith(".trace")).sort() : [];
  return files.map((f) => parseTrace(readFileSync(join(dir!, f), "utf8"), f));
}

/** Random malloc/aligned_alloc/free/realloc, every block tagged and checked; `check` runs now and then. */
export async function randomOps(
  s: StackUnderTest,
  setup: Setup,
  options: { seed: number; ops: number; maxSize?: number; check?: (bytes: Uint8Array) => void },
) {
  const { a, model, bytes } = await instantiate(s, setup);
  const r = rng(options.seed);
  const maxSize = options.maxSize ?? 100_000;
  for (let i = 0; i < options.ops; i++) {
    const live = model.pointers();
    const op = r.next();
    if (op < 0.45 || live.length === 0) {
      const size = r.next() < 0.9 ? r.int(1, 300) : r.int(1, maxSize);
      const align = r.next() < 0.1 ? 2 ** r.int(0, 16) : 8;
      const p = align === 8 ? a.malloc(size) : a.aligned_alloc(align, size);
      expect(p, `op ${i}: ${align === 8 ? "malloc" : `aligned_alloc(${align},`}(${size})`).not.toBe(0);
      model.add(p, size, Math.max(align, 8));
      expect(a.malloc_usable_size(p)).toBeGreaterThanOrEqual(size);
    } else if (op < 0.85) {
      const p = r.pick(live);
      model.remove(p);
      a.free(p);
    } else {
      const p = r.pick(live);
      const size = r.int(1, 5000);
      const old = model.remove(p, size);
      const q = a.realloc(p, size);
      expect(q, `op ${i}: realloc(${p}, ${size})`).not.toBe(0);
      const mem = bytes();
      for (let k = 0; k < Math.min(old.size, size); k++) {
        if (mem[q + k] !== old.tag) throw new Error(`op ${i}: realloc(${p}, ${size}) -> ${q} lost byte +${k}`);
      }
      model.add(q, size, 8);
    }
    if (options.check && i % 256 === 0) options.check(bytes());
  }
  for (const p of model.pointers()) model.check(p);
  options.check?.(bytes());
  return { a, model };
}

/** Registers the conformance suite for one stack. */
export function conformance(s: StackUnderTest): void {
  describe(`${s.name}: traces and workloads, replayed inside Wasm and verified`, () => {
    const traces = sharedTraces();
    test.skipIf(traces.length === 0)("the recorded traces in ../shared/traces (memory at the end reported)", async () => {
      const report: Record<string, string> = {};
      for (const trace of traces) {
        const result = replay(await (await instantiate(s)).a, trace);
        expect(result.failedAllocations, trace.name).toBe(0);
        report[trace.name] = `peak memory ${result.peakMemoryBytes}, peak live ${result.peakLiveBytes}`;
      }
      console.log(`${s.name}:`, report);
      expect(report).toMatchSnapshot();
    });

    test.each(WORKLOADS.map((w) => w.name))("the seeded workload %s", async (name) => {
      // Verification tags every byte of every block, so the workloads of large blocks run shorter
      // (staircase: 100 steps, 120 MB of blocks; a stack that never reuses large blocks gets a
      // short large-blocks run: 50 MiB, not 500). tooling/bounds runs them at full length.
      const large = s.bounded === "all" ? 1_000 : 100;
      const ops: Record<string, number> = { "large-blocks": large, staircase: 300, "realloc-doubling": 2_000, "large-holes": 2_000 };
      const trace = generateWorkload(name, { ops: ops[name] ?? 20_000 });
      const result = replay((await instantiate(s)).a, trace);
      expect(result.failedAllocations).toBe(0);
      if (s.bounded === "all") expect(result.peakMemoryBytes).toBeLessThanOrEqual(4 * result.peakLiveBytes + 16 * PAGE_SIZE);
    });
  });

  describe.each(Object.entries(SETUPS))(`${s.name} over %s`, (_name, setup) => {
    test("random operations: aligned, disjoint blocks that keep their contents", async () => {
      await randomOps(s, setup, { seed: 7, ops: 4_000, maxSize: s.largest ?? 40_000 });
    });

    test("aligned_alloc: every power of two from 1 to 65536, several sizes each", async () => {
      const { a, model } = await instantiate(s, setup);
      for (let align = 1; align <= PAGE_SIZE; align *= 2) {
        for (const size of [1, 24, 300, 5000]) {
          const p = a.aligned_alloc(align, size);
          expect(p, `aligned_alloc(${align}, ${size})`).not.toBe(0);
          model.add(p, size, Math.max(align, 8));
        }
      }
      for (const p of model.pointers()) {
        model.remove(p);
        a.free(p);
      }
      // Everything, gaps in front of aligned blocks included, went back: a block the size of
      // all of that fits without the memory growing.
      const before = a.memoryBytes();
      const p = a.malloc(200_000);
      expect(p).not.toBe(0);
      if (s.bounded === "all") expect(a.memoryBytes()).toBe(before);
    });

    test("impossible sizes return 0, grow nothing, and the heap keeps working", async () => {
      const { a, model } = await instantiate(s, setup);
      const p = a.malloc(100);
      model.add(p, 100);
      const before = a.memoryBytes();
      // Sizes that overflow when rounded or when a header is added, and sizes no memory holds.
      // (None of them may reach the backend: on a 64-bit host a 4 GiB memory can really grow.)
      for (const size of [0xffffffff, 0xfffffffc, 0xfffffff9, 0xfffffff8, 0xfffffff0, 0xffff0000, 0xfffe0001]) {
        expect(a.malloc(size), `malloc(${size})`).toBe(0);
        expect(a.aligned_alloc(4096, size), `aligned_alloc(4096, ${size})`).toBe(0);
        expect(a.realloc(p, size), `realloc(p, ${size})`).toBe(0);
        expect(a.calloc(1, size)).toBe(0);
      }
      expect(a.memoryBytes()).toBe(before); // wee_alloc #100: a refused request grows nothing
      model.check(p);
      const q = a.malloc(1000);
      model.add(q, 1000);
      model.remove(p);
      a.free(p);
    });

    test("size 0, free(0), realloc to 0 and from 0", async () => {
      const { a, model } = await instantiate(s, setup);
      const z = a.malloc(0);
      if (s.mallocZero === "null") expect(z).toBe(0);
      else {
        expect(z).not.toBe(0);
        expect(z % 8).toBe(0);
      }
      a.free(z);
      a.free(0); // nothing happens
      const p = a.realloc(0, 40); // realloc from 0 is malloc
      expect(p).not.toBe(0);
      model.add(p, 40);
      model.remove(p);
      expect(a.realloc(p, 0)).toBe(0); // realloc to 0 frees
      const q = a.malloc(40); // ...so the same block comes back
      expect(q).toBe(p);
      if (s.mallocZero === "null") expect(a.calloc(0, 10)).toBe(0);
      else expect(a.calloc(0, 10)).not.toBe(0);
    });

    test("calloc zeroes blocks that reuse dirty memory", async () => {
      const { a, bytes } = await instantiate(s, setup);
      const blocks = [8, 100, 3000, 70_000].map((n) => a.malloc(n));
      for (const [i, p] of blocks.entries()) bytes().fill(0xab, p, p + [8, 100, 3000, 70_000][i]!);
      for (const p of blocks) a.free(p);
      for (const n of [8, 100, 3000, 70_000]) {
        const p = a.calloc(1, n);
        expect(p).not.toBe(0);
        expect(bytes().subarray(p, p + n).every((b) => b === 0), `calloc(1, ${n})`).toBe(true);
      }
    });
  });

  describe(`${s.name}: bounded growth`, () => {
    test("wee_alloc #106: allocate two large blocks, free them in order, many times", async () => {
      if (s.bounded !== "all") return;
      const { a } = await instantiate(s);
      let afterFirst = 0;
      for (let round = 0; round < 300; round++) {
        const x = a.malloc(340_784); // Box::new([0; 85196]) of i32
        const y = a.malloc(320_000);
        expect(x && y).not.toBe(0);
        a.free(x);
        a.free(y);
        if (round === 0) afterFirst = a.memoryBytes();
      }
      expect(a.memoryBytes()).toBe(afterFirst);
      expect(afterFirst).toBeLessThanOrEqual(340_784 + 320_000 + 2 * PAGE_SIZE);
    });

    test("many blocks of a size, every other one freed, slightly larger ones allocated, for many rounds", async () => {
      // Exact growth, so that the page counts below measure placement: the default backend rounds
      // every growth up to a sixteenth of the memory (3 pages here), which no 2-page allowance fits.
      const { a, model } = await instantiate(s, { backend: growBackend({ growth: "exact" }) });
      const r = rng(3);
      let kept: number[] = [];
      let warm = 0;
      const rounds = 120;
      for (let round = 0; round < rounds; round++) {
        const size = (s.bounded === "all" ? r.pick([24, 40, 64, 120, 200, 480, 1000, 3000]) : r.pick([24, 40, 64, 120, 200]));
        const blocks: number[] = [];
        for (let i = 0; i < 400; i++) {
          const p = a.malloc(size);
          model.add(p, size);
          blocks.push(p);
        }
        for (let i = 0; i < blocks.length; i += 2) {
          model.remove(blocks[i]!);
          a.free(blocks[i]!);
        }
        const larger: number[] = [];
        for (let i = 0; i < 200; i++) {
          const p = a.malloc(size + 8);
          model.add(p, size + 8);
          larger.push(p);
        }
        // The previous round's survivors go; this round's stay until the next.
        for (const p of kept) {
          model.remove(p);
          a.free(p);
        }
        kept = [...blocks.filter((_, i) => i % 2 === 1), ...larger];
        if (round === rounds / 2) warm = a.memoryBytes();
      }
      const peak = model.peakLiveBytes;
      expect(a.memoryBytes(), `peak live ${peak}`).toBeLessThanOrEqual(2 * peak + 4 * PAGE_SIZE);
      // By half time every size has come up a few times: memory stops growing.
      expect(a.memoryBytes()).toBeLessThanOrEqual(warm + 2 * PAGE_SIZE);
    });
  });

  describe(`${s.name}: a host that grows the exported memory too`, () => {
    // The default backend: the host may grow the memory it was given and use the pages it grew.
    test.each<[string, Setup]>([
      ["own memory", {}],
      ["imported memory", { memory: { mode: "import" } }],
      ["own memory, debug build (the walker checks the heap at the end)", { debug: true }],
      ["imported memory, debug build", { memory: { mode: "import" }, debug: true }],
    ])("%s: no block lands in pages the host grew, nothing traps, and the heap stays sound", async (_name, setup) => {
      const { a, model } = await instantiate(s, setup);
      const r = rng(17);
      const live: number[] = [];
      const hostPages: number[] = [];
      for (let i = 0; i < 600; i++) {
        if (i % 100 === 50) {
          // The host grows the memory by a page and fills it.
          const page = a.memory.grow(1) * PAGE_SIZE;
          new Uint8Array(a.memory.buffer).fill(0xab, page, page + PAGE_SIZE);
          hostPages.push(page);
        }
        if (live.length > 20 && r.next() < 0.4) {
          const p = live.splice(r.int(0, live.length - 1), 1)[0]!;
          model.remove(p);
          a.free(p);
        }
        const size = r.pick([24, 200, 3000, 40_000]);
        const p = a.malloc(size);
        expect(p).not.toBe(0);
        for (const page of hostPages) expect(p + size <= page || p >= page + PAGE_SIZE, `block ${p} in the host's page ${page}`).toBe(true);
        model.add(p, size);
        live.push(p);
      }
      const bytes = new Uint8Array(a.memory.buffer);
      for (const page of hostPages) expect(bytes.subarray(page, page + PAGE_SIZE).every((b) => b === 0xab)).toBe(true);
      if (setup.debug) a.checkHeap();
    });
  });

  describe(`${s.name}: delivery`, () => {
    test("installed into an existing module, called from the module's own code", async () => {
      const module = new binaryen.Module();
      try {
        module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
        module.setMemory(1, 100, "mem");
        const installed = installAllocator(module, { strategy: s.stack(), exports: ["malloc", "free", "realloc"] });
        // The module's own function: allocate 100 bytes, free them, allocate again; returns the
        // difference between the two addresses (0: the freed block was reused).
        const i32 = binaryen.i32;
        const malloc = installed.functions.malloc!, free = installed.functions.free!;
        module.addFunction("again", binaryen.none, i32, [i32], module.block(null, [
          module.local.set(0, module.call(malloc, [module.i32.const(100)], i32)),
          module.call(free, [module.local.get(0, i32)], binaryen.none),
          module.i32.sub(module.call(malloc, [module.i32.const(100)], i32), module.local.get(0, i32)),
        ], i32));
        module.addFunctionExport("again", "again");
        expect(module.validate()).toBe(1);
        const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
        const exports = instance.exports as Record<string, (...args: number[]) => number> & { mem: WebAssembly.Memory };
        expect(exports.again!()).toBe(0);
        const p = exports.malloc!(50) >>> 0;
        expect(p).toBeGreaterThanOrEqual(PAGE_SIZE); // the module's own page is never handed out
        new Uint8Array(exports.mem.buffer).fill(5, p, p + 50);
        const q = exports.realloc!(p, 5000) >>> 0;
        expect(new Uint8Array(exports.mem.buffer).subarray(q, q + 50).every((b) => b === 5)).toBe(true);
      } finally {
        module.dispose();
      }
    });

    test("not exclusive: pages another party grows in between are never handed out", async () => {
      const { a, model } = await instantiate(s, { backend: growBackend({ exclusive: false }) });
      const p = a.malloc(60_000);
      model.add(p, 60_000);
      const hostPage = a.memory.grow(1) * PAGE_SIZE;
      new Uint8Array(a.memory.buffer).fill(0x99, hostPage, hostPage + PAGE_SIZE);
      for (let i = 0; i < 20; i++) {
        const size = i % 2 ? 30_000 : 100;
        const q = a.malloc(size);
        expect(q + size <= hostPage || q >= hostPage + PAGE_SIZE, `block ${q} inside the host's page`).toBe(true);
        model.add(q, size);
      }
      expect(new Uint8Array(a.memory.buffer).subarray(hostPage, hostPage + PAGE_SIZE).every((b) => b === 0x99)).toBe(true);
    });
  });
}
