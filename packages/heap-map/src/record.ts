import type { ReplayTarget, Trace } from "@alloc/trace";

/** Bytes per WebAssembly page. */
export const PAGE_BYTES = 65536;

/**
 * Where an allocator put every block of a trace, operation by operation: what
 * {@link recordHeap} returns and the renderers draw. Arrays have one entry per operation.
 *
 * An operation releases at most one block (`free`, or the old block of a `realloc`) and hands
 * out at most one (`alloc`, or the new block of a `realloc`); a realloc in place releases and
 * hands out the same address. Sizes are the requested ones (the allocator may round them up).
 */
export interface HeapRecording {
  /** The trace's name. */
  readonly trace: string;
  /** What ran it, for titles (e.g. `free-list > grow`). */
  readonly label: string;
  readonly operations: number;
  /** The block handed out by each operation (0: none, or the allocation failed). */
  readonly address: Uint32Array;
  /** Its requested size. */
  readonly size: Uint32Array;
  /** The block given back by each operation (0: none). */
  readonly released: Uint32Array;
  /** Its requested size. */
  readonly releasedSize: Uint32Array;
  /** Memory size after each operation, in 64 KiB pages. */
  readonly pages: Uint32Array;
  /** Memory size before the first operation, in pages. */
  readonly initialPages: number;
  /** The largest sum of the requested sizes of live blocks (as the replay reports it). */
  readonly peakLiveBytes: number;
  readonly liveBytesAtEnd: number;
  /** Allocations that returned 0 for a non-zero size. */
  readonly failedAllocations: number;
  /** Operations after which memory was larger than before (the memory.grow steps seen from outside). */
  readonly growSteps: number;
}

export interface RecordOptions {
  /** A name for what ran the trace, used in titles (default: empty). */
  readonly label?: string;
}

type WasmFunction = (...args: number[]) => number | undefined;

/**
 * Replays `trace` against `target` from JavaScript, one call per operation, and records the
 * address of every block and the memory size after every operation. The semantics are the
 * replay driver's (`@alloc/trace`): a free of a failed or freed allocation is a no-op, a realloc
 * of one starts from a null pointer, a failed realloc keeps the old block, `realloc(p, 0)`
 * returning 0 frees it. Nothing is verified and nothing but the trace's own blocks is allocated:
 * run `replay` for the checks. Works in browsers (no Node APIs).
 */
export function recordHeap(target: ReplayTarget, trace: Trace, options: RecordOptions = {}): HeapRecording {
  const exports = target.instance.exports;
  const fn = (role: "malloc" | "free" | "realloc"): WasmFunction => {
    const name = target.names?.[role] ?? role;
    const f = exports[name];
    if (typeof f === "function") return f as WasmFunction;
    return () => {
      throw new Error(`recordHeap: the allocator does not export "${name}" (${role}), which ${trace.name} needs`);
    };
  };
  const malloc = fn("malloc"), free = fn("free"), realloc = fn("realloc");
  const n = trace.ops.length;
  const address = new Uint32Array(n), size = new Uint32Array(n);
  const released = new Uint32Array(n), releasedSize = new Uint32Array(n);
  const pages = new Uint32Array(n);
  // The live block of each allocation number (0: none) and its size.
  const ptrOf = new Uint32Array(trace.allocations), sizeOf = new Uint32Array(trace.allocations);
  const initialPages = target.memory.buffer.byteLength / PAGE_BYTES;
  let live = 0, peakLive = 0, failed = 0, growSteps = 0, lastPages = initialPages;

  for (let i = 0; i < n; i++) {
    const op = trace.ops[i]!;
    const k = op.index;
    const old = ptrOf[k]!;
    if (op.op === "alloc") {
      const p = (malloc(op.size) ?? 0) >>> 0;
      if (p) {
        ptrOf[k] = p;
        sizeOf[k] = op.size;
        address[i] = p;
        size[i] = op.size;
        live += op.size;
      } else if (op.size !== 0) failed++;
    } else if (op.op === "free") {
      if (old) {
        free(old);
        released[i] = old;
        releasedSize[i] = sizeOf[k]!;
        live -= sizeOf[k]!;
        ptrOf[k] = 0;
      }
    } else {
      const q = (realloc(old, op.size) ?? 0) >>> 0;
      if (q === 0 && op.size !== 0) failed++;
      else {
        if (old) {
          released[i] = old;
          releasedSize[i] = sizeOf[k]!;
          live -= sizeOf[k]!;
        }
        ptrOf[k] = q;
        sizeOf[k] = q ? op.size : 0;
        if (q) {
          address[i] = q;
          size[i] = op.size;
          live += op.size;
        }
      }
    }
    if (live > peakLive) peakLive = live;
    const now = target.memory.buffer.byteLength / PAGE_BYTES;
    if (now > lastPages) growSteps++;
    lastPages = pages[i] = now;
  }
  return {
    trace: trace.name,
    label: options.label ?? "",
    operations: n,
    address,
    size,
    released,
    releasedSize,
    pages,
    initialPages,
    peakLiveBytes: peakLive,
    liveBytesAtEnd: live,
    failedAllocations: failed,
    growSteps,
  };
}
