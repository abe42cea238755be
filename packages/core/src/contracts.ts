/**
 * The contracts between the layers of an allocator.
 *
 * ```text
 *   C API (malloc, free, calloc, realloc, aligned_alloc)   emitted by @alloc/core
 *        |  alloc(size, align) / free(ptr) / resize / usableSize / fresh
 *        v
 *   Strategy (top)                e.g. @alloc/size-classes
 *        |  the same AllocatorFunctions contract, one level down
 *        v
 *   Strategy (bottom)             e.g. @alloc/free-list, @alloc/bump
 *        |  allocPages(pages)
 *        v
 *   PageBackend                   growBackend() in @alloc/core, @alloc/page-backend-static
 * ```
 *
 * Every arrow is a call between emitted Wasm functions; this file says what each side may
 * assume. All sizes and pointers are pointer width (`usize`: i32 on wasm32, i64 on memory64).
 */
import type { Codegen, Expr } from "./codegen.ts";
import type { DebugHooks } from "./debug.ts";
import type { ThreadOptions } from "./threads.ts";
import type { StatsHooks } from "./stats.ts";

/** Limits every layer may rely on. */
export interface BuildLimits {
  /**
   * The smallest alignment of every block the C API hands out (malloc's guarantee), a power of
   * two >= the pointer size. Strategies receive `align >= minAlign` in every `alloc` call.
   */
  readonly minAlign: number;
  /** The largest alignment `alloc` is ever asked for: 64 KiB, one page. */
  readonly maxAlign: number;
}

/**
 * Thread safety: what every layer must do so that a build with `threads` is safe to call from
 * any number of threads at once (each thread instantiates the module with one shared memory).
 *
 * - Every variable a layer keeps between calls is a state cell made with `cg.global` (or read
 *   through `cg.globalVar`), never a Wasm global added another way: in a thread-safe build a
 *   state cell is a word of the state area in shared memory (a Wasm global would be one copy per
 *   thread). What belongs to the calling thread alone (a debug build's fault record) is a
 *   `cg.instanceGlobal`.
 * - The composition runs every exported function (the C functions, extras such as bump's
 *   `reset`, `heap_check`, `heap_stats`) under one lock, so a layer's own code needs no atomics:
 *   plain loads and stores of the heap, `memory.grow` included, happen one thread at a time.
 * - Thread caches (`threadCache`): the composition's cached malloc and free run outside the
 *   lock for small blocks; they call the top layer's `usableSize` there, which must then promise
 *   {@link AllocatorFunctions.usableSizeUnlocked}. Cached blocks are allocated blocks to every
 *   layer.
 * - The memory's size is `cg.memorySize()` (in a thread-safe build `memory.grow(0)`: V8 may
 *   answer `memory.size` with a size from before another thread's grow), and the memory grows
 *   through `cg.memoryGrow`, which in a thread-safe build records the new size for the lock: a
 *   thread that takes the lock updates its view of the size from it (see `threads.ts`).
 * - The state area ({@link ThreadOptions.stateAddress}): 256 bytes of the memory, zero when the
 *   first thread starts: the lock word at its start, then the state cells. A cell holds its value
 *   minus its initial value, so zero memory needs no initialisation (and there is none to race
 *   on). The area is part of {@link MemoryDescription.reserved}: no backend hands it out.
 */

/** What a layer's `emit` receives. */
export interface EmitContext {
  /** The code generator, bound to the target module. */
  readonly cg: Codegen;
  /** Names this layer's functions and globals: `scope("top")` is `${prefix}/${layer}/top`. */
  readonly scope: (name: string) => string;
  readonly limits: BuildLimits;
  /**
   * The debug build's hooks (poisoning, checks that trap with a readable cause, statistics for
   * the heap walker); undefined in a release build, which must emit none of that code. See
   * `debug.ts`.
   */
  readonly debug: DebugHooks | undefined;
  /**
   * A release build with heap statistics (the `stats` option): the layer's statistics globals,
   * for the walker it then provides ({@link AllocatorFunctions.walk}). Undefined otherwise: a
   * debug build's walker sets `debug.stats` instead. See `stats.ts`.
   */
  readonly stats?: StatsHooks;
  /**
   * Which functions of the finished allocator will exist ("malloc", "calloc", "reset"...). A layer
   * may leave out bookkeeping that only an absent function reads (bump tracks dirty memory only
   * for calloc). Lower layers of a stack see every name, as anything may be asked of them, but
   * "calloc" only when the build has it.
   */
  readonly requested: ReadonlySet<string>;
  /**
   * What the build favours. "speed" (`buildAllocator`'s `optimize: "speed"`, or the `goal`
   * option): a layer may emit fast paths that cost bytes, such as a free list carving a cell in
   * place. "size" (every other build): it leaves them out. The two honour the same contracts and
   * never differ in what a call may return; where blocks land may differ (the order of free cells
   * on a list).
   */
  readonly goal: BuildGoal;
}

