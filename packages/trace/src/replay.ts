import {
  DRIVER_IMPORTS,
  OP_BYTES,
  OP_KIND,
  STATUS,
  TAG_MULTIPLIER,
  driverModule,
  slotBytes,
  type DriverExports,
  type Word,
} from "./driver.ts";
import { describeOp, type Trace } from "./trace.ts";

/**
 * An allocator to replay against: its instance, whose exports `malloc`, `free` and `realloc`
 * (C semantics, wasm32 or memory64) the driver imports, and the memory they manage. An
 * `AllocatorInstance` from `@alloc/core` is one as it is.
 */
export interface ReplayTarget {
  readonly instance: WebAssembly.Instance;
  readonly memory: WebAssembly.Memory;
  /** A memory64 allocator (i64 pointers and sizes): the driver is built 64-bit too. Default false. */
  readonly memory64?: boolean;
  /** Export names, when they are not `malloc`, `free` and `realloc`. */
  readonly names?: { readonly malloc?: string; readonly free?: string; readonly realloc?: string };
  /**
   * Optional: the cause a debug build recorded when it trapped (an `AllocatorInstance` of
   * `@alloc/core` has it), used in the error a trap becomes.
   */
  takeFault?(cause: unknown): Error | undefined;
}

export interface ReplayOptions {
  /**
   * Tag every block and check it on free, realloc and at the end; check alignment, bounds and
   * overlap with the driver's data (default true). false runs the fast driver, which checks
   * nothing: for timing only.
   */
  readonly verify?: boolean;
  /** The alignment every block must have (checked when verifying). Default 8. */
  readonly align?: number;
}

export interface RunOptions {
  /** After the replay, free every block still live, so that a next run reuses the heap. Default false. */
  readonly freeLive?: boolean;
}

/** What one replay measured. */
export interface ReplayResult {
  /** The trace's name. */
  readonly trace: string;
  /** Operations replayed. */
  readonly operations: number;
  /** Wall time of the replay inside Wasm, in milliseconds (the final checks excluded). */
  readonly elapsedMs: number;
  /** `elapsedMs` per operation, in nanoseconds. */
  readonly nsPerOp: number;
  /** malloc or realloc calls that returned 0 for a non-zero size. */
  readonly failedAllocations: number;
  /** The largest `memory.buffer.byteLength` seen (sampled after every alloc and realloc). */
  readonly peakMemoryBytes: number;
  /** The largest sum of the sizes of live blocks (as requested, not as rounded by the allocator). */
  readonly peakLiveBytes: number;
  /** Live bytes after the last operation (before `freeLive`). */
  readonly liveBytesAtEnd: number;
  /** Bytes of the driver's own blocks (op array and pointer table), allocated with the allocator's malloc. */
  readonly driverBytes: number;
  readonly verified: boolean;
}

/** A replay that found the allocator at fault, or that the allocator trapped in. */
export class ReplayError extends Error {
  constructor(
    message: string,
    /** The trace's name. */
    readonly trace: string,
    /** The failing operation's index, or undefined for the final check of live blocks. */
    readonly op: number | undefined,
    /** Its 1-based line, for a parsed trace. */
    readonly line: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ReplayError";
  }
}

type WasmFunction = (...args: Word[]) => Word | undefined;

/** A Wasm integer (an i32, or an i64 as a bigint) as an unsigned number. */
function unsigned(value: unknown): number {
  return typeof value === "bigint" ? Number(BigInt.asUintN(64, value)) : Number(value) >>> 0;
}

/**
 * A trace loaded into one allocator instance, ready to replay, as many times as wanted. The op
 * array and the pointer table are blocks of the allocator's own heap (see the driver's notes);
 * {@link dispose} frees them.
 */
export class Replayer {
  readonly trace: Trace;
  readonly verify: boolean;
  /** Bytes of the op array and the pointer table. */
  readonly driverBytes: number;
  private readonly target: ReplayTarget;
  private readonly driver: DriverExports;
  private readonly align: number;
  private readonly ops: number;
  private readonly table: number;
  private readonly free: WasmFunction;
  private readonly slotBytes: number;
  /** A number as the driver and the allocator take it: pointer width. */
  private readonly word: (n: number) => Word;

