import { Random } from "./random.ts";
import { TraceBuilder, type Trace } from "./trace.ts";

/**
 * Seeded, deterministic workloads: the project's own allocation patterns, so tests and benchmarks
 * never depend on recorded traces being present. The same name, seed and length always give the
 * same trace.
 */
export interface WorkloadOptions {
  /** Default 1. */
  readonly seed?: number;
  /** About how many operations to generate (the trace stops at the first step past it). Default 20 000. */
  readonly ops?: number;
}

export interface Workload {
  readonly name: WorkloadName;
  /** One sentence: the pattern and what it stresses. */
  readonly description: string;
  generate(options?: WorkloadOptions): Trace;
}

export type WorkloadName = "small-churn" | "realloc-growth" | "fragmentation" | "long-lived" | "large-blocks";

/** The usual sizes of small objects (C structs, strings, vectors' first buffers). */
const SMALL_SIZES = [8, 12, 16, 24, 32, 40, 48, 64, 96, 128] as const;

/** Live allocations, with O(1) removal of a random one. */
class Live {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  add(index: number): void {
    this.items.push(index);
  }
  /** Removes and returns a random live allocation. */
  take(random: Random): number {
    const i = Math.floor(random.next() * this.items.length);
    const index = this.items[i]!;
    this.items[i] = this.items[this.items.length - 1]!;
    this.items.pop();
    return index;
  }
}

function smallSize(random: Random): number {
  return random.chance(0.8) ? random.pick(SMALL_SIZES) : random.int(1, 256);
}

/** Runs `step` until the trace has at least `ops` operations. */
function generate(name: WorkloadName, options: WorkloadOptions, step: (b: TraceBuilder, r: Random) => void): Trace {
  const seed = options.seed ?? 1;
  const ops = options.ops ?? 20_000;
  if (!Number.isSafeInteger(ops) || ops < 1) throw new RangeError(`workload ops must be a positive integer, got ${ops}`);
  const builder = new TraceBuilder();
  const random = new Random(seed);
  while (builder.length < ops) step(builder, random);
  return builder.build(`${name}(seed ${seed})`);
}

/** Many small objects: a live set that drifts between 500 and 1500 objects of 1-256 bytes. */
function smallChurn(options: WorkloadOptions = {}): Trace {
  const live = new Live();
  return generate("small-churn", options, (b, r) => {
    const grow = live.size < 500 || (live.size < 1500 && r.chance(0.5));
    if (grow) live.add(b.alloc(smallSize(r)));
    else b.free(live.take(r));
  });
}

/**
 * A buffer grown by realloc doubling (16 bytes to 256 KiB, then freed and started again) among
 * small objects churned around it: each doubling finds small blocks in its way.
 */
function reallocGrowth(options: WorkloadOptions = {}): Trace {
  const live = new Live();
  let buffer = -1;
  let size = 0;
  return generate("realloc-growth", options, (b, r) => {
    if (buffer < 0 || size >= 256 * 1024) {
      if (buffer >= 0) b.free(buffer);
      size = 16;
      buffer = b.alloc(size);
    } else {
      size *= 2;
      b.realloc(buffer, size);
    }
    for (let i = r.int(2, 8); i > 0; i--) {
      if (live.size < 64 || r.chance(0.5)) live.add(b.alloc(smallSize(r)));
      else b.free(live.take(r));
    }
  });
}

/**
 * Fragmentation: fill with blocks of one size, free every other one, then ask for blocks a bit
 * too large for the holes; free the survivors and repeat with another size. A first fit that
 * does not coalesce, or a size class that never returns memory, shows here.
 */
function fragmentation(options: WorkloadOptions = {}): Trace {
  return generate("fragmentation", options, (b, r) => {
    const small = r.pick([16, 24, 32, 48, 64, 96, 128, 256]);
    const count = r.int(200, 400);
    const blocks = Array.from({ length: count }, () => b.alloc(small));
    const kept: number[] = [];
    blocks.forEach((index, i) => (i % 2 === 0 ? b.free(index) : kept.push(index)));
    const larger = Array.from({ length: count / 4 }, () => b.alloc(small * 2 + r.int(8, 64)));
    for (const index of kept) b.free(index);
    for (const index of larger) b.free(index);
  });
}

/**
 * A long-lived heap with a small hot set: 2 000 objects of 16 bytes to 4 KiB allocated once and
 * never freed, then a hot set of 16 small objects replaced over and over.
 */
function longLived(options: WorkloadOptions = {}): Trace {
  const hot: number[] = [];
  let settled = false;
  return generate("long-lived", options, (b, r) => {
    if (!settled) {
      for (let i = 0; i < 2_000; i++) b.alloc(r.chance(0.9) ? smallSize(r) : r.logInt(257, 4096));
      for (let i = 0; i < 16; i++) hot.push(b.alloc(smallSize(r)));
      settled = true;
      return;
    }
    const slot = r.int(0, hot.length - 1);
    b.free(hot[slot]!);
    hot[slot] = b.alloc(smallSize(r));
  });
}

/** Large blocks, 4 KiB to 1 MiB (log-uniform), at most 8 live at a time. */
function largeBlocks(options: WorkloadOptions = {}): Trace {
  const live = new Live();
  return generate("large-blocks", options, (b, r) => {
    if (live.size < 2 || (live.size < 8 && r.chance(0.5))) live.add(b.alloc(r.logInt(4096, 1 << 20)));
    else b.free(live.take(r));
  });
}

/** Every workload, in a fixed order. */
export const WORKLOADS: readonly Workload[] = [
  { name: "small-churn", description: "many small objects (1-256 bytes) allocated and freed at random around 1 000 live", generate: smallChurn },
  { name: "realloc-growth", description: "a buffer grown by realloc doubling to 256 KiB among small objects", generate: reallocGrowth },
  { name: "fragmentation", description: "every other block freed, then larger blocks that do not fit the holes", generate: fragmentation },
  { name: "long-lived", description: "2 000 long-lived objects and a hot set of 16 small objects replaced over and over", generate: longLived },
  { name: "large-blocks", description: "blocks of 4 KiB to 1 MiB, at most 8 live", generate: largeBlocks },
];

/** Generates workload `name`. Throws a RangeError for an unknown name. */
export function generateWorkload(name: WorkloadName, options?: WorkloadOptions): Trace {
  const workload = WORKLOADS.find((w) => w.name === name);
  if (!workload) throw new RangeError(`unknown workload "${name}" (known: ${WORKLOADS.map((w) => w.name).join(", ")})`);
  return workload.generate(options);
}