/** What a build favours: see {@link EmitContext.goal}. */
export type BuildGoal = "size" | "speed";

// ---------------------------------------------------------------------------------------------
// Page backends
// ---------------------------------------------------------------------------------------------

/**
 * The emitted functions of a page backend.
 *
 * `allocPages(pages: usize) -> usize`:
 * - `pages >= 1`. Returns the address of `pages` contiguous 64 KiB pages of fresh memory, or 0
 *   when it cannot (the engine refused to grow, the region is exhausted). Never traps.
 * - The address is 64 KiB aligned, never 0, and the pages end at or below `2^32 - 64 KiB`
 *   (wasm32; `MEMORY64_MAX_PAGES` pages on memory64), so a strategy may add up to 64 KiB to
 *   any address in them without overflow.
 * - The memory is zero-filled (fresh from `memory.grow`, or a static region that nothing else
 *   has written), and is never handed out again: the caller owns it forever.
 * - Successive calls may return adjacent regions (the caller can check `new == oldEnd` and
 *   extend) but need not (another module may grow the same memory in between).
 */
export interface PageSource {
  readonly allocPages: string;
  /**
   * Present when the source is one run of memory from a constant `start`: a strategy over it
   * needs no region bookkeeping of its own, growing is asking the run to extend. Pages the run
   * hands out follow its end, unless memory that is not the allocator's lies in between (the host
   * grew the memory too): then `extend` says where they start and the strategy fences off the gap.
   */
  readonly run?: ContiguousRun;
}

/** See {@link PageSource.run}. */
export interface ContiguousRun {
  /** Address of the first byte, a build-time constant (non-zero); the memory from it to `end()` is the strategy's. */
  readonly start: number;
  /** An expression: the end of the memory the run has handed out (`start`, or the end of the initial memory). */
  end(): Expr;
  /**
   * `extend(pages: usize) -> usize`: grows the run by `pages` pages or more, fresh (zero) memory.
   * Returns where the new pages start: the run's end before the call when they follow it, or a
   * higher, 64 KiB aligned address when memory that is not the run's lies in between, which the
   * strategy must never touch (a free list makes it part of a cell that is never freed). `end()`
   * is then the end of the new pages. 0 when it cannot: nothing changed. Never traps.
   */
  readonly extend: string;
  /**
   * True when `extend` may return pages that do not follow the run's end (another party may grow
   * the memory). False when they always follow it: a strategy then needs no fence code.
   */
  readonly gaps: boolean;
}

/** A source of fresh pages, the bottom layer of every allocator. */
export interface PageBackend {
  /** Short name, used in emitted names and messages: "grow", "static". */
  readonly name: string;
  /**
   * Checks the backend's options against the module's memory; throws an AllocConfigError
   * before anything is emitted. `memory` describes the memory the allocator will use.
   */
  validate?(memory: MemoryDescription): void;
  /** The fewest pages the memory must have at instantiation (a static region must fit in it). */
  readonly minimumMemoryPages?: number;
  /** Emits the backend's functions and globals. */
  emit(ctx: EmitContext, memory: MemoryDescription): PageSource;
}

