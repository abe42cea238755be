/**
 * Thread-safe builds: one lock around the C API, and the heap's state in shared memory.
 *
 * ```text
 *   state area (threads.stateAddress, THREAD_STATE_BYTES bytes, zero at start)
 *   +------------+-------------------+--------+--------+-----
 *   | lock (i32) | grown pages (i32) | cell 0 | cell 1 | ...    one word per state cell (Codegen.global),
 *   +------------+-------------------+--------+--------+-----    holding value - init: zero reads as init
 *
 *   malloc (exported)  = lock(); r = malloc (unlocked); unlock(); r
 * ```
 *
 * Each thread instantiates the module with the same shared memory: a Wasm global belongs to one
 * instance, so every variable of the heap (a free list's bins, the grow backend's reserve, bump's
 * top) is a word of the state area instead. Those words start at zero in fresh memory and are
 * read and written only under the lock, so there is no initialisation to race on: the first
 * malloc of two threads at once is two mallocs one after the other.
 *
 * The lock: `i32.atomic.rmw.cmpxchg` from 0 to 1, spinning on an atomic load while it is taken
 * (a browser's main thread may not block, so spinning is the default). With `wait`, a thread
 * that finds the lock taken marks it contended (2) and sleeps in `memory.atomic.wait32` until
 * the holder's unlock wakes one waiter (Drepper's three-state mutex): for workers only.
 *
 * The memory's size: every `memory.grow` of the allocator ({@link Codegen.memoryGrow}) records the
 * memory's new size in pages in the grown-pages word, and a thread that takes the lock compares
 * it with `memory.size`: when its view is older, `memory.grow(0)` updates it. V8 (Node 20) keeps
 * each thread's view of a shared memory's size in its instance and updates it for another
 * thread's grow only at the thread's next function entry (or own `memory.grow`), even when the
 * two threads synchronised: until then `memory.copy` and `memory.fill` (and, on memory64, every
 * load and store) trap on the new pages. A size build calls a function after the lock and so got
 * by; a speed build inlines the whole call into one function, and bump's realloc, waiting for the
 * lock while another thread grew, copied into the new pages and trapped (measured: 12 of 20
 * copies after another thread's grow trapped in a loop that had waited for it; none with a call
 * or `memory.grow(0)` before the copy). The threads proposal leaves this open
 * (WebAssembly/threads#26); WAMR fixed the same stale bound (wasm-micro-runtime#2078).
 */
import binaryen from "binaryen";
import { GROWN_PAGES_OFFSET, type Codegen, type Expr } from "./codegen.ts";
import { check, checkOptions, describeValue } from "./errors.ts";

/** The bytes a thread-safe build reserves for its state area: the lock word and up to 62 cells (wasm32; 31 on memory64). */
export const THREAD_STATE_BYTES = 256;

/** The lowest default address of the state area: above the first KiB, which C toolchains leave unused. */
export const DEFAULT_STATE_ADDRESS = 1024;

/** The {@link AllocatorOptions.threads} option as an object. */
export interface ThreadOptions {
  /**
   * A thread that finds the lock taken sleeps in `memory.atomic.wait32` instead of spinning
   * (default false). A browser's main thread may not block (the wait traps there): only for
   * allocators that no such thread calls.
   */
  readonly wait?: boolean;
  /**
   * Where the lock and the heap's state live in the memory: {@link THREAD_STATE_BYTES} bytes from
   * this address (a multiple of 8, inside the initial memory, zero when the first thread starts,
   * and never written by anything but the allocator). Default: the first multiple of 64 from 1024
   * up that lies above everything the module's memory is known to use (data segments, the stack,
   * below `__heap_base`).
   */
  readonly stateAddress?: number;
}

/** The threads option with its defaults resolved, before the state area's address is known. */
export interface ResolvedThreads {
  readonly wait: boolean;
  readonly stateAddress: number | undefined;
}

/** Checks the `threads` option: undefined when the build is single-threaded. */
export function resolveThreads(option: unknown): ResolvedThreads | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return { wait: false, stateAddress: undefined };
  check(
    typeof option === "object" && option !== null && !Array.isArray(option),
    `threads must be true, false or { wait?, stateAddress? }, got ${describeValue(option)}`,
  );
  checkOptions("threads", option, ["wait", "stateAddress"]);
  const { wait = false, stateAddress } = option as ThreadOptions;
  check(typeof wait === "boolean", `threads.wait must be true or false, got ${describeValue(wait)}`);
  check(
    stateAddress === undefined || (Number.isInteger(stateAddress) && stateAddress > 0 && stateAddress % 8 === 0),
    `threads.stateAddress must be a positive multiple of 8, got ${describeValue(stateAddress)}`,
  );
  return { wait, stateAddress };
}

