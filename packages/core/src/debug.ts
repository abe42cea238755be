/**
 * The debug build: what every layer may add to its code when `debug` is on, and how the JS side
 * turns a trap into a readable error.
 *
 * ```text
 *   a layer's emitted check fails
 *        |  fault = site index + 1, faultPtr = the address concerned, then `unreachable`
 *        v
 *   WebAssembly.RuntimeError in JS  --(instantiate's wrapper reads the two globals)-->  HeapFaultError
 *                                      "free-list: double free: the block at 0x10048 is already free"
 * ```
 *
 * - Sites: each check that can fail is registered at build time with its kind and a sentence;
 *   the module stores only the site's index. The table travels with the build, not the Wasm.
 * - Poison: free memory is filled with {@link POISON} (except the words a layer keeps there, such
 *   as free-list links) and checked when it is handed out again: a write after free is caught at
 *   the next reuse of that memory.
 * - The heap walker: each layer may emit a `check` function (see AllocatorFunctions.check) that
 *   walks its own structures, traps at the first broken invariant, and sets its statistics
 *   globals. The exported `heap_check` runs every layer's, bottom layer first.
 *
 * A release build (`debug` off) emits none of this: layers receive `ctx.debug === undefined`.
 */
import type { Codegen, Expr, Var } from "./codegen.ts";
import { ensureLock } from "./threads.ts";

/** The byte written over free memory in debug builds (MSVC's "dead land" fill). */
export const POISON = 0xdd;
/** {@link POISON} in every byte of a 32-bit word. */
export const POISON_WORD = 0xdddddddd;

/** What kind of mistake a failed check reports. */
export type FaultKind =
  /** free or realloc of a block that is already free. */
  | "double-free"
  /** free, realloc or malloc_usable_size of an address this allocator did not return. */
  | "invalid-pointer"
  /** Free memory was written to: its poison is broken. */
  | "use-after-free"
  /** An invariant of the heap layout is broken (found by an operation or the heap walker). */
  | "corrupt-heap";

/** One place in the emitted code that traps, as registered at build time. */
export interface FaultSite {
  readonly kind: FaultKind;
  /** The layer that emitted the check: "free-list", "size-classes"... */
  readonly layer: string;
  /** What went wrong, a sentence fragment: "the block is already free". */
  readonly what: string;
}

/** The statistics a layer's heap walker reports. Bytes are payload bytes the layer hands out. */
export interface LayerStats {
  readonly layer: string;
  /** Bytes in live blocks (as the layer rounds them: usable sizes). */
  readonly usedBytes: number;
  readonly usedBlocks: number;
  /** Bytes in free blocks, ready for reuse without asking the layer below. */
  readonly freeBytes: number;
  readonly freeBlocks: number;
  /** The largest free block, in bytes. */
  readonly largestFree: number;
}

/** The statistic globals of one layer, in the order of {@link STAT_NAMES}. */
export const STAT_NAMES = ["usedBytes", "usedBlocks", "freeBytes", "freeBlocks", "largestFree"] as const;

export type StatName = (typeof STAT_NAMES)[number];

/** A layer's statistics globals, set by its walker. */
export type StatVars = { readonly [K in StatName]: Var };

/** What a layer's `emit` receives in a debug build (`ctx.debug`). */
export interface DebugHooks {
  /** Records the fault of a new site and traps. `ptr` is the address to report. */
  fail(kind: FaultKind, what: string, ptr: Expr): Expr;
  /** `if (cond) fail(...)`. */
  failIf(cond: Expr, kind: FaultKind, what: string, ptr: Expr): Expr;
  /** Fills `len` bytes at `dest` with {@link POISON}. */
  poison(dest: Expr, len: Expr): Expr;
  /**
   * Traps with "use-after-free" (reporting the first changed byte) unless the `len` bytes at
   * `dest` all still hold {@link POISON} (or 0 too, with `orZero`: for memory that may never
   * have been handed out). `what` says whose memory it is.
   */
  checkPoison(dest: Expr, len: Expr, what: string, orZero?: boolean): Expr;
  /** This layer's statistics globals, for its walker to set (made on first use). */
  readonly stats: StatVars;
}

/**
 * The debug support of one build: the fault globals, the site table, and the shared helpers.
 * Made by the composition; layers see it through {@link DebugHooks}.
 */
export class DebugBuild {
  readonly sites: FaultSite[] = [];
  /** Names of the fault globals: site index + 1 (0: no fault), and the address. */
  readonly faultGlobal: string;
  readonly faultPtrGlobal: string;
  /** Per layer, its statistics globals. */
  readonly statGlobals: StatGlobals;
  private readonly cg: Codegen;
  private readonly fault: Var;
  private readonly faultPtr: Var;
  private readonly helpers = new Set<string>();

  constructor(cg: Codegen) {
    this.cg = cg;
    this.statGlobals = new StatGlobals(cg, "debug");
    this.faultGlobal = cg.name("debug", "fault");
    this.faultPtrGlobal = cg.name("debug", "fault_ptr");
    // Per instance: in a thread-safe build, the calling thread's fault.
    this.fault = cg.instanceGlobal(this.faultGlobal);
    this.faultPtr = cg.instanceGlobal(this.faultPtrGlobal);
  }