/** What an allocator knows about the memory it manages, at build time. */
export interface MemoryDescription {
  /** "own": the module defines (and exports) it; "import": a host or another module supplies it. */
  readonly mode: "own" | "import" | "existing";
  /** Pages at instantiation (a lower bound for imported memory). */
  readonly initialPages: number;
  /**
   * The memory's declared maximum in pages, when the build knows it and the engine enforces it.
   * Undefined for imported memory: the backend must then enforce its own limit.
   */
  readonly maximumPages: number | undefined;
  /**
   * Byte ranges `[start, end)` of the memory that the module already uses, as far as the build can
   * read them: active data segments, and the stack and static data below `__heap_base` or below a
   * `__stack_pointer` global's initial value. A backend must hand out none of these bytes (the
   * grow backend only hands out pages it grew, so it never does). Absent or empty for a standalone
   * allocator's memory.
   */
  readonly reserved?: readonly ReservedRange[];
  /**
   * A memory64 memory: pointers are i64 and the memory may pass 4 GiB (up to
   * `MEMORY64_MAX_PAGES`). Absent or false: a wasm32 memory.
   */
  readonly memory64?: boolean;
}

/** See {@link MemoryDescription.reserved}. */
export interface ReservedRange {
  readonly start: number;
  /** Exclusive; `2 ** 32` or more when the range's place is unknown (all of memory is suspect). */
  readonly end: number;
  /** What uses it, for messages: `data segment "0"`, `the stack (below __stack_pointer's initial value)`. */
  readonly what: string;
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/**
 * The emitted functions of an allocation strategy: what the C API (or a strategy above) calls.
 * Names are full emitted function names.
 */
export interface AllocatorFunctions {
  /**
   * `alloc(size: usize, align: usize) -> usize`. `align` is a power of two in
   * [`minAlign`, `maxAlign`]; `size` is any value, including 0 and values near 2^32. Returns an
   * `align`-aligned block of at least `size` bytes that overlaps no other live block, or 0 when
   * it cannot (the request is too large, the backend is exhausted); after a 0 the heap is
   * unchanged and later requests may succeed. Never traps.
   */
  readonly alloc: string;
  /**
   * `free(ptr: usize)`. `ptr` is non-zero and was returned by this layer's `alloc` (or
   * `resize`) and not freed since. The C API filters out `free(0)`.
   */
  readonly free: string;
  /**
   * Optional: emits (once per alignment) and names a function `(size: usize) -> usize` that is
   * `alloc(size, align)` for the constant `align`. The C API uses it for malloc when nothing else
   * calls `alloc`: a separate copy with the alignment folded in, without the block and branch
   * that inlining `alloc` would leave behind (bump: 2 bytes smaller, one call cheaper).
   */
  readonly allocFixed?: (align: number) => string;
  /** True when `free(0)` is a harmless no-op in this layer, so the C API need not filter it. */
  readonly freeAcceptsNull?: boolean;
  /**
   * True when `alloc` also takes an `align` below `minAlign` (any power of two from 1) and still
   * returns a `minAlign`-aligned block, so that aligned_alloc need not raise the alignment first.
   */
  readonly allocAcceptsSmallAlign?: boolean;
  /**
   * Optional `resize(ptr: usize, size: usize) -> usize`: resizes the live block `ptr` in place
   * to at least `size` bytes (`size > 0`). Returns `ptr` on success, or 0 if it cannot be done
   * without moving. Never moves a block. After a 0 the block is still the caller's with its
   * contents intact, but it may have grown on the way (`usableSize` may be larger than before).
   */
  readonly resize?: string;
  /**
   * True when `resize` always succeeds for a size up to the block's `usableSize` (both are
   * present): when it returns 0, the size asked for is larger than `usableSize(ptr)`, read after
   * the call. realloc then copies `usableSize(ptr)` bytes when it moves a block, without comparing
   * them with the new size.
   */
  readonly shrinksInPlace?: boolean;
  /**
   * Optional `usableSize(ptr: usize) -> usize`: how many bytes of the live block `ptr` the
   * caller may use (>= the size asked for). realloc copies this many bytes (capped by the new
   * size) when it moves a block. A strategy without it must guarantee that a block allocated
   * later lies at a higher address than every live block, so that copying `newSize` bytes from
   * the old block stays in bounds (bump does).
   */
  readonly usableSize?: string;
  /**
   * True when, in a release build, `usableSize(ptr)` of a live block reads only memory that no
   * call on another block writes while `ptr` is live: words that only `alloc`, `resize` and
   * `free` of this very block write (its size or header word), or that were written before the
   * block was handed out and stay unchanged while it is live (its span's class size). No state
   * cell, no list, no neighbour's header. Then the thread that owns `ptr` may call it without the
   * lock while other threads allocate and free other blocks under it: a thread-safe build's
   * thread cache ({@link AllocatorOptions.threadCache}, `thread-cache.ts`) learns a freed block's
   * class that way. A debug build's `usableSize` may check more (it runs under the lock there).
   * Leave it unset when unsure: the cache is then refused for the composition. The conformance
   * suite checks it on the machine code of every composition that declares it
   * (`tooling/conformance/src/unlocked-size.test.ts`: every memory access instrumented, no call on
   * another block may store into a byte the size read touched).
   *
   * size-classes sets it: a small block's header word (its span) is written when the block is
   * handed out, and its span's `size` only when the span is made or reused empty; a large block's
   * size word is written by its alloc and resize. (free-list could: word 0 of an allocated cell is
   * written only by alloc, resize and free of that cell, invariant 3 of `cell.ts`; a neighbour's
   * merge writes word 1 only.)
   */
  readonly usableSizeUnlocked?: boolean;
  /**
   * Optional `fresh() -> usize`: reads the layer's *fresh mark*, for calloc. Its promise: when
   * `alloc` returns a block [p, p + n), every byte of it at or above the mark read before the
   * call is zero (memory the backend gave that nothing has written since); every byte the layer
   * ever handed out lies below the mark.
   * The C API's calloc then zeroes only the part of the block below that value: a large calloc
   * from fresh pages writes (and so maps) none of them (mini-alloc's insight). A layer stacked
   * on another passes its parent's mark on when it writes nothing inside the payloads it returns
   * (headers in front of them are fine); without a mark calloc zeroes every block. A debug build
   * that poisons memory above its mark must not give one.
   */
  readonly fresh?: string;
  /**
   * True when every block `alloc` returns is zero (fresh pages, never handed out twice): calloc
   * is then malloc with its overflow check, and zeroes nothing.
   */
  readonly allocZeroes?: boolean;
  /**
   * Debug builds only: `check()`, the layer's heap walker. It checks every invariant of the
   * layer's own structures (trapping through `ctx.debug.fail` at the first broken one) and sets
   * the layer's statistics globals (`ctx.debug.stats`). It may assume the layers below are sound:
   * the exported `heap_check` runs them first.
   */
  readonly check?: string;
  /**
   * Stats builds only (release, `stats` on): `walk()`, the layer's heap walker without its checks.
   * It sets the layer's statistics globals (`ctx.stats.vars`) to what the debug walker reports for
   * the same heap, and changes nothing. A layer may keep counters for what it cannot walk (a bump
   * allocator's live blocks); the walkers of the layers below have run before it.
   */
  readonly walk?: string;
  /**
   * The emitted names of the functions listed in {@link Strategy.extras}, by the same keys.
   * Parameters and results are pointer width.
   */
  readonly extras?: Readonly<Record<string, string>>;
}

/** What a strategy is built on: fresh pages from a backend, or another strategy. */
export type Parent =
  | { readonly kind: "pages"; readonly pages: PageSource }
  | { readonly kind: "allocator"; readonly allocator: AllocatorFunctions };

/** An allocation strategy: one layer of an allocator. */
export interface Strategy {
  /** Short name, used in emitted names and messages: "bump", "free-list". */
  readonly name: string;
  /**
   * What this strategy can be built on. "pages": directly on a page backend (bump, free-list).
   * "allocator": on another strategy (size-classes). A strategy may accept both.
   */
  readonly accepts: readonly Parent["kind"][];
  /**
   * True when no strategy may sit on top of this one: it must be the top of the stack. For a
   * strategy whose blocks a layer above could make no sense of (fail: every `alloc` returns 0,
   * so a layer over it could only ever fail too). The composition refuses such a stack.
   */
  readonly topOnly?: boolean;
  /**
   * Further functions this strategy offers for export when it is the top of the stack, by name,
   * with a sentence of documentation each: e.g. bump's `reset`.
   */
  readonly extras?: Readonly<Record<string, string>>;
  /** Throws an AllocConfigError for options that cannot work with these limits. */
  validate?(limits: BuildLimits): void;
  /** Emits the strategy's functions and globals on top of `parent`. */
  emit(ctx: EmitContext, parent: Parent): AllocatorFunctions;
}