/** The lock word's address: the first word of the state area. */
function lockWord(cg: Codegen): number {
  const area = cg.sharedState;
  if (!area) throw new Error("alloc: internal error: a lock in a single-threaded build");
  return area.address;
}

/**
 * Emits (once) the lock's two functions, `lock()` and `unlock()`, and returns their names. See
 * the file's comment for the protocol.
 */
export function ensureLock(cg: Codegen): { lock: string; unlock: string } {
  const m = cg.module;
  const lock = cg.name("lock", "acquire"), unlock = cg.name("lock", "release");
  if (m.getFunction(lock)) return { lock, unlock };
  const at = lockWord(cg);
  const word = () => cg.size(0);
  const cas = (expected: number, replacement: number) =>
    m.i32.atomic.rmw.cmpxchg(at, word(), cg.i32(expected), cg.i32(replacement));
  const wait = cg.sharedState!.wait;
  // Taken: if this thread's view of the memory's size is older than the allocator's latest grow
  // (another thread's, while this one waited), memory.grow(0) brings it up to date.
  const seeGrownPages = cg.when(m.i32.lt_u(cg.memoryPages(), m.i32.load(at + GROWN_PAGES_OFFSET, 4, word())), [
    m.drop(m.memory.grow(cg.size(0), undefined, cg.memory64)),
  ]);
  cg.function(lock, [], "none", (f) => {
    const spin = f.label("spin");
    if (!wait) {
      // Test and test-and-set: spin on a load (no write traffic) until the lock looks free.
      return [
        m.loop(spin, cg.block([
          cg.when(m.i32.atomic.load(at, word()), [m.br(spin)]),
          m.br(spin, cas(0, 1)),
        ])),
        seeGrownPages,
      ];
    }
    const c = f.local("i32");
    const sleep = f.label("sleep");
    // 0 free, 1 taken, 2 taken and someone may be waiting.
    return [
      cg.when(c.tee(cas(0, 1)), [
        cg.when(m.i32.ne(c.get(), cg.i32(2)), [c.set(m.i32.atomic.rmw.xchg(at, word(), cg.i32(2)))]),
        m.loop(sleep, cg.when(c.get(), [
          m.drop(m.memory.atomic.wait32(cg.size(at), cg.i32(2), cg.i64(-1n))),
          c.set(m.i32.atomic.rmw.xchg(at, word(), cg.i32(2))),
          m.br(sleep),
        ])),
      ]),
      seeGrownPages,
    ];
  });
  cg.function(unlock, [], "none", () => {
    if (!wait) return m.i32.atomic.store(at, word(), cg.i32(0));
    // 1 -> 0: nobody waits. 2 -> free it and wake one waiter.
    return cg.when(m.i32.ne(m.i32.atomic.rmw.sub(at, word(), cg.i32(1)), cg.i32(1)), [
      m.i32.atomic.store(at, word(), cg.i32(0)),
      m.drop(m.memory.atomic.notify(cg.size(at), cg.i32(1))),
    ]);
  });
  return { lock, unlock };
}

/**
 * Adds `name`, a function with the signature of `inner` that runs it under the lock, and returns
 * `name`.
 */
export function emitLocked(cg: Codegen, name: string, inner: string): string {
  const m = cg.module;
  const { lock, unlock } = ensureLock(cg);
  const info = binaryen.getFunctionInfo(m.getFunction(inner));
  const params = binaryen.expandType(info.params);
  const args = params.map((type, i) => m.local.get(i, type));
  const call = m.call(inner, args, info.results);
  const body: Expr =
    info.results === binaryen.none
      ? cg.block([cg.callVoid(lock, []), call, cg.callVoid(unlock, [])])
      : cg.block([cg.callVoid(lock, []), m.local.set(params.length, call), cg.callVoid(unlock, []), m.local.get(params.length, info.results)]);
  cg.assertFree(name);
  m.addFunction(name, info.params, info.results, info.results === binaryen.none ? [] : [info.results], body);
  return name;
}
