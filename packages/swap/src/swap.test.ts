import { bump } from "@alloc/bump";
import { AllocConfigError, binaryen, type Strategy } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, test } from "vitest";
import { runWasi, swapAllocator, takeSwapFault, type SwapResult } from "./index.ts";
import { unquoteName } from "./swap.ts";

/** The C programs of fixtures/ (rebuilt by `pnpm --filter @alloc/swap fixtures`). */
const FIXTURES = ["strings", "realloc_growth", "calloc", "memalign"] as const;
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}.wasm`, import.meta.url)));

/**
 * The compositions every fixture is swapped for. Bump is not valid for realloc_growth: it never
 * reuses memory, so the program's 20,000 reallocs take 280 MB (and node 20 crashes in its
 * teardown after a WASI run with that much memory).
 */
const COMPOSITIONS: readonly { name: string; strategy: () => Strategy[]; skip?: readonly string[] }[] = [
  { name: "free-list", strategy: () => [freeList()] },
  { name: "size-classes > free-list", strategy: () => [sizeClasses(), freeList()] },
  { name: "bump", strategy: () => [bump()], skip: ["realloc_growth"] },
];

/** The original program's run: what every swap must reproduce byte for byte. */
const original = new Map<string, { exitCode: number; stdout: string }>();
beforeAll(async () => {
  for (const name of FIXTURES) {
    const run = await runWasi(fixture(name));
    original.set(name, { exitCode: run.exitCode, stdout: Buffer.from(run.stdout).toString("latin1") });
  }
});

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

describe.each(FIXTURES)("%s.wasm", (name) => {
  test("the original runs (the reference output)", () => {
    expect(original.get(name)!.exitCode).toBe(0);
    expect(original.get(name)!.stdout.length).toBeGreaterThan(20);
  });

  for (const composition of COMPOSITIONS) {
    if (composition.skip?.includes(name)) continue;
    test(`swapped for ${composition.name}: same output, validates, dlmalloc gone, smaller`, async () => {
      let swapped: SwapResult;
      try {
        swapped = swapAllocator(fixture(name), { strategy: composition.strategy() });
      } catch (error) {
        // bump cannot serve malloc_usable_size: refused, and saying so.
        expect(composition.name).toBe("bump");
        expect(name).toBe("memalign");
        expect(error).toBeInstanceOf(AllocConfigError);
        expect((error as Error).message).toMatch(/malloc_usable_size .*free-list/);
        return;
      }
      const { binary, report } = swapped;
      expect(WebAssembly.validate(binary as BufferSource)).toBe(true);
      const run = await runWasi(binary);
      expect(run.exitCode).toBe(0);
      expect(text(run.stdout)).toBe(original.get(name)!.stdout);
      // The old allocator is gone, names are kept.
      const functions = WebAssembly.Module.customSections(new WebAssembly.Module(binary as BufferSource), "name");
      expect(functions.length).toBe(1);
      const names = text(new Uint8Array(functions[0]!));
      for (const old of ["dlmalloc", "dlfree", "sbrk", "dispose_chunk", "internal_memalign"]) expect(names).not.toContain(old);
      expect(names).toContain("~alloc/");
      expect(names).toContain("printf");
      expect(report.removed).toContain("sbrk");
      expect(report.found.map((e) => e.function)).toContain("dlfree");
      // Smaller than the input, and than the input optimised the same way (the allocator's share).
      expect(report.sizes.after).toBe(binary.byteLength);
      expect(report.sizes.after).toBeLessThan(report.sizes.before);
      expect(report.sizes.after).toBeLessThan(report.sizes.beforeOptimized! - 3000);
      expect(report.heap.start).toBeGreaterThan(65536);
      expect(report.heap.start).toBeLessThan(report.heap.initialEnd);
      expect(report.notes.join("\n")).toMatch(/enabled bulk memory/);
    });
  }

  test("a debug composition swapped in reports no fault, and its heap walker passes after the run", async () => {
    const { binary, report } = swapAllocator(fixture(name), { strategy: [sizeClasses(), freeList()], debug: true });
    const run = await runWasi(binary);
    if (run.trap) throw takeSwapFault(run.instance, report, run.trap) ?? run.trap;
    expect(takeSwapFault(run.instance, report)).toBeUndefined();
    expect(text(run.stdout)).toBe(original.get(name)!.stdout);
    const heapCheck = run.instance.exports[report.debug!.heapCheckExport] as () => void;
    try {
      heapCheck();
    } catch (error) {
      throw takeSwapFault(run.instance, report, error) ?? error;
    }
  });
});

describe("the heap, bulk memory, options", () => {
  test("the heap uses the initial memory from __heap_base before growing", async () => {
    const { binary, report } = swapAllocator(fixture("imports"));
    const instance = await WebAssembly.instantiate(new WebAssembly.Module(binary as BufferSource));
    const memory = instance.exports.memory as WebAssembly.Memory;
    const initial = memory.buffer.byteLength;
    expect(initial).toBe(report.heap.initialEnd);
    expect(report.heap.start % 16).toBe(0);
    expect(report.heap.start).toBeLessThan(initial - 30_000);
    // A few hundred small blocks fit between __heap_base and the end of the initial memory.
    (instance.exports.run as (n: number) => number)(300);
    expect(memory.buffer.byteLength).toBe(initial);
    // More than fits: the memory grows.
    (instance.exports.run as (n: number) => number)(20_000);
    expect(memory.buffer.byteLength).toBeGreaterThan(initial);
    // A heap that starts past the initial memory grows for the first block.
    const past = swapAllocator(fixture("imports"), { heapBase: initial, baseline: false });
    expect(past.report.notes.join("\n")).toMatch(/past the initial memory/);
    const other = await WebAssembly.instantiate(new WebAssembly.Module(past.binary as BufferSource));
    (other.exports.run as (n: number) => number)(300);
    expect((other.exports.memory as WebAssembly.Memory).buffer.byteLength).toBeGreaterThan(initial);
  });

  test("bulkMemory: false emits no bulk-memory instruction and says nothing about enabling it", async () => {
    const { binary, report } = swapAllocator(fixture("realloc_growth"), { bulkMemory: false });
    expect(report.bulkMemory).toBe(false);
    expect(report.notes.join("\n")).not.toMatch(/bulk memory/);
    // memory.copy is 0xfc 0x0a, memory.fill 0xfc 0x0b.
    const hex = Buffer.from(binary).toString("hex");
    expect(hex).not.toMatch(/fc0a0000|fc0b00/);
    const run = await runWasi(binary);
    expect(text(run.stdout)).toBe(original.get("realloc_growth")!.stdout);
  });

  test("optimize none only removes the old allocator; the program's code is as it was", async () => {
    const { binary, report } = swapAllocator(fixture("calloc"), { optimize: "none" });
    expect(report.sizes.beforeOptimized).toBeUndefined();
    expect(report.removed).toContain("dlmalloc");
    const run = await runWasi(binary);
    expect(text(run.stdout)).toBe(original.get("calloc")!.stdout);
  });

  test("optimize speed inlines the allocator's helpers into its entries, as a standalone speed build does", async () => {
    const names = (bytes: Uint8Array) => {
      const module = binaryen.readBinary(bytes);
      try {
        return Array.from({ length: module.getNumFunctions() }, (_, i) => binaryen.getFunctionInfo(module.getFunctionByIndex(i)).name);
      } finally {
        module.dispose();
      }
    };
    const helpers = (bytes: Uint8Array) => names(bytes).filter((n) => /^~alloc\/free-list\/(unlink|push|take|trim|bin)$/.test(n));
    // Optimised for size, Binaryen's own limits keep the free list's helpers as functions.
    expect(helpers(swapAllocator(fixture("strings"), { baseline: false }).binary)).not.toEqual([]);
    const speed = swapAllocator(fixture("strings"), { optimize: "speed", baseline: false }).binary;
    expect(helpers(speed)).toEqual([]);
    expect(text((await runWasi(speed)).stdout)).toBe(original.get("strings")!.stdout);
  });

  test("the composition's names must not clash with the program's", () => {
    expect(() => swapAllocator(fixture("strings"), { prefix: "a/b" })).toThrow(/prefix/);
    expect(() => swapAllocator(fixture("strings"), { misspelt: 1 } as never)).toThrow(/unknown option "misspelt"/);
  });
});

describe("refusals", () => {
  test("a stripped program is refused with what to do", () => {
    const run = () => swapAllocator(fixture("strings.stripped"));
    expect(run).toThrow(AllocConfigError);
    expect(run).toThrow(/no name section .*--strip-all.*-Wl,--export=malloc/);
  });

  test("a module without an allocator", () => {
    const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1]);
    expect(() => swapAllocator(empty)).toThrow(/found no allocator entry point/);
  });

  test("not a module", () => {
    expect(() => swapAllocator(new Uint8Array([1, 2, 3]))).toThrow(/not a valid WebAssembly module/);
  });
});

describe("other ways in", () => {
  test("a module that imports malloc, free, calloc and realloc: the imports are removed and served by ours", async () => {
    const { binary, report } = swapAllocator(fixture("imports"));
    expect(report.found.map((e) => `${e.role} by ${e.via}`).sort()).toEqual(
      ["calloc by import", "free by import", "malloc by import", "realloc by import"],
    );
    const module = new WebAssembly.Module(binary as BufferSource);
    expect(WebAssembly.Module.imports(module)).toEqual([]);
    const instance = await WebAssembly.instantiate(module);
    const run = instance.exports.run as (n: number) => number;
    const expected = (n: number) => {
      let sum = 0;
      for (let i = n - 1; i >= 0; i--) sum = (Math.imul(sum, 31) + Math.imul(i, 2654435761)) >>> 0;
      return sum;
    };
    for (const n of [1, 5, 1000, 20_000]) expect(run(n) >>> 0).toBe(expected(n));
  });

  test("an imported memory (--import-memory): the heap from __heap_base in the memory the host gives", async () => {
    const { binary, report } = swapAllocator(fixture("imports.import-memory"));
    const module = new WebAssembly.Module(binary as BufferSource);
    expect(WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`)).toEqual(["env.memory"]);
    const memory = new WebAssembly.Memory({ initial: report.heap.initialEnd / 65536 });
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const run = instance.exports.run as (n: number) => number;
    const reference = await WebAssembly.instantiate(new WebAssembly.Module(swapAllocator(fixture("imports"), { baseline: false }).binary as BufferSource));
    for (const n of [3, 300, 30_000]) expect(run(n)).toBe((reference.exports.run as (n: number) => number)(n));
  });

  test("DWARF is dropped (it would describe the old code), and the report says so", () => {
    const bytes = fixture("strings");
    const name = new TextEncoder().encode(".debug_info");
    const payload = new Uint8Array([0, 1 + name.length + 3, name.length, ...name, 1, 2, 3]);
    const { binary, report } = swapAllocator(new Uint8Array([...bytes, ...payload]), { baseline: false });
    expect(report.notes.join("\n")).toMatch(/dropped the DWARF sections \(\.debug_info\)/);
    expect(WebAssembly.Module.customSections(new WebAssembly.Module(binary as BufferSource), ".debug_info")).toEqual([]);
  });

  test("an exported __heap_base is where the heap starts", () => {
    const { report } = swapAllocator(fixture("calloc.heap-base"));
    expect(report.heap.source).toBe("__heap_base (exported)");
    const derived = swapAllocator(fixture("calloc")).report.heap.start;
    expect(report.heap.start).toBe(derived);
  });
});

