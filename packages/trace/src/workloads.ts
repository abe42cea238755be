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
  /**
   * "shape": what real programs do (the allocator must be fast and lean on it); "adversarial": a
   * pattern built to break one kind of allocator (unbounded growth, long walks), with bounded
   * live bytes, that a good allocator must still serve in bounded time and memory.
   */
  readonly kind: WorkloadKind;
  /** One sentence: the pattern and what it stresses. */
  readonly description: string;
  generate(options?: WorkloadOptions): Trace;
}

export type WorkloadKind = "shape" | "adversarial";

export type WorkloadName =
  | "small-churn"
  | "realloc-growth"
  | "fragmentation"
  | "long-lived"
  | "large-blocks"
  | "compiler"
  | "transcoder"
  | "source-map"
  | "interpreter"
  | "phase-change"
  | "realloc-churn"
  | "realloc-doubling"
  | "staircase"
  | "class-stranding"
  | "large-holes"
  | "bin-boundary"
  | "bin-head-poison"
  | "log-uniform"
  | "sawtooth"
  | "realloc-ping-pong"
  | "random-lifetimes"
  | "big-among-small";

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

/**
 * Runs `step` until the trace has at least `ops` operations. With `exact`, the trace is then cut
 * to `ops` operations (any prefix of a trace is a trace): for patterns whose steps are whole
 * rounds of thousands of operations. The first five workloads keep their whole last step, as they
 * always did.
 */
function generate(name: WorkloadName, options: WorkloadOptions, step: (b: TraceBuilder, r: Random) => void, exact = false): Trace {
  const seed = options.seed ?? 1;
  const ops = options.ops ?? 20_000;
  if (!Number.isSafeInteger(ops) || ops < 1) throw new RangeError(`workload ops must be a positive integer, got ${ops}`);
  const builder = new TraceBuilder();
  const random = new Random(seed);
  while (builder.length < ops) step(builder, random);
  const trace = builder.build(`${name}(seed ${seed})`);
  if (!exact || trace.ops.length === ops) return trace;
  const cut = trace.ops.slice(0, ops);
  let allocations = 0;
  for (const op of cut) if (op.op === "alloc") allocations++;
  return { name: trace.name, ops: cut, allocations };
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

// ---- shapes of real programs -------------------------------------------------------------------

/** Frees scheduled for later steps: `at(step, k)` then `due(step)` returns what dies at that step. */
class Deaths {
  private readonly buckets = new Map<number, number[]>();
  at(step: number, index: number): void {
    const bucket = this.buckets.get(step);
    if (bucket) bucket.push(index);
    else this.buckets.set(step, [index]);
  }
  due(step: number): number[] {
    const bucket = this.buckets.get(step);
    if (!bucket) return [];
    this.buckets.delete(step);
    return bucket;
  }
}

/** A size whose logarithm is normal around `median` (deviation `spread` in natural log units), clamped to [lo, hi]. */
function logNormal(r: Random, median: number, spread: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.round(median * Math.exp(spread * r.normal()))));
}

/**
 * A compiler: units of 11,000 allocations; median 41 bytes, 18 % of 1 to 8 KiB, four buffers of
 * 1 to 2 MiB. Half the objects are temporaries (freed 1 to 2,000 allocations later), the other
 * half (the tree, the tables) live to the end of the unit, when everything goes: ~9 MB live at
 * the peak (issue 10 measured ~9 MB), 22,000 operations per unit.
 */
function compiler(options: WorkloadOptions = {}): Trace {
  const UNIT = 11_000, HUGE = 4;
  let n = UNIT, kept: number[] = [];
  let deaths = new Deaths();
  let huge = new Set<number>();
  return generate("compiler", options, (b, r) => {
    if (n === UNIT) {
      for (const k of kept) b.free(k);
      kept = [];
      deaths = new Deaths();
      huge = new Set(Array.from({ length: HUGE }, () => r.int(0, UNIT - 1)));
      n = 0;
    }
    const size = huge.has(n) ? r.logInt(1 << 20, 2 << 20) : r.chance(0.18) ? r.logInt(1024, 8192) : logNormal(r, 41, 0.9, 1, 1023);
    const k = b.alloc(size);
    if (size < 1 << 20 && r.chance(0.5)) deaths.at(n + r.logInt(1, 2_000), k);
    else kept.push(k);
    for (const d of deaths.due(n)) b.free(d);
    n++;
    if (n === UNIT) for (let s = n; s <= n + 2_000; s++) for (const d of deaths.due(s)) b.free(d);
  }, true);
}