  constructor(target: ReplayTarget, trace: Trace, options: ReplayOptions = {}) {
    this.trace = trace;
    this.target = target;
    this.verify = options.verify ?? true;
    this.align = options.align ?? 8;
    if (!Number.isInteger(this.align) || this.align < 1 || (this.align & (this.align - 1)) !== 0) {
      throw new RangeError(`replay: align must be a power of two, got ${this.align}`);
    }
    const exports = target.instance.exports;
    const fn = (role: "malloc" | "free" | "realloc", required: boolean): WasmFunction => {
      const name = target.names?.[role] ?? role;
      const f = exports[name];
      if (typeof f === "function") return f as WasmFunction;
      if (required) throw new Error(`replay: the allocator does not export "${name}" (${role}), which ${trace.name} needs`);
      return () => {
        throw new Error(`replay: the allocator does not export ${role}`);
      };
    };
    const malloc = fn("malloc", true);
    this.free = fn("free", true);
    const realloc = fn("realloc", trace.ops.some((op) => op.op === "realloc"));
    const memory64 = target.memory64 ?? false;
    this.slotBytes = slotBytes(memory64);
    this.word = memory64 ? BigInt : (n) => n;

    // The driver's data, from the allocator's own malloc: the driver never grows memory.
    const opBytes = Math.max(trace.ops.length * OP_BYTES, OP_BYTES);
    const tableBytes = Math.max(trace.allocations * this.slotBytes, this.slotBytes);
    this.ops = unsigned(malloc(this.word(opBytes)));
    this.table = unsigned(malloc(this.word(tableBytes)));
    if (this.ops === 0 || this.table === 0) {
      throw new Error(`replay: the allocator could not allocate the driver's data (${opBytes + tableBytes} bytes) for ${trace.name}`);
    }
    if (this.ops < this.table + tableBytes && this.table < this.ops + opBytes) {
      throw new Error(`replay: the allocator returned overlapping blocks for the driver's data ([${this.ops}, +${opBytes}) and [${this.table}, +${tableBytes}))`);
    }
    const view = new DataView(target.memory.buffer);
    trace.ops.forEach((op, i) => {
      view.setUint32(this.ops + i * OP_BYTES, ((OP_KIND[op.op] << 30) | op.index) >>> 0, true);
      view.setUint32(this.ops + i * OP_BYTES + 4, op.op === "free" ? 0 : op.size, true);
    });
    this.driverBytes = opBytes + tableBytes;

    const imports = { [DRIVER_IMPORTS.module]: { malloc, free: this.free, realloc, memory: target.memory } };
    const instance = new WebAssembly.Instance(driverModule(this.verify, memory64), imports);
    this.driver = instance.exports as unknown as DriverExports;
  }

  /** Replays the whole trace once, from an empty pointer table. Throws a {@link ReplayError}. */
  run(options: RunOptions = {}): ReplayResult {
    const { trace, driver, word } = this;
    const slots = trace.allocations;
    new Uint8Array(this.target.memory.buffer, this.table, slots * this.slotBytes).fill(0);
    let status: number;
    const table = word(this.table), ops = word(this.ops), n = word(trace.ops.length), align = word(this.align);
    const start = performance.now();
    try {
      status = driver.run(ops, n, table, word(slots), align);
    } catch (error) {
      throw this.trapped(error, unsigned(driver.op.value));
    }
    const elapsedMs = performance.now() - start;
    if (status !== STATUS.ok) throw this.failure(status, unsigned(driver.op.value));
    if (driver.check_live) {
      const final = driver.check_live(table, word(slots));
      if (final !== STATUS.ok) throw this.failure(final, undefined);
    }
    const liveBytesAtEnd = Number(driver.live.value as bigint);
    if (options.freeLive) {
      try {
        driver.free_live(table, word(slots));
      } catch (error) {
        throw this.trapped(error, undefined);
      }
    }
    const operations = trace.ops.length;
    return {
      trace: trace.name,
      operations,
      elapsedMs,
      nsPerOp: operations ? (elapsedMs * 1e6) / operations : 0,
      failedAllocations: unsigned(driver.failed.value),
      peakMemoryBytes: Math.max(unsigned(driver.peak_pages.value) * 65536, this.target.memory.buffer.byteLength),
      peakLiveBytes: Number(driver.peak_live.value as bigint),
      liveBytesAtEnd,
      driverBytes: this.driverBytes,
      verified: this.verify,
    };
  }

  /** Frees the op array and the pointer table (not the blocks of the trace: see {@link RunOptions.freeLive}). */
  dispose(): void {
    this.free(this.word(this.ops));
    this.free(this.word(this.table));
  }

  // ---- readable errors ---------------------------------------------------------------------

  private where(op: number | undefined): string {
    return op === undefined ? `${this.trace.name}: after the last operation` : describeOp(this.trace, op);
  }

  private error(op: number | undefined, reason: string, cause?: unknown): ReplayError {
    const line = op === undefined ? undefined : this.trace.lines?.[op];
    return new ReplayError(`${this.where(op)}: ${reason}`, this.trace.name, op, line, cause === undefined ? undefined : { cause });
  }