  /** The hooks for layer `layer`, whose emitted names are made by `scope`. */
  hooks(layer: string, scope: (name: string) => string): DebugHooks {
    const { cg } = this;
    const stats = this.statGlobals.lazy(layer, scope);
    const site = (kind: FaultKind, what: string) => {
      this.sites.push({ kind, layer, what });
      return cg.size(this.sites.length);
    };
    const fail = (kind: FaultKind, what: string, ptr: Expr): Expr =>
      cg.callVoid(this.helper("fail"), [site(kind, what), ptr]);
    return {
      fail,
      failIf: (cond, kind, what, ptr) => cg.if(cond, fail(kind, what, ptr)),
      poison: (dest, len) => cg.callVoid(this.helper("poison"), [dest, len]),
      checkPoison: (dest, len, what, orZero = false) =>
        cg.callVoid(this.helper("check_poison"), [dest, len, site("use-after-free", what), cg.size(orZero ? 1 : 0)]),
      get stats() {
        return stats();
      },
    };
  }

  /** What the JS side needs: the site table and the globals' names (also their export names). */
  info(): DebugInfo {
    return {
      sites: this.sites,
      faultExport: this.faultGlobal,
      faultPtrExport: this.faultPtrGlobal,
      stats: this.statGlobals.info(),
    };
  }

  /** The shared helper functions, emitted on first use. */
  private helper(name: "fail" | "poison" | "check_poison"): string {
    const { cg } = this;
    const m = cg.module;
    const full = cg.name("debug", name);
    if (this.helpers.has(name)) return full;
    this.helpers.add(name);
    switch (name) {
      // fail(site, ptr): records the fault and traps. A thread-safe build releases its lock
      // first (every check runs under it), so that the other threads are not left spinning.
      case "fail":
        return cg.function(full, ["site", "ptr"], "none", (f) => [
          this.fault.set(f.param("site").get()),
          this.faultPtr.set(f.param("ptr").get()),
          ...(cg.sharedState ? [cg.callVoid(ensureLock(cg).unlock, [])] : []),
          m.unreachable(),
        ]);
      // poison(p, len): fills [p, p + len) with POISON.
      case "poison":
        return cg.function(full, ["p", "len"], "none", (f) =>
          cg.fill(f, f.param("p").get(), cg.i32(POISON), f.param("len").get()),
        );
      // check_poison(p, len, site, zero_ok): fails at the first byte of [p, p + len) that is not
      // POISON (nor 0, when zero_ok).
      case "check_poison":
        return cg.function(full, ["p", "len", "site", "zero_ok"], "none", (f) => {
          const p = f.param("p"), len = f.param("len"), site = f.param("site"), zeroOk = f.param("zero_ok");
          const byte = f.local("i32");
          const end = f.local();
          const loop = f.label("bytes");
          return [
            end.set(cg.add(p.get(), len.get())),
            m.loop(
              loop,
              cg.when(cg.ltU(p.get(), end.get()), [
                cg.when(
                  m.i32.and(
                    m.i32.ne(byte.tee(cg.load8(p.get())), cg.i32(POISON)),
                    m.i32.or(m.i32.ne(byte.get(), cg.i32(0)), cg.eqz(zeroOk.get())),
                  ),
                  [
                    cg.callVoid(this.helper("fail"), [site.get(), p.get()]),
                  ],
                ),
                p.set(cg.add(p.get(), cg.size(1))),
                m.br(loop),
              ]),
            ),
          ];
        });
    }
  }
}

/** Thrown by an instance of a debug build when a check in the allocator trapped. */
export class HeapFaultError extends Error {
  override readonly name = "HeapFaultError";
  readonly kind: FaultKind;
  readonly layer: string;
  /** The address the check reported. */
  readonly ptr: number;
  constructor(site: FaultSite, ptr: number, options?: { cause?: unknown }) {
    super(`${site.layer}: ${describeKind(site.kind)}: ${site.what} (at 0x${ptr.toString(16)})`, options);
    this.kind = site.kind;
    this.layer = site.layer;
    this.ptr = ptr;
  }
}

function describeKind(kind: FaultKind): string {
  switch (kind) {
    case "double-free":
      return "double free";
    case "invalid-pointer":
      return "invalid pointer";
    case "use-after-free":
      return "write after free";
    case "corrupt-heap":
      return "heap corrupted";
  }
}

/** What a debug build tells the JS side: the fault sites and the names of its exported globals. */
export interface DebugInfo {
  readonly sites: readonly FaultSite[];
  /** Export names of the fault globals. */
  readonly faultExport: string;
  readonly faultPtrExport: string;
  /** Per layer (top first), the export names of its statistics globals. */
  readonly stats: StatsInfo;
}

/** Per layer (top first), the export names of its statistics globals: debug and stats builds. */
export type StatsInfo = readonly { readonly layer: string; readonly exports: Readonly<Record<StatName, string>> }[];

/**
 * The statistics globals of every layer that has a walker, made when the layer first asks for
 * them (layers without a walker, such as page backends, have none): debug builds' and stats
 * builds' (see `stats.ts`).
 */
export class StatGlobals {
  private readonly layers: { layer: string; globals: Record<StatName, string> }[] = [];
  constructor(
    private readonly cg: Codegen,
    /** The part of the globals' names after the layer's scope: "debug" or "stats". */
    private readonly kind: string,
  ) {}

  /** Layer `layer`'s globals, named by `scope`, made on first use. */
  lazy(layer: string, scope: (name: string) => string): () => StatVars {
    let vars: StatVars | undefined;
    return () => {
      if (vars) return vars;
      const globals = Object.fromEntries(STAT_NAMES.map((s) => [s, scope(`${this.kind}/${s}`)])) as Record<StatName, string>;
      this.layers.push({ layer, globals });
      // Per instance: the walker sets them, and the same thread reads them after it.
      return (vars = Object.fromEntries(STAT_NAMES.map((s) => [s, this.cg.instanceGlobal(globals[s])])) as unknown as StatVars);
    };
  }

  /** The layers' globals, top layer first (layers are emitted bottom first). */
  info(): StatsInfo {
    return [...this.layers].reverse().map(({ layer, globals }) => ({ layer, exports: globals }));
  }
}