/**
 * A transcoder: units of 1,800 allocations, 96 % of 8 to 150 bytes and 4 % of 1 to 70 KiB, living
 * 1 to 300 allocations; almost all freed by the end of the unit (2 % live on to the end of the next).
 */
function transcoder(options: WorkloadOptions = {}): Trace {
  const UNIT = 1_800;
  let n = UNIT, survivors: number[] = [], next: number[] = [];
  let deaths = new Deaths();
  return generate("transcoder", options, (b, r) => {
    if (n === UNIT) {
      for (const k of survivors) b.free(k);
      survivors = next;
      next = [];
      deaths = new Deaths();
      n = 0;
    }
    const k = b.alloc(r.chance(0.04) ? r.logInt(1024, 70 * 1024) : r.logInt(8, 150));
    if (r.chance(0.02)) next.push(k);
    else deaths.at(n + r.logInt(1, 300), k);
    for (const d of deaths.due(n)) b.free(d);
    n++;
    if (n === UNIT) for (let s = n; s <= n + 300; s++) for (const d of deaths.due(s)) b.free(d);
  }, true);
}

/**
 * A source-map builder: units of 2,000 mappings of 144 bytes that live to the end of the unit,
 * each with a short-lived string of 8 to 64 bytes, and three buffers of 1.4 MiB (the output
 * being built) of which only the latest is live.
 */
function sourceMap(options: WorkloadOptions = {}): Trace {
  const UNIT = 2_000, BUFFER = 1_468_006;
  let n = UNIT, mappings: number[] = [], buffer = -1;
  const strings: number[] = [];
  return generate("source-map", options, (b, r) => {
    if (n === UNIT) {
      for (const k of mappings) b.free(k);
      mappings = [];
      n = 0;
    }
    if (n % (UNIT / 2) === 0 || n === UNIT - 1) {
      const previous = buffer;
      buffer = b.alloc(BUFFER);
      if (previous >= 0) b.free(previous);
    }
    mappings.push(b.alloc(144));
    strings.push(b.alloc(r.logInt(8, 64)));
    if (strings.length > r.int(1, 20)) b.free(strings.shift()!);
    n++;
  }, true);
}

/**
 * An interpreter: waves of 1,000 to 3,000 small objects of four sizes, then a collection that
 * frees, in address order, the 90 % of the wave that died and half of the older survivors.
 */
function interpreter(options: WorkloadOptions = {}): Trace {
  const SIZES = [16, 24, 40, 64] as const;
  let old: number[] = [];
  return generate("interpreter", options, (b, r) => {
    const wave = Array.from({ length: r.int(1_000, 3_000) }, () => b.alloc(r.pick(SIZES)));
    const promoted: number[] = [];
    const keptOld: number[] = [];
    // The sweep goes through the heap in allocation order: older survivors first, then the wave.
    for (const k of old) (r.chance(0.5) ? b.free(k) : keptOld.push(k));
    for (const k of wave) (r.chance(0.9) ? b.free(k) : promoted.push(k));
    old = [...keptOld, ...promoted];
  }, true);
}

/**
 * Phase changes: phases of 3,000 operations that cycle through small objects (16 to 64 bytes),
 * medium ones (256 bytes to 4 KiB), strings and vectors (8 to 512 bytes) and large buffers
 * (16 to 256 KiB); a phase frees 90 % of its objects when it ends and the rest when the next ends.
 */
function phaseChange(options: WorkloadOptions = {}): Trace {
  const PHASES: readonly { lo: number; hi: number; live: number }[] = [
    { lo: 16, hi: 64, live: 2_000 },
    { lo: 256, hi: 4096, live: 300 },
    { lo: 8, hi: 512, live: 1_000 },
    { lo: 16 * 1024, hi: 256 * 1024, live: 12 },
  ];
  let phase = -1, left = 0;
  let live = new Live(), carried: number[] = [];
  return generate("phase-change", options, (b, r) => {
    if (left === 0) {
      for (const k of carried) b.free(k);
      carried = [];
      while (live.size) {
        const k = live.take(r);
        if (r.chance(0.9)) b.free(k);
        else carried.push(k);
      }
      phase = (phase + 1) % PHASES.length;
      left = 3_000;
    }
    const p = PHASES[phase]!;
    if (live.size < p.live / 2 || (live.size < p.live && r.chance(0.5))) live.add(b.alloc(r.logInt(p.lo, p.hi)));
    else b.free(live.take(r));
    left--;
  }, true);
}

