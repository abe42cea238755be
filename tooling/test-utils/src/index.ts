/**
 * Helpers shared by the test suites of every package: a seeded random source, a JS model of the
 * live blocks that catches overlaps and misalignment, and where the shared traces live.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same sequence everywhere. */
export function rng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** An integer in [lo, hi]. */
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
  };
}

/**
 * The live blocks of an allocator under test, kept in JS: `add` throws when a new block is
 * misaligned or overlaps a live one; each block is filled with a tag byte that `remove` checks,
 * so a block the allocator corrupted (or handed out twice) is caught when it is freed.
 */
export class BlockModel {
  private readonly live = new Map<number, { size: number; tag: number }>();
  private nextTag = 1;
  liveBytes = 0;
  peakLiveBytes = 0;

  constructor(private readonly memory: () => Uint8Array) {}

  get count(): number {
    return this.live.size;
  }

  /** Records block `ptr` of `size` bytes; checks alignment and overlap; writes its tag. */
  add(ptr: number, size: number, align = 8): void {
    if (ptr === 0) throw new Error(`add: null block`);
    if (ptr % align !== 0) throw new Error(`block ${ptr} (size ${size}) is not ${align}-aligned`);
    for (const [p, b] of this.live) {
      const overlap = ptr < p + Math.max(b.size, 1) && p < ptr + Math.max(size, 1);
      if (overlap) throw new Error(`block [${ptr}, +${size}) overlaps live block [${p}, +${b.size})`);
    }
    const mem = this.memory();
    if (ptr + size > mem.length) throw new Error(`block [${ptr}, +${size}) is past the end of memory (${mem.length})`);
    const tag = (this.nextTag++ % 255) + 1;
    mem.fill(tag, ptr, ptr + size);
    this.live.set(ptr, { size, tag });
    this.liveBytes += size;
    this.peakLiveBytes = Math.max(this.peakLiveBytes, this.liveBytes);
  }

  /** Checks block `ptr`'s tag (its first `keep` bytes only, when given) and forgets it. */
  remove(ptr: number, keep?: number): { size: number; tag: number } {
    const b = this.live.get(ptr);
    if (!b) throw new Error(`remove: ${ptr} is not a live block`);
    this.check(ptr, keep);
    this.live.delete(ptr);
    this.liveBytes -= b.size;
    return b;
  }

  /** Throws unless block `ptr` still holds its tag in its first `upTo` bytes (default: all). */
  check(ptr: number, upTo?: number): void {
    const b = this.live.get(ptr)!;
    const mem = this.memory();
    const end = ptr + Math.min(b.size, upTo ?? b.size);
    for (let i = ptr; i < end; i++) {
      if (mem[i] !== b.tag) throw new Error(`block ${ptr} (size ${b.size}) corrupted at +${i - ptr}: ${mem[i]} != tag ${b.tag}`);
    }
  }

  pointers(): number[] {
    return [...this.live.keys()];
  }
}

/** `../shared/traces` beside the repository, or undefined where it is absent (tests then skip those cases). */
export function sharedTracesDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = join(here, "..", "..", "..", "..", "shared", "traces");
  return existsSync(dir) ? dir : undefined;
}

/** What a debug build's HeapFaultError (from `@alloc/core`) carries. */
export interface FaultLike {
  readonly name: string;
  readonly kind: string;
  readonly layer: string;
  readonly ptr: number;
  readonly message: string;
  readonly cause?: unknown;
}

/**
 * Runs `fn`, which must throw a debug build's HeapFaultError, and returns it. (Recognised by its
 * name: this package does not depend on `@alloc/core`, which tests with it.) Throws when `fn`
 * returns normally or throws anything else, so a missed fault fails the test.
 */
export function faultOf(fn: () => unknown): FaultLike {
  try {
    fn();
  } catch (error) {
    if (error instanceof Error && error.name === "HeapFaultError") return error as unknown as FaultLike;
    throw error;
  }
  throw new Error("expected a HeapFaultError, but nothing was thrown");
}