  private trapped(error: unknown, op: number | undefined): ReplayError {
    // A debug build records why it trapped: say that rather than "unreachable".
    const fault = error instanceof WebAssembly.RuntimeError ? this.target.takeFault?.(error) : undefined;
    const what = fault ? `${fault.name}: ${fault.message}` : error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return this.error(op, `the allocator trapped (${what})`, error);
  }

  private failure(status: number, op: number | undefined): ReplayError {
    const { driver } = this;
    const k = unsigned(driver.slot.value);
    const ptr = unsigned(driver.ptr.value);
    const detail = unsigned(driver.detail.value);
    const block = (p: number, size: number) => `block ${p} (${size} byte${size === 1 ? "" : "s"})`;
    switch (status) {
      case STATUS.misaligned:
        return this.error(op, `allocation ${k} got block ${ptr}, which is not ${detail}-aligned`);
      case STATUS.outOfBounds:
        return this.error(op, `allocation ${k} got ${block(ptr, detail)}, which ends past the end of memory (${this.target.memory.buffer.byteLength} bytes)`);
      case STATUS.overlapsDriver:
        return this.error(op, `allocation ${k} got ${block(ptr, detail)}, which overlaps the driver's op array or pointer table (blocks the allocator handed out earlier and that are still live)`);
      case STATUS.corrupted: {
        const size = this.slot(k).size;
        const at = this.firstBadByte(k, ptr, detail, size);
        const culprits = this.overlapping(k, ptr, size);
        const why = culprits.length
          ? `; it overlaps ${culprits.join(", ")}`
          : "; no live block overlaps it now (an overlapping block since freed, or the allocator's own bookkeeping, wrote there)";
        return this.error(op, `allocation ${k} (block ${ptr}, ${size} bytes) was overwritten at byte +${at.offset} (found 0x${hex(at.found)}, expected 0x${hex(at.expected)})${why}`);
      }
      case STATUS.reallocLost: {
        const at = this.firstBadByte(k, ptr, detail, Number.MAX_SAFE_INTEGER);
        return this.error(op, `realloc of allocation ${k} moved it to block ${ptr} without its contents: byte +${at.offset} is 0x${hex(at.found)}, expected 0x${hex(at.expected)}`);
      }
      default:
        return this.error(op, `the replay driver stopped with status ${status}`);
    }
  }

  private slot(k: number): { ptr: number; size: number } {
    const view = new DataView(this.target.memory.buffer);
    const at = this.table + k * this.slotBytes, wide = this.slotBytes === 16;
    const ptr = wide ? Number(view.getBigUint64(at, true)) : view.getUint32(at, true);
    return { ptr, size: view.getUint32(at + this.slotBytes / 2, true) };
  }

  /** The exact first byte that lost its tag, from the word the driver reported. */
  private firstBadByte(k: number, ptr: number, from: number, size: number): { offset: number; found: number; expected: number } {
    const bytes = new Uint8Array(this.target.memory.buffer);
    const tag = BigInt.asUintN(64, BigInt(k + 1) * TAG_MULTIPLIER);
    const expected = (i: number) => Number((tag >> BigInt((i & 7) * 8)) & 0xffn);
    for (let i = from; i < Math.min(from + 8, size); i++) {
      if (bytes[ptr + i] !== expected(i)) return { offset: i, found: bytes[ptr + i]!, expected: expected(i) };
    }
    return { offset: from, found: bytes[ptr + from] ?? 0, expected: expected(from) };
  }

  /** Live allocations other than k whose blocks overlap [ptr, ptr + size), described. */
  private overlapping(k: number, ptr: number, size: number): string[] {
    const found: string[] = [];
    for (let j = 0; j < this.trace.allocations && found.length < 3; j++) {
      if (j === k) continue;
      const b = this.slot(j);
      if (b.ptr !== 0 && b.ptr < ptr + size && ptr < b.ptr + b.size) {
        const origin = this.trace.ops.findIndex((op) => op.op === "alloc" && op.index === j);
        const from = origin >= 0 ? ` from ${this.where(origin)}` : "";
        found.push(`allocation ${j} (block ${b.ptr}, ${b.size} bytes${from})`);
      }
    }
    return found;
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

/** Loads `trace` into `target` (see {@link Replayer}). */
export function createReplayer(target: ReplayTarget, trace: Trace, options?: ReplayOptions): Replayer {
  return new Replayer(target, trace, options);
}

/**
 * Replays `trace` once against `target`, inside Wasm, and frees the driver's data afterwards.
 * Throws a {@link ReplayError} naming the operation (and line) where the allocator went wrong.
 */
export function replay(target: ReplayTarget, trace: Trace, options: ReplayOptions & RunOptions = {}): ReplayResult {
  const replayer = new Replayer(target, trace, options);
  const result = replayer.run(options);
  replayer.dispose();
  return result;
}