/**
 * Realloc growers among short-lived objects: objects of 8 to 256 bytes living 5 to 500 steps; one
 * in ten is a vector of 16 to 64 bytes grown by half or doubled 4 to 10 times, one growth a step.
 */
function reallocChurn(options: WorkloadOptions = {}): Trace {
  let step = 0;
  const deaths = new Deaths();
  const growing: { k: number; size: number; left: number }[] = [];
  return generate("realloc-churn", options, (b, r) => {
    if (r.chance(0.1)) {
      const size = r.int(16, 64);
      const k = b.alloc(size);
      growing.push({ k, size, left: r.int(4, 10) });
    } else {
      deaths.at(step + r.logInt(5, 500), b.alloc(r.logInt(8, 256)));
    }
    for (let i = growing.length - 1; i >= 0; i--) {
      const g = growing[i]!;
      g.size = r.chance(0.5) ? g.size * 2 : Math.ceil(g.size * 1.5);
      b.realloc(g.k, g.size);
      if (--g.left === 0) {
        deaths.at(step + r.logInt(5, 500), g.k);
        growing.splice(i, 1);
      }
    }
    for (const d of deaths.due(step)) b.free(d);
    step++;
  }, true);
}

// ---- adversarial patterns ----------------------------------------------------------------------

/**
 * Realloc doubling (issue 10): small objects of 16 to 79 bytes living 200 to 999 steps, one in five
 * grown by realloc doubling 12 times in its first 12 steps (to 64 to 316 KiB). Live bytes stay
 * flat (~26 MiB); an allocator that cannot reuse the blocks a doubling leaves climbs forever.
 */
function reallocDoubling(options: WorkloadOptions = {}): Trace {
  let step = 0;
  const deaths = new Deaths();
  const growing: { k: number; size: number; left: number; born: number }[] = [];
  return generate("realloc-doubling", options, (b, r) => {
    const size = r.int(16, 79);
    const k = b.alloc(size);
    deaths.at(step + r.int(200, 999), k);
    if (r.chance(0.2)) growing.push({ k, size, left: 12, born: step });
    for (let i = growing.length - 1; i >= 0; i--) {
      const g = growing[i]!;
      if (g.born === step) continue;
      g.size *= 2;
      b.realloc(g.k, g.size);
      if (--g.left === 0) growing.splice(i, 1);
    }
    for (const d of deaths.due(step)) {
      const at = growing.findIndex((g) => g.k === d);
      if (at >= 0) growing.splice(at, 1);
      b.free(d);
    }
    step++;
  }, true);
}

/**
 * The staircase (issue 10): for k = 1 to 400, `malloc(24 KiB × k + 1)`, `malloc(16)` kept, the
 * large one freed; then the small ones are freed and the staircase starts again. Live bytes never
 * pass 9.4 MiB; an allocator whose small blocks pin each large hole needs the sum of all steps.
 */
function staircase(options: WorkloadOptions = {}): Trace {
  let k = 0;
  let kept: number[] = [];
  return generate("staircase", options, (b) => {
    if (k === 400) {
      for (const s of kept) b.free(s);
      kept = [];
      k = 0;
    }
    k++;
    const large = b.alloc(24 * 1024 * k + 1);
    kept.push(b.alloc(16));
    b.free(large);
  }, true);
}

/**
 * Size-class stranding (issue 10, scaled down to 256 KiB so that a round is ~20,000 operations):
 * each round fills every class from 16 bytes to 2 KiB to 16 KiB and frees it, then fills 256 KiB
 * with blocks of one small size (64, 48, 96, 32, 128, 24: another each round) and frees them,
 * then 256 KiB of 64 KiB blocks, freed. Never more than 256 KiB live; classes that keep their
 * memory forever hold every round's.
 */
function classStranding(options: WorkloadOptions = {}): Trace {
  const CLASSES = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048] as const;
  const SMALL = [64, 48, 96, 32, 128, 24] as const;
  const VOLUME = 256 * 1024;
  let round = 0;
  const fill = (b: TraceBuilder, size: number, bytes: number) => {
    const blocks = Array.from({ length: Math.floor(bytes / size) }, () => b.alloc(size));
    for (const k of blocks) b.free(k);
  };
  return generate("class-stranding", options, (b) => {
    for (const size of CLASSES) fill(b, size, 16 * 1024);
    fill(b, SMALL[round % SMALL.length]!, VOLUME);
    fill(b, 64 * 1024, VOLUME);
    round++;
  }, true);
}

