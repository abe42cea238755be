import { RECORD_MODULE } from "./swap.ts";
import { runWasi, type WasiRun } from "./wasi.ts";

/** A recorded run: the trace in alloc's format (`Alloc(n)`, `Free(k)`, `Realloc(k,n)`) and counts. */
export interface RecordedTrace {
  /** The trace, one operation per line, for `alloc replay` and `parseTrace`. */
  readonly text: string;
  readonly counts: { readonly alloc: number; readonly free: number; readonly realloc: number };
  readonly operations: number;
  readonly run: WasiRun;
}

/**
 * The host side of a module swapped with `record: true`: its `alloc_record` imports, turning every
 * allocator call into a line of a trace. Allocations are numbered in order (`Alloc` lines from 0);
 * a `Free` or `Realloc` names the allocation its pointer came from. Alignments are not recorded
 * (aligned_alloc and posix_memalign become `Alloc`), nor is calloc's zeroing.
 */
export class TraceRecorder {
  private readonly lines: string[] = [];
  private readonly live = new Map<number, number>();
  private next = 0;
  readonly counts = { alloc: 0, free: 0, realloc: 0 };

  /** The imports to instantiate the module with. */
  imports(): WebAssembly.Imports {
    return {
      [RECORD_MODULE]: {
        alloc: (size: number, ptr: number) => this.alloc(size >>> 0, ptr >>> 0),
        free: (ptr: number) => this.free(ptr >>> 0),
        realloc: (old: number, size: number, ptr: number) => this.realloc(old >>> 0, size >>> 0, ptr >>> 0),
      },
    };
  }

  get text(): string {
    return this.lines.map((l) => `${l}\n`).join("");
  }

  private alloc(size: number, ptr: number): void {
    this.lines.push(`Alloc(${size}),`);
    this.counts.alloc++;
    const k = this.next++;
    if (ptr !== 0) this.live.set(ptr, k);
  }

  private free(ptr: number): void {
    const k = this.live.get(ptr);
    if (k === undefined) return; // free(0), or a pointer from before the recording
    this.lines.push(`Free(${k}),`);
    this.counts.free++;
    this.live.delete(ptr);
  }

  private realloc(old: number, size: number, ptr: number): void {
    const k = this.live.get(old);
    if (k === undefined) return this.alloc(size, ptr); // realloc(0, n) is malloc(n)
    this.lines.push(`Realloc(${k},${size}),`);
    this.counts.realloc++;
    // Moved, or freed by realloc(p, 0); a failed realloc leaves the block where it was.
    if (ptr !== 0 || size === 0) this.live.delete(old);
    if (ptr !== 0) this.live.set(ptr, k);
  }
}

/** Runs a module swapped with `record: true` under node:wasi and returns the trace of its allocator calls. */
export async function recordTrace(binary: Uint8Array, args: readonly string[] = []): Promise<RecordedTrace> {
  const recorder = new TraceRecorder();
  const run = await runWasi(binary, args, recorder.imports());
  const { alloc, free, realloc } = recorder.counts;
  return { text: recorder.text, counts: { ...recorder.counts }, operations: alloc + free + realloc, run };
}
