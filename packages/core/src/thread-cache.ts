/**
 * Thread caches: a thread-safe build's small blocks are kept per thread, so that most malloc and
 * free calls take no lock and no atomic instruction (the threads scale).
 *
 * ```text
 *   per instance (a Wasm global: one per thread)      in memory (allocated from the heap, per thread)
 *   table -------------------------------------------> [ head 0 | bytes 0 ][ head 1 | bytes 1 ] ...
 *                                                          |        class k: blocks of (k + 1) * spacing bytes
 *                                                          v
 *                                                         [next | ...] -> [next | ...] -> 0
 * ```
 *
 * - `malloc(size)`, size in [1, maxSize]: pops a block of the size's class from this thread's
 *   list; no lock, no atomics. On a miss (or before the thread's first call) it takes the lock,
 *   makes the table if there is none, and allocates a block of the class's full size from the
 *   strategy below, and more of them onto the list while the class holds less than half of its
 *   budget, and 1 KiB at most (one lock for many hits).
 * - `free(ptr)`: the block's class is the largest whose size is at most its usable size (read
 *   without the lock: {@link AllocatorFunctions.usableSizeUnlocked}); it goes onto the freeing
 *   thread's list while the class's cached bytes stay within `classBytes`, else to the strategy
 *   under the lock. A block freed by another thread than the one that allocated it simply joins
 *   the freeing thread's cache: blocks have no owner thread, so there are no remote-free lists to
 *   drain and no CAS anywhere (each thread's table is its own, made lazily under the lock the
 *   first time the thread misses).
 * - `calloc` of at most maxSize bytes: malloc, then zeroes the block (a cached block is dirty).
 *   Everything else (`realloc`, `aligned_alloc`, larger requests) runs under the lock as before;
 *   the strategy below sees every cached block as allocated, so realloc of a block that came from
 *   the cache, the debug build's heap walker and heap statistics work unchanged (cached blocks are
 *   in use as far as they can tell).
 * - `thread_cache_flush()`: frees every cached block of the calling thread and its table under
 *   the lock. A thread calls it before it ends (a runtime's thread-exit hook); a thread that ends
 *   without it leaks at most its cache: `classes * classBytes` bytes counted in class sizes, each
 *   block less than one spacing larger than its class (twice that at most), plus the table.
 *
 * Debug builds look the class up under the lock (the strategy's checks of the pointer read its
 * shared structures), and trap on a free of a block that is already in the thread's cache.
 */
import type { Expr, FunctionScope, Local, Var } from "./codegen.ts";
import type { AllocatorFunctions, BuildLimits, EmitContext } from "./contracts.ts";
import { check, checkOptions, describeValue } from "./errors.ts";
import { ensureLock } from "./threads.ts";

/** The function a thread calls before it ends, to hand its cache back. */
export const THREAD_CACHE_FLUSH = "thread_cache_flush";

/** The {@link AllocatorOptions.threadCache} option as an object. */
export interface ThreadCacheOptions {
  /**
   * The largest request served from the cache, in bytes: a multiple of the class spacing
   * (max(16, minAlign)), at most 64 classes. Default 512.
   */
  readonly maxSize?: number;
  /**
   * The most bytes a thread keeps cached per class (counted in class sizes): frees beyond it go
   * to the strategy under the lock. At least maxSize, at most 1 MiB. Default 1024.
   */
  readonly classBytes?: number;
}

/** The thread cache's layout for one build. */
export interface ResolvedThreadCache {
  readonly maxSize: number;
  readonly classBytes: number;
}

/** The most bytes one refill puts on a class's list (or half its budget, when that is less). */
export const REFILL_BYTES = 1024;

export const DEFAULT_THREAD_CACHE: ResolvedThreadCache = { maxSize: 512, classBytes: 1024 };

/** Checks the `threadCache` option: undefined when there is no cache. */
export function resolveThreadCache(option: unknown, threads: boolean): ResolvedThreadCache | undefined {
  if (option === undefined || option === false) return undefined;
  check(
    option === true || (typeof option === "object" && option !== null && !Array.isArray(option)),
    `threadCache must be true, false or { maxSize?, classBytes? }, got ${describeValue(option)}`,
  );
  check(threads, "threadCache needs threads: a thread cache is for a thread-safe build (threads: true, alloc build --threads)");
  if (option === true) return DEFAULT_THREAD_CACHE;
  checkOptions("threadCache", option, ["maxSize", "classBytes"]);
  const { maxSize = DEFAULT_THREAD_CACHE.maxSize, classBytes = DEFAULT_THREAD_CACHE.classBytes } = option as ThreadCacheOptions;
  check(Number.isInteger(maxSize) && maxSize >= 16, `threadCache.maxSize must be an integer of at least 16, got ${describeValue(maxSize)}`);
  check(
    Number.isInteger(classBytes) && classBytes >= maxSize && classBytes <= 2 ** 20,
    `threadCache.classBytes must be an integer from maxSize (${maxSize}) to 1048576, got ${describeValue(classBytes)}`,
  );
  return { maxSize, classBytes };
}