/**
 * Large holes (issue 10): 2,000 blocks of 1 to 16 KiB, a random half freed, then each step frees a
 * random live block and asks for another of 1 to 16 KiB: a thousand free holes above 1 KiB and
 * requests in the same range, where a first fit walks the holes that are too small.
 */
function largeHoles(options: WorkloadOptions = {}): Trace {
  const live = new Live();
  let started = false;
  return generate("large-holes", options, (b, r) => {
    if (!started) {
      for (let i = 0; i < 2_000; i++) live.add(b.alloc(r.logInt(1025, 16 * 1024)));
      for (let i = 0; i < 1_000; i++) b.free(live.take(r));
      started = true;
    }
    b.free(live.take(r));
    live.add(b.alloc(r.logInt(1025, 16 * 1024)));
  }, true);
}

/**
 * Sizes around a bin boundary: 990 to 1,030 bytes, allocated and freed at random, about 2,000
 * live (a step allocates with probability 1 - live / 4,000, else frees a random block). 1 KiB is
 * where the free list's bins widen (one bin per 16 bytes below, per 32 above) and where size
 * classes hand over to the allocator below them (`maxSmall`): a block freed on one side cannot
 * serve a request from the other, so segregated storage strands it, and an allocator that rounds
 * requests up to the next bin wastes the space between.
 */
function binBoundary(options: WorkloadOptions = {}): Trace {
  const live = new Live();
  return generate("bin-boundary", options, (b, r) => {
    if (r.next() * 4_000 >= live.size) live.add(b.alloc(r.int(990, 1_030)));
    else b.free(live.take(r));
  }, true);
}

/**
 * Bin-head poison, in rounds of 1,000 operations: 200 blocks are allocated in a row, of a size S
 * of 1 to 8 KiB and of S + 1.6 % in turn, each followed by a keeper of S; then all 200 are freed:
 * half the smaller ones, the larger ones, the other half of the smaller ones. The keepers stay
 * live, so the freed blocks cannot merge: the bin of S holds 100 free blocks just too small for the
 * 100 requests of S + 0.1-1.6 % that come next, 50 of them at each end of the bin (the first freed
 * and the last), the 100 fitting ones between. An allocator that looks only at the first block of
 * the request's bin never finds the fitting ones; one that walks it, from either end, walks past
 * 50 too-small blocks for every request. Everything is freed when the round ends.
 */
function binHeadPoison(options: WorkloadOptions = {}): Trace {
  const PAIRS = 200;
  return generate("bin-head-poison", options, (b, r) => {
    const small = r.logInt(1024, 8192);
    const fitting = small + Math.max(16, small >> 6);
    const keepers: number[] = [], poisons: number[] = [], fits: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      if (i % 2) fits.push(b.alloc(fitting));
      else poisons.push(b.alloc(small));
      keepers.push(b.alloc(small));
    }
    for (const k of [...poisons.slice(0, PAIRS / 4), ...fits, ...poisons.slice(PAIRS / 4)]) b.free(k);
    const requests = Array.from({ length: PAIRS / 2 }, () => b.alloc(r.int(small + 1, fitting)));
    for (const k of [...keepers, ...requests]) b.free(k);
  }, true);
}

/**
 * Log-uniform sizes, 16 bytes to 64 KiB (as many near 16 bytes as near 64 KiB), allocated and
 * freed at random, about 1,500 live (a step allocates with probability 1 - live / 3,000): every
 * bin and every class in use at once, blocks split and merged across the whole range. Segregated
 * storage without merging strands memory in every class; an allocator tuned for small objects
 * meets as many large ones.
 */
function logUniform(options: WorkloadOptions = {}): Trace {
  const live = new Live();
  return generate("log-uniform", options, (b, r) => {
    if (r.next() * 3_000 >= live.size) live.add(b.alloc(r.logInt(16, 64 * 1024)));
    else b.free(live.take(r));
  }, true);
}

