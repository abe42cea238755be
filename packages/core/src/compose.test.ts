import { describe, expect, test } from "vitest";
import {
  AllocConfigError,
  binaryen,
  buildAllocator,
  growBackend,
  installAllocator,
  PAGE_SIZE,
  type PageBackend,
  type Strategy,
} from "./index.ts";
import { pagePerBlock } from "./testing.ts";

/** A strategy that must sit on another one. */
const upper = (): Strategy => ({
  name: "upper",
  accepts: ["allocator"],
  emit(_ctx, parent) {
    if (parent.kind !== "allocator") throw new Error("needs an allocator");
    return parent.allocator;
  },
});

describe("configuration errors are clear and come before any Wasm", () => {
  const cases: [string, () => unknown, RegExp][] = [
    ["empty stack", () => buildAllocator({ strategy: [] }), /stack is empty/],
    ["not a strategy", () => buildAllocator({ strategy: [{} as Strategy] }), /not a strategy/],
    ["allocator-only strategy at the bottom", () => buildAllocator({ strategy: upper() }), /cannot sit directly on a page backend/],
    ["pages-only strategy on top of another", () => buildAllocator({ strategy: [pagePerBlock(), pagePerBlock()] }), /cannot sit on top of "page-per-block"/],
    [
      "a strategy on top of a top-only one",
      () => buildAllocator({ strategy: [upper(), { ...pagePerBlock(), name: "only", topOnly: true }] }),
      /strategy "upper" cannot sit on top of "only": "only" must be the top of the stack/,
    ],
    ["minAlign not a power of two", () => buildAllocator({ strategy: pagePerBlock(), minAlign: 12 }), /minAlign must be a power of two/],
    ["an unknown goal", () => buildAllocator({ strategy: pagePerBlock(), goal: "fast" as never }), /^goal must be "size" or "speed", got "fast"$/],
    ["minAlign too small", () => buildAllocator({ strategy: pagePerBlock(), minAlign: 2 }), /minAlign/],
    ["minAlign above a page", () => buildAllocator({ strategy: pagePerBlock(), minAlign: 2 * PAGE_SIZE }), /minAlign/],
    ["prefix with a slash", () => buildAllocator({ strategy: pagePerBlock(), prefix: "a/b" }), /prefix/],
    ["unknown export", () => buildAllocator({ strategy: pagePerBlock(), exports: ["malloc", "mallocx"] }), /unknown function "mallocx"/],
    ["export name used twice", () => buildAllocator({ strategy: pagePerBlock(), exports: { malloc: "a", free: "a" } }), /used twice/],
    ["usable size the strategy cannot know", () => buildAllocator({ strategy: pagePerBlock(), exports: ["malloc_usable_size"] }), /malloc_usable_size/],
    ["optimize mode", () => buildAllocator({ strategy: pagePerBlock(), optimize: "fast" as "speed" }), /optimize must be/],
    ["memory mode", () => buildAllocator({ strategy: pagePerBlock(), memory: { mode: "shared" as "import" } }), /memory mode/],
    ["maximum below initial", () => buildAllocator({ strategy: pagePerBlock(), memory: { initialPages: 4, maximumPages: 2 } }), /maximumPages/],
    ["maximum of an imported memory", () => buildAllocator({ strategy: pagePerBlock(), memory: { mode: "import", maximumPages: 2 } }), /imported memory's maximum/],
    ["no initial page", () => buildAllocator({ strategy: pagePerBlock(), memory: { initialPages: 0 } }), /at least 1 initial page/],
    ["grow maximum out of range", () => growBackend({ maximumPages: 2 ** 31 }), /maximumPages/],
    [
      "grow maximum past wasm32",
      () => buildAllocator({ strategy: pagePerBlock(), backend: growBackend({ maximumPages: 70_000 }) }),
      /maximumPages \(70000\) is above 65535, the most a wasm32 memory can hold: build with memory64 for more/,
    ],
    ["memory64 as a string", () => buildAllocator({ strategy: pagePerBlock(), memory64: "yes" as never }), /memory64 must be true or false, got "yes"/],
    ["grow maximum zero", () => growBackend({ maximumPages: 0 }), /maximumPages/],
    ["exclusive with an imported memory", () => buildAllocator({ strategy: pagePerBlock(), backend: growBackend({ exclusive: true }), memory: { mode: "import" } }), /exclusive/],
    // Type confusion: reported as such, with values quoted so that "16" and 16 differ.
    ["no options", () => buildAllocator(undefined as never), /buildAllocator: options must be an object, got undefined/],
    ["no strategy", () => buildAllocator({} as never), /strategy option is missing/],
    ["bulkMemory as a string", () => buildAllocator({ strategy: pagePerBlock(), bulkMemory: "no" as never }), /bulkMemory must be true or false, got "no"/],
    ["exports as a string", () => buildAllocator({ strategy: pagePerBlock(), exports: "malloc" as never }), /exports must be a list of function names .* got "malloc"/],
    ["minAlign as a string", () => buildAllocator({ strategy: pagePerBlock(), minAlign: "16" as never }), /minAlign must be a power of two from 4 to 65536, got "16"/],
    ["prefix with a NUL", () => buildAllocator({ strategy: pagePerBlock(), prefix: "\0" }), /prefix must be a non-empty name without "\/" or control characters, got "\\u0000"/],
    ["empty memory name", () => buildAllocator({ strategy: pagePerBlock(), memory: { name: "" } }), /memory.name must be a non-empty string/],
    ["memory options not an object", () => buildAllocator({ strategy: pagePerBlock(), memory: "import" as never }), /memory: options must be an object, got "import"/],
    ["misspelt memory option", () => buildAllocator({ strategy: pagePerBlock(), memory: { intialPages: 3 } as never }), /unknown option "intialPages"/],
    ["not a backend", () => buildAllocator({ strategy: pagePerBlock(), backend: {} as never }), /backend is not a page backend/],
    ["growBackend(null)", () => growBackend(null as never), /growBackend: options must be an object, got null/],
    ["growBackend exclusive as a string", () => growBackend({ exclusive: "no" as never }), /exclusive must be true or false, got "no"/],
    ["no exports", () => buildAllocator({ strategy: pagePerBlock(), exports: [] }), /exports is empty/],
    // Export names clash: checked before emitting, named in the message.
    ["memory named like a function", () => buildAllocator({ strategy: pagePerBlock(), memory: { name: "malloc" } }), /export name "malloc" is used twice: by function "malloc" and by the memory/],
    ["function exported as the memory's name", () => buildAllocator({ strategy: pagePerBlock(), exports: { malloc: "memory" } }), /export name "memory" is used twice/],
    ["function exported under a debug global's name", () => buildAllocator({ strategy: pagePerBlock(), debug: true, exports: { malloc: "~alloc/debug/fault" } }), /export name "~alloc\/debug\/fault" is used twice: by function "malloc" and by a global of the debug build/],
    ["export name with a NUL", () => buildAllocator({ strategy: pagePerBlock(), exports: { malloc: "m\0" } }), /export name for "malloc" must be a non-empty string without NUL/],
  ];
  test.each(cases)("%s", (_name, run, message) => {
    expect(run).toThrow(AllocConfigError);
    expect(run).toThrow(message);
  });
});

describe("composition", () => {
  test("the result carries bytes the engine accepts, text, size and exports", () => {
    const built = buildAllocator({ strategy: pagePerBlock(), exports: { malloc: "my_malloc", free: "my_free" } });
    expect(WebAssembly.validate(built.binary as BufferSource)).toBe(true);
    expect(built.size).toBe(built.binary.byteLength);
    expect(built.exports).toEqual(["my_malloc", "my_free", "memory"]);
    expect(built.text).toContain('(export "my_malloc"');
    expect(built.memory).toMatchObject({ mode: "export", name: "memory", initialPages: 1, maximumPages: 65535 });
  });

  test("optimising for size gives fewer bytes than not optimising", () => {
    const none = buildAllocator({ strategy: pagePerBlock(), optimize: "none" }).size;
    const small = buildAllocator({ strategy: pagePerBlock(), optimize: "size" }).size;
    expect(small).toBeLessThan(none);
  });

  test("a build leaves Binaryen's process-wide settings as it found them", () => {
    binaryen.setOptimizeLevel(1);
    binaryen.setShrinkLevel(0);
    binaryen.setLowMemoryUnused(false);
    binaryen.setZeroFilledMemory(false);
    binaryen.setAlwaysInlineMaxSize(3);
    binaryen.setFlexibleInlineMaxSize(21);
    buildAllocator({ strategy: pagePerBlock(), optimize: "size" });
    buildAllocator({ strategy: pagePerBlock(), optimize: "speed" });
    expect(binaryen.getAlwaysInlineMaxSize()).toBe(3);
    expect(binaryen.getFlexibleInlineMaxSize()).toBe(21);
    expect(binaryen.getOptimizeLevel()).toBe(1);
    expect(binaryen.getShrinkLevel()).toBe(0);
    expect(binaryen.getLowMemoryUnused()).toBe(false);
    expect(binaryen.getZeroFilledMemory()).toBe(false);
  });

  test("instantiate reports a missing export clearly", async () => {
    const a = await buildAllocator({ strategy: pagePerBlock(), exports: ["malloc"] }).instantiate();
    expect(() => a.free(8)).toThrow(/does not export free/);
  });
});

describe("the C API over a strategy", () => {
  const make = (bulkMemory = true) =>
    buildAllocator({ strategy: pagePerBlock(), bulkMemory, exports: ["malloc", "free", "calloc", "realloc", "aligned_alloc"] }).instantiate();

  test.each([true, false])("calloc zeroes and rejects overflowing products (bulk memory %s)", async (bulk) => {
    const a = await make(bulk);
    const p = a.malloc(100);
    new Uint8Array(a.memory.buffer).fill(0xee, p, p + 100);
    expect(a.calloc(0x10000, 0x10001)).toBe(0);
    expect(a.calloc(0xffffffff, 0xffffffff)).toBe(0);
    const q = a.calloc(10, 10);
    expect([...new Uint8Array(a.memory.buffer, q, 100)].every((b) => b === 0)).toBe(true);
  });

  test.each([true, false])("realloc copies and frees, and handles 0 on either side (bulk memory %s)", async (bulk) => {
    const a = await make(bulk);
    const p = a.malloc(40);
    new Uint8Array(a.memory.buffer).set([...Array(40).keys()], p);
    const q = a.realloc(p, 80);
    expect(q).not.toBe(p);
    expect([...new Uint8Array(a.memory.buffer, q, 40)]).toEqual([...Array(40).keys()]);
    expect(a.realloc(q, 0)).toBe(0);
    expect(a.realloc(0, 16)).not.toBe(0);
  });

  test("aligned_alloc rejects what is not a power of two up to 64 KiB", async () => {
    const a = await make();
    for (const bad of [0, 3, 100, 2 * PAGE_SIZE]) expect(a.aligned_alloc(bad, 8)).toBe(0);
    expect(a.aligned_alloc(PAGE_SIZE, 8) % PAGE_SIZE).toBe(0);
  });
});

describe("installing into an existing module", () => {
  test("needs a memory", () => {
    const module = new binaryen.Module();
    try {
      expect(() => installAllocator(module, { strategy: pagePerBlock() })).toThrow(/has no memory/);
    } finally {
      module.dispose();
    }
  });

  test("asks for bulk memory only when the module enables it, and works without it", async () => {
    const module = new binaryen.Module();
    try {
      module.setFeatures(binaryen.Features.MVP);
      module.setMemory(1, 10);
      expect(() => installAllocator(module, { strategy: pagePerBlock(), bulkMemory: true })).toThrow(/bulk-memory/);
      installAllocator(module, { strategy: pagePerBlock(), exports: ["calloc", "realloc", "malloc"] });
      expect(module.validate()).toBe(1);
      expect(module.emitText()).not.toMatch(/memory\.(fill|copy)/);
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const { calloc } = instance.exports as Record<string, (...a: number[]) => number>;
      expect(calloc!(4, 4)).toBe(PAGE_SIZE);
    } finally {
      module.dispose();
    }
  });
});

describe("the build goal reaches every layer", () => {
  /** page-per-block, recording the goal its emit was given. */
  const recording = (seen: string[]): Strategy => {
    const inner = pagePerBlock();
    return { ...inner, emit: (ctx, parent) => (seen.push(ctx.goal), inner.emit(ctx, parent)) };
  };
  test.each([
    ["buildAllocator, default", {}, "size"],
    ["buildAllocator, optimize speed", { optimize: "speed" }, "speed"],
    ["buildAllocator, optimize none", { optimize: "none" }, "size"],
    ["buildAllocator, goal speed with optimize size", { goal: "speed" }, "speed"],
    ["buildAllocator, goal size with optimize speed", { optimize: "speed", goal: "size" }, "size"],
  ] as const)("%s: %s", (_name, options, goal) => {
    const seen: string[] = [];
    buildAllocator({ strategy: recording(seen), ...options });
    expect(seen).toEqual([goal]);
  });
  test.each([[undefined, "size"], ["speed", "speed"]] as const)("installAllocator with goal %s: %s", (given, goal) => {
    const module = new binaryen.Module();
    try {
      module.setMemory(1, 10);
      const seen: string[] = [];
      installAllocator(module, { strategy: recording(seen), ...(given && { goal: given }) });
      expect(seen).toEqual([goal]);
    } finally {
      module.dispose();
    }
  });
});

describe("installAllocator checks everything first and leaves the module untouched on any error", () => {
  /** A module with a memory, a function and an export of the user's own. */
  function userModule(setup?: (m: binaryen.Module) => void) {
    const module = new binaryen.Module();
    module.setFeatures(binaryen.Features.All);
    setup?.(module);
    if (!module.hasMemory()) module.setMemory(1, 100);
    module.addFunction("user", binaryen.none, binaryen.i32, [], module.i32.const(7));
    module.addFunctionExport("user", "malloc");
    return module;
  }
  /** Everything a module holds, as text: unchanged text means an untouched module. */
  const snapshot = (m: binaryen.Module) => m.emitText();

  const cases: [string, (m: binaryen.Module) => unknown, RegExp, ((m: binaryen.Module) => void)?][] = [
    ["an export the module has already", (m) => installAllocator(m, { strategy: pagePerBlock(), exports: ["malloc"] }), /already exports "malloc"/],
    [
      "a prefix an allocator installed before uses",
      (m) => installAllocator(m, { strategy: pagePerBlock(), exports: { malloc: "m2" } }),
      /already has names under the prefix "~alloc\/" \(such as "~alloc\/.*"; another allocator\?\)/,
      (m) => {
        m.setMemory(1, 100);
        installAllocator(m, { strategy: pagePerBlock() });
      },
    ],
    [
      "a strategy that fails half way through emitting",
      (m) => installAllocator(m, { strategy: halfEmitted() }),
      /half emitted/,
    ],
    ["a shared memory without threads", (m) => installAllocator(m, { strategy: pagePerBlock() }), /memory is shared \(threads\): set the threads option/, (m) => m.setMemory(1, 10, null, [], true)],
    ["threads over an unshared memory", (m) => installAllocator(m, { strategy: pagePerBlock(), threads: true }), /threads is set but the module's memory is not shared/],
    [
      "a memory64 memory with memory64: false",
      (m) => installAllocator(m, { strategy: pagePerBlock(), memory64: false }),
      /memory64 is false but the module's memory is a memory64 memory/,
      (m) => m.setMemory(1, 10, null, [], false, true),
    ],
    [
      "a wasm32 memory with memory64: true",
      (m) => installAllocator(m, { strategy: pagePerBlock(), memory64: true }),
      /memory64 is true but the module's memory is a wasm32 memory/,
    ],
    [
      "a memory64 memory without the memory64 feature",
      (m) => installAllocator(m, { strategy: pagePerBlock() }),
      /does not enable the memory64 feature/,
      (m) => (m.setFeatures(binaryen.Features.MVP), m.setMemory(1, 10, null, [], false, true)),
    ],
    ["options that are not an object", (m) => installAllocator(m, undefined as never), /installAllocator: options must be an object, got undefined/],
    ["functions given as a string", (m) => installAllocator(m, { strategy: pagePerBlock(), functions: "malloc" as never }), /functions must be a list/],
  ];
  test.each(cases)("%s", (_name, install, message, setup) => {
    const module = userModule(setup);
    try {
      const before = snapshot(module);
      expect(() => install(module)).toThrow(AllocConfigError);
      expect(() => install(module)).toThrow(message);
      expect(snapshot(module)).toBe(before);
    } finally {
      module.dispose();
    }
  });

  test("something that is not a binaryen module is refused clearly", () => {
    expect(() => installAllocator({} as never, { strategy: pagePerBlock() })).toThrow(/must be a binaryen.Module .* got \{\}/);
  });

  test("after a refused install the module still takes an allocator and runs", async () => {
    const module = userModule();
    try {
      expect(() => installAllocator(module, { strategy: pagePerBlock(), exports: ["malloc"] })).toThrow(AllocConfigError);
      installAllocator(module, { strategy: pagePerBlock(), exports: { malloc: "alloc_malloc" } });
      expect(module.validate()).toBe(1);
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const exports = instance.exports as Record<string, (...a: number[]) => number>;
      expect(exports.malloc!()).toBe(7);
      expect(exports.alloc_malloc!(10)).toBe(PAGE_SIZE);
    } finally {
      module.dispose();
    }
  });
});

describe("exclusive allocators in a module of their own only", () => {
  const exclusive = () => growBackend({ exclusive: true });
  const withModule = (fn: (m: binaryen.Module) => void) => {
    const module = new binaryen.Module();
    module.setMemory(1, 100);
    try {
      fn(module);
    } finally {
      module.dispose();
    }
  };
  test.each<[string, (m: binaryen.Module) => void, () => PageBackend, RegExp]>([
    ["two exclusive allocators", (m) => installAllocator(m, { strategy: pagePerBlock(), backend: exclusive(), prefix: "a" }), () => exclusive(), /function "a\/grow\/.*" .* grows the memory too \(another allocator\)/],
    ["an exclusive one after one that grows", (m) => installAllocator(m, { strategy: pagePerBlock(), prefix: "a" }), () => exclusive(), /grows the memory too/],
    ["one that grows after an exclusive one", (m) => installAllocator(m, { strategy: pagePerBlock(), backend: exclusive(), prefix: "a" }), () => growBackend(), /allocator under "a\/" in this module is exclusive .* this one grows it too/],
    [
      "an exclusive one in a module whose own code grows the memory",
      (m) => m.addFunction("more", binaryen.none, binaryen.i32, [], m.memory.grow(m.i32.const(1))),
      () => exclusive(),
      /function "more" of the module grows the memory too \(its own code\)/,
    ],
  ])("%s: refused, the module untouched", (_name, first, backend, message) =>
    withModule((module) => {
      first(module);
      const before = module.emitText();
      expect(() => installAllocator(module, { strategy: pagePerBlock(), backend: backend(), prefix: "b" })).toThrow(message);
      expect(module.emitText()).toBe(before);
    }),
  );

  test("an exclusive allocator alone in a module works", async () => {
    const module = new binaryen.Module();
    try {
      module.setMemory(1, 100);
      installAllocator(module, { strategy: pagePerBlock(), backend: exclusive(), exports: ["malloc"] });
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      const malloc = instance.exports.malloc as (n: number) => number;
      expect([malloc(1), malloc(1)]).toEqual([PAGE_SIZE, 2 * PAGE_SIZE]);
    } finally {
      module.dispose();
    }
  });
});

/** A strategy that emits a function and a global, then fails. */
function halfEmitted(): Strategy {
  return {
    name: "half",
    accepts: ["pages"],
    emit({ cg, scope }) {
      cg.global(scope("state"));
      cg.function(scope("alloc"), ["size", "align"], "usize", () => cg.size(0));
      throw new AllocConfigError("half emitted");
    },
  };
}

describe("the instance wrapper takes only what Wasm can take", () => {
  const heap = () => buildAllocator({ strategy: pagePerBlock(), exports: ["malloc", "free", "calloc", "realloc", "aligned_alloc"] }).instantiate();
  test.each<[string, (a: Awaited<ReturnType<typeof heap>>) => unknown, RegExp]>([
    ["malloc(2^32 + 16)", (a) => a.malloc(2 ** 32 + 16), /malloc: size must be an integer from 0 to 2\^32 - 1, got 4294967312/],
    ["malloc(NaN)", (a) => a.malloc(NaN), /malloc: size .* got NaN/],
    ["malloc(-1)", (a) => a.malloc(-1), /got -1/],
    ["malloc(1.5)", (a) => a.malloc(1.5), /got 1\.5/],
    ["malloc(\"16\")", (a) => a.malloc("16" as never), /got "16"/],
    ["calloc(2^32 + 1, 8)", (a) => a.calloc(2 ** 32 + 1, 8), /calloc: n must be/],
    ["realloc(p, Infinity)", (a) => a.realloc(PAGE_SIZE, Infinity), /realloc: size .* got Infinity/],
    ["aligned_alloc(2^32 + 8, 8)", (a) => a.aligned_alloc(2 ** 32 + 8, 8), /aligned_alloc: align/],
    ["free(-8)", (a) => a.free(-8), /free: ptr/],
    ["call with a fraction", (a) => a.call("malloc", 0.5), /malloc: size/],
  ])("%s throws a RangeError and allocates nothing", async (_name, run, message) => {
    const a = await heap();
    const bytes = a.memoryBytes();
    expect(() => run(a)).toThrow(RangeError);
    expect(() => run(a)).toThrow(message);
    expect(a.memoryBytes()).toBe(bytes);
  });

  test("the largest values pass through unchanged: 2^32 - 1 is refused by the allocator (0), not wrapped", async () => {
    const a = await heap();
    expect(a.malloc(0xffffffff)).toBe(0);
    expect(a.calloc(0xffffffff, 0xffffffff)).toBe(0);
    expect(a.malloc(0)).toBe(0);
  });
});
