import type { AllocatorInstance } from "@alloc/core";
import fc from "fast-check";

/** One call a program makes. Blocks are named by their index among the live blocks, modulo their count. */
export type Op =
  | { readonly op: "malloc"; readonly size: number }
  | { readonly op: "calloc"; readonly n: number; readonly size: number }
  | { readonly op: "aligned_alloc"; readonly align: number; readonly size: number }
  | { readonly op: "free"; readonly pick: number }
  | { readonly op: "realloc"; readonly pick: number; readonly size: number };

/** Sizes as programs ask for them: mostly small, some medium, a few large, and impossible ones. */
const size = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 4, arbitrary: fc.integer({ min: 65, max: 4096 }) },
  { weight: 1, arbitrary: fc.integer({ min: 4097, max: 200_000 }) },
  { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 0xfffffff8, 0xffff0001) },
);

const align = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 16 }).map((k) => 2 ** k) },
  { weight: 1, arbitrary: fc.constantFrom(0, 3, 24, 2 ** 17, 0x80000000) },
);

export const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("malloc" as const), size }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("calloc" as const), n: fc.integer({ min: 0, max: 300 }), size: fc.oneof(fc.integer({ min: 0, max: 300 }), size) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("aligned_alloc" as const), align, size }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("free" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("realloc" as const), pick: fc.nat(), size }) },
);

interface Block {
  readonly ptr: number;
  readonly size: number;
  readonly seed: number;
}

/**
 * Runs `ops` against `heap` and checks, after every call, what C promises: a block is aligned
 * (to `minAlign`, default 8, or to what aligned_alloc asked when more), inside memory, overlaps no live block, keeps its
 * contents until freed, keeps them across realloc (up to the smaller size), and calloc's is zero.
 * A refused request (0) is allowed, but never for a request the model knows is impossible to
 * refuse... except when memory runs out, which a bounded backend may do at any time. Throws on
 * the first violation, naming the step. `after` runs after every step with the live blocks
 * (the debug-build tests run the heap walker there).
 *
 * On a memory64 build the impossible sizes (those above 0xffff0000) become sizes near 2^53: as
 * far past the 64-bit allocator's reach as the wasm32 ones are past a wasm32 one's (and never
 * 4-16 GiB, which an engine may grant and the model would then fill byte by byte).
 */
export function runModel(
  heap: AllocatorInstance,
  ops: readonly Op[],
  after?: (step: number, live: readonly { readonly ptr: number; readonly size: number }[]) => void,
  minAlign = 8,
): void {
  const live: Block[] = [];
  let seeds = 1;
  const mem = () => new Uint8Array(heap.memory.buffer);
  const fillBlock = (b: Block) => {
    const m = mem();
    for (let i = 0; i < b.size; i++) m[b.ptr + i] = (b.seed + i * 7) & 0xff;
  };
  const checkBlock = (b: Block, upTo = b.size, step = -1) => {
    const m = mem();
    for (let i = 0; i < Math.min(upTo, b.size); i++) {
      if (m[b.ptr + i] !== ((b.seed + i * 7) & 0xff)) {
        throw new Error(`step ${step}: block ${b.ptr} (size ${b.size}) lost its contents at +${i}`);
      }
    }
  };
  const admit = (step: number, ptr: number, size: number, alignment: number): Block => {
    if (ptr % alignment !== 0) throw new Error(`step ${step}: ${ptr} is not ${alignment}-aligned`);
    if (ptr + size > heap.memory.buffer.byteLength) throw new Error(`step ${step}: block ${ptr}+${size} is outside memory`);
    for (const b of live) {
      if (ptr < b.ptr + Math.max(b.size, 1) && b.ptr < ptr + Math.max(size, 1)) {
        throw new Error(`step ${step}: block ${ptr}+${size} overlaps live block ${b.ptr}+${b.size}`);
      }
    }
    return { ptr, size, seed: seeds++ };
  };
  // More than the largest wasm32 memory an allocator may use (65535 pages) can hold; on
  // memory64, more than 2^47 (MEMORY64_MAX_PAGES pages).
  const impossible = (n: number) => n > (heap.memory64 ? 2 ** 47 : 0xffff0000);
  /** A size as the model asks for it: an impossible wasm32 size moved near 2^53 on memory64. */
  const sized = (n: number) => (heap.memory64 && n > 0xffff0000 ? n - 0xffffffff + Number.MAX_SAFE_INTEGER : n);

  ops.forEach((given, step) => {
    const o = "size" in given ? { ...given, size: sized(given.size) } : given;
    switch (o.op) {
      case "malloc":
      case "aligned_alloc": {
        const isAligned = o.op === "aligned_alloc";
        const alignment = isAligned ? o.align : 8;
        const valid = !isAligned || (alignment > 0 && (alignment & (alignment - 1)) === 0 && alignment <= 65536);
        const ptr = isAligned ? heap.aligned_alloc(o.align, o.size) : heap.malloc(o.size);
        if (!valid || impossible(o.size)) {
          if (ptr !== 0) throw new Error(`step ${step}: ${o.op}(${isAligned ? `${o.align}, ` : ""}${o.size}) should fail, got ${ptr}`);
          break;
        }
        if (ptr === 0) break;
        const b = admit(step, ptr, o.size, Math.max(alignment, minAlign));
        fillBlock(b);
        live.push(b);
        break;
      }
      case "calloc": {
        const total = o.n * o.size;
        const ptr = heap.calloc(o.n, o.size);
        if (total > (heap.memory64 ? 2 ** 64 : 0xffffffff) || impossible(total)) {
          if (ptr !== 0) throw new Error(`step ${step}: calloc(${o.n}, ${o.size}) overflows and should fail, got ${ptr}`);
          break;
        }
        if (ptr === 0) break;
        const b = admit(step, ptr, total, minAlign);
        const m = mem();
        for (let i = 0; i < total; i++) if (m[ptr + i] !== 0) throw new Error(`step ${step}: calloc block ${ptr} is not zero at +${i}`);
        fillBlock(b);
        live.push(b);
        break;
      }
      case "free": {
        if (live.length === 0) {
          heap.free(0);
          break;
        }
        const [b] = live.splice(o.pick % live.length, 1);
        checkBlock(b!, b!.size, step);
        heap.free(b!.ptr);
        break;
      }
      case "realloc": {
        if (live.length === 0) break;
        const i = o.pick % live.length;
        const b = live[i]!;
        checkBlock(b, b.size, step);
        const ptr = heap.realloc(b.ptr, o.size);
        if (o.size === 0) {
          if (ptr !== 0) throw new Error(`step ${step}: realloc(p, 0) should free and return 0, got ${ptr}`);
          live.splice(i, 1);
          break;
        }
        if (ptr === 0) {
          if (!impossible(o.size) && o.size < 1000) {
            // Small requests only fail when memory is exhausted: allowed, but the block must be intact.
          }
          checkBlock(b, b.size, step);
          break;
        }
        if (impossible(o.size)) throw new Error(`step ${step}: realloc to ${o.size} should fail, got ${ptr}`);
        live.splice(i, 1);
        const moved = admit(step, ptr, o.size, minAlign);
        // Contents up to the smaller size survive, wherever the block now is.
        const m = mem();
        for (let k = 0; k < Math.min(b.size, o.size); k++) {
          if (m[ptr + k] !== ((b.seed + k * 7) & 0xff)) throw new Error(`step ${step}: realloc lost byte +${k}`);
        }
        fillBlock(moved);
        live.push(moved);
        break;
      }
    }
    after?.(step, live);
  });
  for (const b of live) checkBlock(b, b.size, ops.length);
}