/**
 * A sawtooth: sizes grow by 3 to 7 % (and 8 bytes) a step from 16 bytes to 20 KB, then start again
 * at 16; when 400 blocks are live, every other one (in allocation order) is freed. Each hole is a
 * little smaller than every request after it in the tooth, so a first fit walks them all and an
 * allocator that does not merge or split never reuses them; the survivors of each halving pin
 * holes of every size.
 */
function sawtooth(options: WorkloadOptions = {}): Trace {
  let size = 16;
  let live: number[] = [];
  return generate("sawtooth", options, (b, r) => {
    live.push(b.alloc(size));
    size = size > 20_000 ? 16 : Math.floor(size * (1 + r.int(3, 7) / 100)) + 8;
    if (live.length < 400) return;
    live.forEach((k, i) => i % 2 === 0 && b.free(k));
    live = live.filter((_, i) => i % 2 === 1);
  }, true);
}

/**
 * Realloc ping-pong: 64 vectors, each step one of them realloc'd to a random size of 16 bytes to
 * 64 KiB (a shrink as often as a growth, by up to 4,000 times), among 500 small blocks of 8 to 128
 * bytes, one allocated a step and a random one freed. A shrink in place leaves a tail the small
 * blocks move into, so the next growth cannot stay in place; an allocator that keeps a block at
 * its largest size, or never shrinks, holds every vector's maximum.
 */
function reallocPingPong(options: WorkloadOptions = {}): Trace {
  const vectors: number[] = [];
  const small = new Live();
  return generate("realloc-ping-pong", options, (b, r) => {
    while (vectors.length < 64) vectors.push(b.alloc(64));
    b.realloc(r.pick(vectors), r.int(16, 64 * 1024));
    small.add(b.alloc(r.int(8, 128)));
    if (small.size > 500) b.free(small.take(r));
  }, true);
}

/**
 * Random lifetimes: one allocation a step, 90 % of 8 to 256 bytes and 10 % of 257 bytes to 32 KiB;
 * 80 % live 1 to 50 steps, 20 % 1,000 to 20,000 steps. It starts in its steady state (the
 * long-lived objects of the 20,000 steps before the first are allocated first, ~2,100 of them), so
 * its live bytes are flat from the start. Long-lived blocks scattered among short-lived ones pin
 * the pages and spans around them: an allocator that groups blocks by size rather than by lifetime
 * keeps whole spans alive for one block.
 */
function randomLifetimes(options: WorkloadOptions = {}): Trace {
  const LONG = 20_000;
  const deaths = new Deaths();
  let step = -1;
  const size = (r: Random) => (r.chance(0.9) ? r.int(8, 256) : r.int(257, 32 * 1024));
  return generate("random-lifetimes", options, (b, r) => {
    if (step < 0) {
      // The objects born in the 20,000 steps before step 0 that are still live at step 0.
      for (let born = -LONG; born < 0; born++) {
        if (!r.chance(0.2)) continue;
        const dies = born + r.int(1_000, LONG);
        if (dies > 0) deaths.at(dies, b.alloc(size(r)));
      }
      step = 0;
    }
    const k = b.alloc(size(r));
    deaths.at(step + (r.chance(0.8) ? r.int(1, 50) : r.int(1_000, LONG)), k);
    for (const d of deaths.due(step)) b.free(d);
    step++;
  }, true);
}

/**
 * A big buffer among small blocks: 3,000 small blocks of 16 to 200 bytes, one allocated a step and
 * a random one freed; every 500 steps a new buffer of 200 to 600 KB replaces the last (allocated
 * before the old one is freed). Small blocks settle in the freed buffer's space, so the next buffer
 * finds no hole large enough: an allocator that places small blocks anywhere grows the heap by a
 * buffer every few rounds.
 */
function bigAmongSmall(options: WorkloadOptions = {}): Trace {
  const small = new Live();
  let step = 0, buffer = -1;
  return generate("big-among-small", options, (b, r) => {
    if (step % 500 === 0) {
      const next = b.alloc(r.int(200_000, 600_000));
      if (buffer >= 0) b.free(buffer);
      buffer = next;
    }
    small.add(b.alloc(r.int(16, 200)));
    if (small.size > 3_000) b.free(small.take(r));
    step++;
  }, true);
}

