/**
 * The trace model: a sequence of allocation operations over numbered allocations.
 *
 * Allocation numbers count the `alloc` operations from 0, as in wee_alloc's trace format.
 * `free` of an allocation that failed or was already freed is a no-op; `realloc` resizes an
 * allocation and its result replaces it (see {@link TraceOp}).
 */

/** One operation of a trace. */
export type TraceOp =
  /** `Alloc(size),`: `malloc(size)`; becomes allocation number `index` (the count of earlier allocs). */
  | { readonly op: "alloc"; readonly index: number; readonly size: number }
  /** `Free(index),`: `free` of allocation `index`; a no-op when it failed or is already freed. */
  | { readonly op: "free"; readonly index: number }
  /**
   * `Realloc(index,size),`: `realloc` of allocation `index` (of a null pointer when it failed or
   * was freed). The result replaces allocation `index`. When realloc fails (returns 0 for a
   * non-zero size) the old block stays allocation `index`, as C's realloc leaves it untouched.
   */
  | { readonly op: "realloc"; readonly index: number; readonly size: number };

export interface Trace {
  /** A name for messages: the file name, or the workload and its seed. */
  readonly name: string;
  readonly ops: readonly TraceOp[];
  /** For a parsed trace: the 1-based source line of each operation. */
  readonly lines?: readonly number[];
  /** How many allocations the trace numbers (its `alloc` operations). */
  readonly allocations: number;
}

/** The largest allocation number the replay driver can encode (30 bits). */
export const MAX_ALLOCATIONS = 2 ** 30;
/** The largest request size: sizes are unsigned 32-bit values (wasm32). */
export const MAX_SIZE = 2 ** 32 - 1;

/**
 * Builds a trace one operation at a time, checking each: what generators and the parser use.
 * Every method throws a RangeError for an operation that is not well formed.
 */
export class TraceBuilder {
  private readonly ops: TraceOp[] = [];
  private readonly lines: number[] = [];
  private count = 0;

  /** How many allocations so far. */
  get allocations(): number {
    return this.count;
  }

  /** How many operations so far. */
  get length(): number {
    return this.ops.length;
  }

  /** Appends `Alloc(size)` and returns its allocation number. */
  alloc(size: number, line?: number): number {
    checkSize(size);
    if (this.count >= MAX_ALLOCATIONS) throw new RangeError(`more than ${MAX_ALLOCATIONS} allocations`);
    const index = this.count++;
    this.push({ op: "alloc", index, size }, line);
    return index;
  }

  /** Appends `Free(index)`. */
  free(index: number, line?: number): void {
    this.checkIndex(index);
    this.push({ op: "free", index }, line);
  }

  /** Appends `Realloc(index, size)`. */
  realloc(index: number, size: number, line?: number): void {
    this.checkIndex(index);
    checkSize(size);
    this.push({ op: "realloc", index, size }, line);
  }

  build(name: string): Trace {
    const withLines = this.lines.length === this.ops.length && this.ops.length > 0;
    return { name, ops: this.ops, allocations: this.count, ...(withLines && { lines: this.lines }) };
  }

  private push(op: TraceOp, line: number | undefined): void {
    this.ops.push(op);
    if (line !== undefined) this.lines.push(line);
  }

  private checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`allocation number must be a non-negative integer, got ${index}`);
    if (index >= this.count) {
      throw new RangeError(`allocation ${index} does not exist yet (${this.count} allocation${this.count === 1 ? "" : "s"} so far)`);
    }
  }
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_SIZE) {
    throw new RangeError(`size must be an integer from 0 to ${MAX_SIZE}, got ${size}`);
  }
}

/** An operation as in the trace format, without the trailing comma: `Alloc(16)`, `Free(3)`, `Realloc(3,64)`. */
export function formatOp(op: TraceOp): string {
  switch (op.op) {
    case "alloc":
      return `Alloc(${op.size})`;
    case "free":
      return `Free(${op.index})`;
    case "realloc":
      return `Realloc(${op.index},${op.size})`;
  }
}

/** The whole trace in the text format {@link parseTrace} reads: one `Op(...),` per line. */
export function formatTrace(trace: Trace): string {
  return trace.ops.map((op) => `${formatOp(op)},\n`).join("");
}

/** Where operation `i` of `trace` comes from, for messages: `ls.trace:12` or `small-churn(seed 1) op 11`. */
export function describeOp(trace: Trace, i: number): string {
  const line = trace.lines?.[i];
  const where = line !== undefined ? `${trace.name}:${line}` : `${trace.name} op ${i}`;
  const op = trace.ops[i];
  return op ? `${where}: ${formatOp(op)}` : where;
}