/** The spacing of the classes (a power of two) and their number, for the build's limits. */
function classesFor(cache: ResolvedThreadCache, limits: BuildLimits): { spacing: number; classes: number } {
  const spacing = Math.max(16, limits.minAlign);
  const classes = cache.maxSize / spacing;
  check(
    Number.isInteger(classes) && classes >= 1 && classes <= 64,
    `threadCache.maxSize (${cache.maxSize}) must be a multiple of the class spacing, ${spacing} bytes (max(16, minAlign)), ` +
      `with at most 64 classes (up to ${64 * spacing})`,
  );
  return { spacing, classes };
}

/** What the cache replaces: which C functions are wanted, and the unlocked calloc when it is. */
export interface CachedEntries {
  readonly malloc: boolean;
  readonly free: boolean;
  /** The C API's calloc without the lock, for requests above maxSize. */
  readonly calloc?: string;
}

/**
 * Emits the cached `malloc`, `free`, `calloc` (those `wanted` asks for) and `thread_cache_flush`
 * over the top strategy `top`, under the names `name(fn)`. Throws an AllocConfigError when `top` cannot give a block's size without the lock.
 */
export function emitThreadCache(
  ctx: EmitContext,
  top: AllocatorFunctions,
  strategy: string,
  cache: ResolvedThreadCache,
  wanted: CachedEntries,
  name: (fn: string) => string,
): Record<string, string> {
  const { cg, limits } = ctx;
  const usableSize = top.usableSize;
  check(
    usableSize !== undefined && top.usableSizeUnlocked === true,
    `threadCache: the top strategy "${strategy}" ${usableSize ? "does not promise that its usableSize reads only what the block's owner writes" : "records no block sizes"}, ` +
      `so a thread cannot tell a block's size class without the lock (see usableSizeUnlocked in @alloc/core's contracts): ` +
      `put size-classes on top (-s size-classes,${strategy}) or drop threadCache`,
  );
  const { spacing, classes } = classesFor(cache, limits);
  const m = cg.module;
  const W = cg.ptrBytes;
  const shift = Math.log2(spacing);
  const slotShift = Math.log2(2 * W);
  const tableBytes = classes * 2 * W;
  const { lock, unlock } = ensureLock(cg);
  const table = cg.instanceGlobal(cg.name("thread-cache", "table"));
  const minAlign = cg.size(limits.minAlign);
  const locked = (stmts: Expr[]) => [cg.callVoid(lock, []), ...stmts, cg.callVoid(unlock, [])];
  /** The slot of class `cls` in table `t`: the list head, then the bytes cached (`W` further). */
  const slotOf = (t: Expr, cls: Expr) => cg.add(t, cg.shl(cls, cg.size(slotShift)));
  const classSize = (cls: Expr) => cg.shl(cg.add(cls, cg.size(1)), cg.size(shift));

  // refill(size) -> ptr, size a class size: under the lock, the thread's table if it has none,
  // a block for the caller, and more onto the class's list up to half its budget (REFILL_BYTES at most).
  const refill = cg.function(cg.name("thread-cache", "refill"), ["size"], "usize", (f) => {
    const size = f.param("size");
    const t = f.local(), s = f.local(), p = f.local(), q = f.local();
    const more = f.label("more");
    return [
      cg.callVoid(lock, []),
      cg.when(cg.eqz(t.tee(table.get())), [
        cg.when(t.tee(cg.call(top.alloc, [cg.size(tableBytes), minAlign])), [cg.fill(f, t.get(), cg.i32(0), cg.size(tableBytes))]),
        table.set(t.get()),
      ]),
      p.set(cg.call(top.alloc, [size.get(), minAlign])),
      cg.when(cg.module.i32.and(cg.ne(t.get(), cg.size(0)), cg.ne(p.get(), cg.size(0))), [
        s.set(slotOf(t.get(), cg.sub(cg.shrU(size.get(), cg.size(shift)), cg.size(1)))),
        m.loop(more, cg.when(cg.leU(cg.add(cg.load(s.get(), W), size.get()), cg.size(Math.min(cache.classBytes / 2, REFILL_BYTES))), [
          cg.when(q.tee(cg.call(top.alloc, [size.get(), minAlign])), [
            cg.store(q.get(), cg.load(s.get())),
            cg.store(s.get(), q.get()),
            cg.store(s.get(), cg.add(cg.load(s.get(), W), size.get()), W),
            m.br(more),
          ]),
        ])),
      ]),
      cg.callVoid(unlock, []),
      p.get(),
    ];
  });

  // malloc(size): a small size pops its class's list, or refills; a larger one asks the strategy under the lock.
  const malloc = cg.function(name("malloc"), ["size"], "usize", (f) => {
    const size = f.param("size");
    const c = f.local(), s = f.local(), p = f.local();
    return [
      cg.when(cg.ltU(c.tee(cg.sub(size.get(), cg.size(1))), cg.size(cache.maxSize)), [
        cg.when(table.get(), [
          cg.when(p.tee(cg.load(s.tee(slotOf(table.get(), cg.shrU(c.get(), cg.size(shift)))))), [
            cg.store(s.get(), cg.load(p.get())),
            cg.store(s.get(), cg.sub(cg.load(s.get(), W), classSize(cg.shrU(c.get(), cg.size(shift)))), W),
            cg.ret(p.get()),
          ]),
        ]),
        cg.ret(cg.call(refill, [classSize(cg.shrU(c.get(), cg.size(shift)))])),
      ]),
      ...locked([p.set(cg.call(top.alloc, [size.get(), minAlign]))]),
      p.get(),
    ];
  });
  const out: Record<string, string> = {};
  if (wanted.malloc) out.malloc = malloc;

  if (wanted.free) {
    out.free = cg.function(name("free"), ["ptr"], "none", (f) => {
      const ptr = f.param("ptr");
      const c = f.local(), s = f.local(), b = f.local();
      const classOf = c.set(cg.sub(cg.shrU(cg.call(usableSize, [ptr.get()]), cg.size(shift)), cg.size(1)));
      return [
        cg.returnIf(cg.eqz(ptr.get())),
        // Debug builds: the strategy's checks of the pointer read its shared structures.
        ...(ctx.debug ? locked([classOf, doubleFreeCheck(ctx, f, table, ptr, c, classes, slotShift)]) : [classOf]),
        cg.when(cg.module.i32.and(cg.ltU(c.get(), cg.size(classes)), cg.ne(table.get(), cg.size(0))), [
          cg.when(cg.leU(b.tee(cg.add(cg.load(s.tee(slotOf(table.get(), c.get())), W), classSize(c.get()))), cg.size(cache.classBytes)), [
            cg.store(ptr.get(), cg.load(s.get())),
            cg.store(s.get(), ptr.get()),
            cg.store(s.get(), b.get(), W),
            cg.ret(),
          ]),
        ]),
        ...locked([cg.callVoid(top.free, [ptr.get()])]),
      ];
    });
  }

  const unlockedCalloc = wanted.calloc;
  if (unlockedCalloc) {
    out.calloc = cg.function(name("calloc"), ["n", "size"], "usize", (f) => {
      const n = f.param("n"), size = f.param("size");
      const total = f.local(), p = f.local();
      const max = cg.size(cache.maxSize);
      return [
        // Both at most maxSize, so their product cannot overflow; then a small total is malloc's.
        cg.when(cg.module.i32.and(cg.leU(n.get(), max), cg.leU(size.get(), max)), [
          cg.when(cg.ltU(cg.sub(total.tee(cg.mul(n.get(), size.get())), cg.size(1)), max), [
            cg.when(p.tee(cg.call(malloc, [total.get()])), [cg.fill(f, p.get(), cg.i32(0), total.get())]),
            cg.ret(p.get()),
          ]),
        ]),
        ...locked([p.set(cg.call(unlockedCalloc, [n.get(), size.get()]))]),
        p.get(),
      ];
    });
  }

  // thread_cache_flush(): every cached block and the table back to the strategy, under the lock.
  out[THREAD_CACHE_FLUSH] = cg.function(name(THREAD_CACHE_FLUSH), [], "none", (f) => {
    const t = f.local(), i = f.local(), p = f.local(), q = f.local();
    const slots = f.label("slots"), blocks = f.label("blocks");
    return [
      cg.returnIf(cg.eqz(t.tee(table.get()))),
      ...locked([
        m.loop(slots, cg.block([
          p.set(cg.load(cg.add(t.get(), i.get()))),
          m.loop(blocks, cg.when(p.get(), [q.set(cg.load(p.get())), cg.callVoid(top.free, [p.get()]), p.set(q.get()), m.br(blocks)])),
          m.br(slots, cg.ltU(i.tee(cg.add(i.get(), cg.size(2 * W))), cg.size(tableBytes))),
        ])),
        cg.callVoid(top.free, [t.get()]),
      ]),
      table.set(cg.size(0)),
    ];
  });
  return out;
}

/**
 * Debug builds, under the lock: traps when `ptr` (of class `c`) is on the calling thread's list
 * of its class already (a double free the strategy cannot see: it holds the block as allocated).
 */
function doubleFreeCheck(ctx: EmitContext, f: FunctionScope, table: Var, ptr: Local, c: Local, classes: number, slotShift: number): Expr {
  const { cg } = ctx;
  const q = f.local();
  const walk = f.label("walk");
  return cg.when(cg.module.i32.and(cg.ltU(c.get(), cg.size(classes)), cg.ne(table.get(), cg.size(0))), [
    q.set(cg.load(cg.add(table.get(), cg.shl(c.get(), cg.size(slotShift))))),
    cg.module.loop(walk, cg.when(q.get(), [
      ctx.debug!.failIf(cg.eq(q.get(), ptr.get()), "double-free", "the block is already free (in this thread's cache)", ptr.get()),
      q.set(cg.load(q.get())),
      cg.module.br(walk),
    ])),
  ]);
}