/** Every workload, in a fixed order: the first five as they always were, then the shapes, then the adversarial patterns. */
export const WORKLOADS: readonly Workload[] = [
  { name: "small-churn", kind: "shape", description: "many small objects (1-256 bytes) allocated and freed at random around 1 000 live", generate: smallChurn },
  { name: "realloc-growth", kind: "shape", description: "a buffer grown by realloc doubling to 256 KiB among small objects", generate: reallocGrowth },
  { name: "fragmentation", kind: "adversarial", description: "every other block freed, then larger blocks that do not fit the holes, another size every round", generate: fragmentation },
  { name: "long-lived", kind: "shape", description: "2 000 long-lived objects and a hot set of 16 small objects replaced over and over", generate: longLived },
  { name: "large-blocks", kind: "shape", description: "blocks of 4 KiB to 1 MiB, at most 8 live", generate: largeBlocks },
  { name: "compiler", kind: "shape", description: "units of 11 000 allocations (median 41 B, 18 % of 1-8 KiB, four of 1-2 MiB), half temporaries, the rest freed at the unit's end: ~10 MiB live at the peak", generate: compiler },
  { name: "transcoder", kind: "shape", description: "units of 1 800 short-lived allocations, 96 % of 8-150 B and 4 % of 1-70 KiB, almost all freed by the unit's end", generate: transcoder },
  { name: "source-map", kind: "shape", description: "units of 2 000 long-lived 144 B mappings with short-lived strings beside them, and 1.4 MiB output buffers", generate: sourceMap },
  { name: "interpreter", kind: "shape", description: "waves of small objects of four sizes, 90 % swept by a collector in address order, survivors aging out", generate: interpreter },
  { name: "phase-change", kind: "shape", description: "phases of 3 000 operations cycling through small, medium, mixed and large objects, each phase's objects freed when it ends", generate: phaseChange },
  { name: "realloc-churn", kind: "shape", description: "short-lived objects of 8-256 B among vectors grown by realloc (×1.5 or ×2, 4-10 times)", generate: reallocChurn },
  { name: "realloc-doubling", kind: "adversarial", description: "objects of 16-79 B living 200-999 steps, one in five doubled by realloc 12 times (to 64-316 KiB): flat ~26 MiB live", generate: reallocDoubling },
  { name: "staircase", kind: "adversarial", description: "malloc(24 KiB × k + 1), malloc(16) kept, the large one freed, for k = 1..400, again and again", generate: staircase },
  { name: "class-stranding", kind: "adversarial", description: "every size class filled to 16 KiB and freed, then 256 KiB of a small size and 256 KiB of 64 KiB blocks, another small size each round", generate: classStranding },
  { name: "large-holes", kind: "adversarial", description: "a thousand free holes of 1-16 KiB and requests in the same range, one free and one malloc a step", generate: largeHoles },
  { name: "bin-boundary", kind: "adversarial", description: "sizes of 990-1 030 B around the 1 KiB bin boundary, allocated and freed at random, ~2 000 live", generate: binBoundary },
  { name: "bin-head-poison", kind: "adversarial", description: "rounds of 100 free blocks of 1-8 KiB just too small for the next 100 requests at both ends of their bin, 100 fitting ones between", generate: binHeadPoison },
  { name: "log-uniform", kind: "adversarial", description: "log-uniform sizes of 16 B-64 KiB allocated and freed at random, ~1 500 live (~12 MiB)", generate: logUniform },
  { name: "sawtooth", kind: "adversarial", description: "sizes growing 3-7 % a step from 16 B to 20 KB and back to 16, every other block freed when 400 are live", generate: sawtooth },
  { name: "realloc-ping-pong", kind: "adversarial", description: "64 vectors realloc'd to random sizes of 16 B-64 KiB, shrinking as often as growing, among 500 small blocks", generate: reallocPingPong },
  { name: "random-lifetimes", kind: "adversarial", description: "90 % of 8-256 B and 10 % of 257 B-32 KiB, 80 % living 1-50 steps and 20 % 1 000-20 000, from the steady state", generate: randomLifetimes },
  { name: "big-among-small", kind: "adversarial", description: "a buffer of 200-600 KB replaced every 500 steps among 3 000 small blocks freed at random", generate: bigAmongSmall },
];

/** Generates workload `name`. Throws a RangeError for an unknown name. */
export function generateWorkload(name: WorkloadName, options?: WorkloadOptions): Trace {
  const workload = WORKLOADS.find((w) => w.name === name);
  if (!workload) throw new RangeError(`unknown workload "${name}" (known: ${WORKLOADS.map((w) => w.name).join(", ")})`);
  return workload.generate(options);
}
