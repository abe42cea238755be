/**
 * 64-bit builds (`memory64: true`) of the core pieces: the C API, the grow backend, the JS
 * wrapper, the debug build and installAllocator, executed (vitest runs Node with
 * `--experimental-wasm-memory64` where memory64 is behind it: see tooling/test-utils).
 * The strategies' 64-bit builds are tested by tooling/conformance and in each package.
 */
import { describe, expect, test } from "vitest";
import { EINVAL } from "./c-api.ts";
import { engineRunsMemory64 } from "./compose.ts";
import { binaryen, buildAllocator, growBackend, installAllocator, MEMORY64_MAX_PAGES, PAGE_SIZE } from "./index.ts";
import { pagePerBlock } from "./testing.ts";

const GiB = 2 ** 30;

test("the engine runs memory64 modules (the test runner enables it)", () => {
  expect(engineRunsMemory64()).toBe(true);
});

describe("a 64-bit build", () => {
  test("is a memory64 module whose C functions take and return i64", async () => {
    const built = buildAllocator({ strategy: pagePerBlock(), memory64: true, exports: ["malloc", "free", "calloc"] });
    expect(built.memory).toMatchObject({ memory64: true, maximumPages: undefined });
    expect(built.text).toMatch(/\(memory \$0 i64 1\)/);
    expect(built.text).toMatch(/\(func \(param i64\) \(result i64\)\)/);
    const heap = await built.instantiate();
    expect(heap.memory64).toBe(true);
    const malloc = heap.instance.exports.malloc as (size: bigint) => bigint;
    expect(malloc(100n)).toBe(BigInt(PAGE_SIZE));
    // The wrappers take and return numbers.
    expect(heap.malloc(100)).toBe(2 * PAGE_SIZE);
    expect(heap.calloc(3, 5)).toBe(3 * PAGE_SIZE);
    expect(() => heap.malloc(2 ** 53)).toThrow(/malloc: size must be an integer from 0 to 2\^53 - 1, got 9007199254740992/);
  });

  test("sizes past 4 GiB are refused cleanly where the engine stops at 4 GiB, and the heap stays usable", async () => {
    const heap = await buildAllocator({ strategy: pagePerBlock(), memory64: true }).instantiate();
    // Node 20's V8 grows a memory64 memory to 4 GiB at most: memory.grow refuses, malloc returns 0.
    expect(heap.malloc(5 * GiB)).toBe(0);
    expect(heap.malloc(2 ** 53 - 1)).toBe(0);
    expect(heap.memoryBytes()).toBe(PAGE_SIZE);
    expect(heap.malloc(16)).toBe(PAGE_SIZE);
    // calloc's overflow check is 64-bit: n * size past 2^64 is refused, not wrapped.
    expect(heap.calloc(2 ** 33, 2 ** 32)).toBe(0);
    expect(heap.calloc(2 ** 20, 2 ** 20)).toBe(0);
  });

  // The overflow check divides by size: calloc(n, 0) trapped ("divide by zero") until size 0
  // was read as 1 there (found by `pnpm soak`).
  test.each(["size", "speed"] as const)("calloc with a zero count or size is malloc(0), never a trap (optimised for %s)", async (optimize) => {
    const heap = await buildAllocator({ strategy: pagePerBlock(), memory64: true, optimize }).instantiate();
    for (const [n, size] of [[0, 0], [3, 0], [0, 5], [2 ** 53 - 1, 0], [0, 2 ** 53 - 1]]) expect(heap.calloc(n!, size!), `calloc(${n}, ${size})`).toBe(0);
    expect(heap.calloc(3, 5)).toBe(PAGE_SIZE);
  });

  test("the grow backend's limit may pass 4 GiB; the declared maximum is enforced", async () => {
    const backend = growBackend({ maximumPages: 100_000 });
    expect(() => buildAllocator({ strategy: pagePerBlock(), backend })).toThrow(/build with memory64 for more/);
    const heap = await buildAllocator({ strategy: pagePerBlock(), backend, memory64: true }).instantiate();
    expect(heap.malloc(100_000 * PAGE_SIZE)).toBe(0);
    expect(heap.malloc(PAGE_SIZE)).toBe(PAGE_SIZE);
    const capped = await buildAllocator({ strategy: pagePerBlock(), memory64: true, memory: { maximumPages: 3 } }).instantiate();
    expect([capped.malloc(1), capped.malloc(1), capped.malloc(1)]).toEqual([PAGE_SIZE, 2 * PAGE_SIZE, 0]);
    expect(() => buildAllocator({ strategy: pagePerBlock(), memory64: true, memory: { maximumPages: MEMORY64_MAX_PAGES + 1 } })).toThrow(
      /memory.maximumPages must be an integer from initialPages \(1\) to 2147483647/,
    );
  });

  test("an imported memory64 memory, and posix_memalign storing an 8-byte pointer", async () => {
    const built = buildAllocator({ strategy: pagePerBlock(), memory64: true, memory: { mode: "import" }, exports: ["malloc", "posix_memalign"] });
    const heap = await built.instantiate();
    const slot = heap.malloc(16);
    expect(slot).toBe(PAGE_SIZE);
    const view = () => new DataView(heap.memory.buffer);
    view().setBigUint64(slot, 0xdeadbeefcafen, true);
    expect(heap.call("posix_memalign", slot, 12, 16)).toBe(EINVAL);
    expect(heap.call("posix_memalign", slot, 4, 16)).toBe(EINVAL); // below the pointer size (8)
    expect(view().getBigUint64(slot, true)).toBe(0xdeadbeefcafen);
    expect(heap.call("posix_memalign", slot, 8, 16)).toBe(0);
    expect(view().getBigUint64(slot, true)).toBe(BigInt(2 * PAGE_SIZE));
  });

  test("a debug build reports its fault with the address (i64 globals)", async () => {
    const built = buildAllocator({ strategy: pagePerBlock(), memory64: true, debug: true });
    const heap = await built.instantiate();
    expect(heap.malloc(10)).toBe(PAGE_SIZE);
    expect(heap.checkHeap().layers).toEqual([]);
    expect(heap.takeFault()).toBeUndefined();
  });
});

describe("installAllocator into a memory64 module", () => {
  test("installs a 64-bit allocator whose functions the module calls with i64", async () => {
    const module = new binaryen.Module();
    try {
      module.setFeatures(binaryen.Features.All);
      module.setMemory(1, 1000, "memory", [], false, true);
      const { functions } = installAllocator(module, { strategy: pagePerBlock(), functions: ["malloc", "free"] });
      module.addFunction("two", binaryen.none, binaryen.i64, [], module.i64.sub(
        module.call(functions.malloc!, [module.i64.const(10n as never)], binaryen.i64),
        module.call(functions.malloc!, [module.i64.const(10n as never)], binaryen.i64),
      ));
      module.addFunctionExport("two", "two");
      expect(module.validate()).toBe(1);
      const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
      expect((instance.exports.two as () => bigint)()).toBe(-BigInt(PAGE_SIZE));
    } finally {
      module.dispose();
    }
  });
});