describe("refusals of modules that would mix two allocators", () => {
  /** strings.wasm with free and dlfree renamed (same length) in its name section: swap cannot know them. */
  const renamedFree = () => {
    const bytes = Buffer.from(fixture("strings"));
    const names = bytes.lastIndexOf(Buffer.from("\x04name"));
    for (const [from, to] of [["\x04free", "\x04fre_"], ["\x06dlfree", "\x06dlfre_"]] as const) {
      const at = bytes.indexOf(Buffer.from(from), names);
      expect(at).toBeGreaterThan(names);
      bytes.write(to, at, "latin1");
    }
    return new Uint8Array(bytes);
  };

  test("an entry point under a name swap does not know: the old allocator's code stays reachable, refused with what to do", () => {
    const run = () => swapAllocator(renamedFree());
    expect(run).toThrow(AllocConfigError);
    expect(run).toThrow(/old allocator would stay reachable: "dlfre_" \(uses the removed allocator's state at \d+, \d+, \d+\.\.\.\), called by "fre_"/);
    expect(run).toThrow(/export it under its C name \(-Wl,--export=malloc/);
  });

  test("shared memory is refused until the thread-safe build exists", () => {
    const module = new binaryen.Module();
    try {
      module.setFeatures(binaryen.Features.MVP | binaryen.Features.Atomics);
      module.setMemory(1, 10, "memory", [], true);
      module.addFunction("malloc", binaryen.i32, binaryen.i32, [], module.i32.const(0));
      module.addFunctionExport("malloc", "malloc");
      expect(() => swapAllocator(module.emitBinary())).toThrow(/shared \(built with threads\).*until the thread-safe build exists/);
    } finally {
      module.dispose();
    }
  });
});

describe("stripped programs that export their allocator", () => {
  test("every entry point exported: found by export, swapped, same output", async () => {
    const { binary, report } = swapAllocator(fixture("strings.stripped-exports"));
    expect(report.found.map((e) => `${e.role} by ${e.via}`)).toEqual(["malloc by export", "free by export"]);
    expect(report.notes.join("\n")).toMatch(/no name section: entry points were found by export only/);
    // Without names the stack pointer is still found (wasm-ld's mutable globals): the heap starts above the stack.
    expect(report.heap.start).toBe(swapAllocator(fixture("strings"), { baseline: false }).report.heap.start);
    const run = await runWasi(binary);
    expect(text(run.stdout)).toBe(original.get("strings")!.stdout);
  });

  test("only malloc exported: free's dlmalloc code would stay, refused", () => {
    const run = () => swapAllocator(fixture("strings.stripped-malloc"));
    expect(run).toThrow(/old allocator would stay reachable: function \d+ \(uses the removed allocator's state at .*rebuild without --strip-all, or export every allocator function/);
  });
});

describe("Rust (wasm32-unknown-unknown, std's global allocator)", () => {
  const rust = fixture("rust_churn");
  const runs = async (binary: Uint8Array) => {
    const instance = await WebAssembly.instantiate(new WebAssembly.Module(binary as BufferSource));
    const run = instance.exports.run as (n: number) => number;
    return [0, 1, 50, 999, 5000, 20_000].map((n) => run(n) >>> 0);
  };

  for (const composition of COMPOSITIONS.filter((c) => c.name !== "bump")) {
    test(`swapped for ${composition.name}: __rust_* and __rdl_* call ours, the same results, Rust's dlmalloc gone`, async () => {
      const { binary, report } = swapAllocator(rust, { strategy: composition.strategy() });
      const found = report.found.map((e) => e.function);
      for (const f of ["__rust_alloc", "__rust_dealloc", "__rust_realloc", "__rdl_alloc", "__rdl_dealloc", "__rdl_realloc"]) expect(found).toContain(f);
      expect(report.found.map((e) => e.role)).toContain("rust_realloc");
      expect(report.heap.source).toBe("__heap_base (exported)");
      expect(await runs(binary)).toEqual(await runs(rust));
      const names = text(new Uint8Array(WebAssembly.Module.customSections(new WebAssembly.Module(binary as BufferSource), "name")[0]!));
      expect(names).not.toContain("8dlmalloc");
      expect(report.sizes.after).toBeLessThan(report.sizes.beforeOptimized! - 3000);
    });
  }

  test("without bulk memory (byte loops for the over-aligned paths): the same results", async () => {
    const { binary } = swapAllocator(rust, { bulkMemory: false });
    expect(await runs(binary)).toEqual(await runs(rust));
  });
});

test("Rust with its own #[global_allocator] (__rust_alloc -> __rg_alloc): replaced too, same results, memory reused", async () => {
  const custom = fixture("rust_custom");
  const { binary, report } = swapAllocator(custom);
  expect(report.found.map((e) => e.function)).toEqual(expect.arrayContaining(["__rg_alloc", "__rg_dealloc", "__rg_realloc", "__rust_alloc"]));
  expect(report.removed).toContain("__rg_alloc");
  const results = async (bytes: Uint8Array) => {
    const instance = await WebAssembly.instantiate(new WebAssembly.Module(bytes as BufferSource));
    const run = instance.exports.run as (n: number) => number;
    const out = [10, 1000, 30_000].map((n) => run(n) >>> 0);
    return { out, memory: (instance.exports.memory as WebAssembly.Memory).buffer.byteLength };
  };
  const [before, after] = [await results(custom), await results(binary)];
  expect(after.out).toEqual(before.out);
  // The program's bump allocator never reuses memory and grows it; ours stays in the initial memory above __heap_base.
  expect(before.memory).toBeGreaterThan(report.heap.initialEnd);
  expect(after.memory).toBe(report.heap.initialEnd);
});

describe("Zig (0.11, wasm32-wasi, std.heap.c_allocator over its wasi-libc's emmalloc)", () => {
  const zig = fixture("zig_churn");
  let reference: string;
  beforeAll(async () => {
    const run = await runWasi(zig);
    expect(run.exitCode).toBe(0);
    reference = text(run.stdout);
  });

  test("the original runs (the reference output)", () => {
    expect(reference).toMatch(/^strings: 64 live.*\nlist: .*\nmap: 1000 keys.*\naligned: 200\/200\n$/s);
  });

  for (const composition of COMPOSITIONS.filter((c) => c.name !== "bump")) {
    test(`swapped for ${composition.name}: same output, validates, emmalloc gone, heap above the .bss`, async () => {
      const { binary, report } = swapAllocator(zig, { strategy: composition.strategy() });
      expect(WebAssembly.validate(binary as BufferSource)).toBe(true);
      expect(report.found.map((e) => e.function)).toEqual(expect.arrayContaining(["malloc", "free", "calloc", "emmalloc_memalign"]));
      expect(report.removed).toEqual(expect.arrayContaining(["emmalloc_memalign", "attempt_allocate", "sbrk"]));
      const run = await runWasi(binary);
      expect(run.exitCode).toBe(0);
      expect(text(run.stdout)).toBe(reference);
      const names = text(new Uint8Array(WebAssembly.Module.customSections(new WebAssembly.Module(binary as BufferSource), "name")[0]!));
      for (const old of ["emmalloc", "attempt_allocate", "sbrk"]) expect(names).not.toContain(old);
      // Zig's names survive (quoted in Binaryen's text, with ' escaped).
      expect(names).toContain("heap.CAllocator.alloc");
      expect(names).toContain("~alloc/");
      // Zig links the stack first: data segments end at 1,050,592, the .bss (errno, emmalloc's
      // state) runs to __heap_base, 1,050,640, which no segment and no global says.
      expect(report.heap.source).toMatch(/static addresses the code uses/);
      expect(report.heap.start).toBe(1_050_640);
      expect(report.sizes.after).toBeLessThan(report.sizes.before);
    });
  }

  test("a debug composition swapped in reports no fault, and its heap walker passes after the run", async () => {
    const { binary, report } = swapAllocator(zig, { strategy: [sizeClasses(), freeList()], debug: true });
    const run = await runWasi(binary);
    if (run.trap) throw takeSwapFault(run.instance, report, run.trap) ?? run.trap;
    expect(text(run.stdout)).toBe(reference);
    (run.instance.exports[report.debug!.heapCheckExport] as () => void)();
  });

  test("quoted names of Binaryen's text are unquoted as Binaryen escapes them (not JSON: \\' is no JSON escape)", () => {
    expect(unquoteName(String.raw`"a(function \'write\').b"`)).toBe("a(function 'write').b");
    expect(unquoteName(String.raw`"x\"y\\z\t\5c\c3\a9"`)).toBe("x\"y\\z\t\\é");
    expect(unquoteName(String.raw`"\u{1F600}ok"`)).toBe("\u{1F600}ok");
  });
});
