import { Codegen, PAGE_SHIFT, type Expr, type FunctionScope, type Local } from "@alloc/core";
import binaryen from "binaryen";

/**
 * The replay driver: a Wasm module, generated here, that runs a whole encoded trace against an
 * allocator's imported `malloc`, `free` and `realloc` over the allocator's imported memory.
 *
 * Encoded operations (two little-endian u32 words each, in the allocator's memory):
 *
 * ```text
 *   word 0:  31 30 29 ........................ 0     word 1: 31 .............. 0
 *           | kind |  allocation number k     |             |  size (alloc, realloc) |
 *   kind: 0 alloc, 1 free, 2 realloc
 * ```
 *
 * The pointer table has one entry per allocation number: `[ptr: u32, size: u32]`, ptr 0 when the
 * allocation is not live (on a memory64 allocator, `[ptr: u64, size: u32, 4 bytes unused]`: the
 * driver is then built 64-bit, with i64 pointers, imports and parameters, over a memory64 memory). The driver never grows memory: the op array and the table are blocks the
 * host got from the allocator's own `malloc` before the replay, so every allocator sees the same
 * extra blocks and comparisons stay fair.
 *
 * The verifying variant writes a tag over every byte of each new block: byte `i` of allocation k's
 * block is byte `i mod 8` of the 64-bit tag `(k + 1) * 0x9E3779B97F4A7C15`, unique per allocation.
 * It checks the whole block before free and realloc, that realloc kept the first min(old, new)
 * bytes, that blocks are aligned, inside memory, and clear of the op array and the table. Two
 * overlapping live blocks, or allocator metadata written into a live block, break a tag.
 * The fast variant keeps only the table, the counters and the memory sampling.
 */

/** What `run` and `check_live` return: 0, or why the replay stopped. */
export const STATUS = {
  ok: 0,
  /** The block is not aligned to the requested alignment. `ptr`: the block. */
  misaligned: 1,
  /** The block does not fit inside memory. */
  outOfBounds: 2,
  /** The block overlaps the driver's op array or pointer table. */
  overlapsDriver: 3,
  /** A live block's tag was overwritten. `detail`: the byte offset of the first difference (word granular). */
  corrupted: 4,
  /** realloc did not keep the block's contents. `detail`: the offset of the first difference. */
  reallocLost: 5,
} as const;
export type Status = (typeof STATUS)[keyof typeof STATUS];

/** Operation kinds in word 0's top two bits. */
export const OP_KIND = { alloc: 0, free: 1, realloc: 2 } as const;
/** Bytes per encoded operation. */
export const OP_BYTES = 8;
/** Bytes per table entry: a pointer and a u32 size, padded to two pointers. */
export function slotBytes(memory64: boolean): number {
  return memory64 ? 16 : 8;
}
/** The odd multiplier that makes each allocation's tag unique. */
export const TAG_MULTIPLIER = 0x9e3779b97f4a7c15n;

/** Import module and field names the driver expects. */
export const DRIVER_IMPORTS = { module: "alloc", malloc: "malloc", free: "free", realloc: "realloc", memory: "memory" } as const;

/** The driver's exports: see {@link buildDriver}. */
export interface DriverExports {
  /**
   * Replays `n` ops at `ops` with table `table` of `slots` entries; returns a {@link Status}.
   * (Arguments are pointer width: bigints for a memory64 driver; so are the globals but `live`
   * and `peak_live`, which are i64 on both.)
   */
  run(ops: Word, n: Word, table: Word, slots: Word, align: Word): number;
  /** (Verifying variant.) Checks the tag of every live block; returns a {@link Status}. */
  check_live?(table: Word, slots: Word): number;
  /** Frees every live block and empties the table. */
  free_live(table: Word, slots: Word): void;
  /** The op being run, or the one that failed. */
  readonly op: WebAssembly.Global;
  /** The allocation number and pointer involved in a failure, and a detail (see {@link STATUS}). */
  readonly slot: WebAssembly.Global;
  readonly ptr: WebAssembly.Global;
  readonly detail: WebAssembly.Global;
  /** Failed allocations (0 for a non-zero size, from malloc or realloc). */
  readonly failed: WebAssembly.Global;
  /** The largest `memory.size` seen, in pages (sampled after every alloc and realloc). */
  readonly peak_pages: WebAssembly.Global;
  /** Live bytes now and at most (i64). */
  readonly live: WebAssembly.Global;
  readonly peak_live: WebAssembly.Global;
}

/** A pointer-width argument: a number on wasm32, a bigint on memory64. */
export type Word = number | bigint;

const cache = new Map<string, WebAssembly.Module>();

/** The compiled driver (verifying or fast; wasm32 or memory64), built once per process. */
export function driverModule(verify: boolean, memory64 = false): WebAssembly.Module {
  const key = `${verify}/${memory64}`;
  let compiled = cache.get(key);
  if (!compiled) {
    compiled = new WebAssembly.Module(buildDriver(verify, memory64) as BufferSource);
    cache.set(key, compiled);
  }
  return compiled;
}

/** The driver's bytes, optimised for speed: for a wasm32 allocator, or a memory64 one. */
export function buildDriver(verify: boolean, memory64 = false): Uint8Array {
  const module = new binaryen.Module();
  try {
    module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.SignExt | (memory64 ? binaryen.Features.Memory64 : 0));
    module.setMemory(0, -1, null, [], false, memory64, "0");
    module.addMemoryImport("0", DRIVER_IMPORTS.module, DRIVER_IMPORTS.memory);
    const cg = new Codegen(module, { prefix: "~trace", memory64 });
    const { usize } = cg;
    module.addFunctionImport("malloc", DRIVER_IMPORTS.module, DRIVER_IMPORTS.malloc, usize, usize);
    module.addFunctionImport("free", DRIVER_IMPORTS.module, DRIVER_IMPORTS.free, usize, binaryen.none);
    module.addFunctionImport("realloc", DRIVER_IMPORTS.module, DRIVER_IMPORTS.realloc, binaryen.createType([usize, usize]), usize);
    emitDriver(cg, verify);
    if (!module.validate()) throw new Error("@alloc/trace: internal error: the replay driver does not validate");
    const saved = { optimize: binaryen.getOptimizeLevel(), shrink: binaryen.getShrinkLevel() };
    try {
      binaryen.setOptimizeLevel(3);
      binaryen.setShrinkLevel(0);
      module.optimize();
    } finally {
      binaryen.setOptimizeLevel(saved.optimize);
      binaryen.setShrinkLevel(saved.shrink);
    }
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

function emitDriver(cg: Codegen, verify: boolean): void {
  const m = cg.module;
  const i64 = m.i64;
  const globals = {
    op: cg.global(cg.name("op")),
    slot: cg.global(cg.name("slot")),
    ptr: cg.global(cg.name("ptr")),
    detail: cg.global(cg.name("detail")),
    failed: cg.global(cg.name("failed")),
    peakPages: cg.global(cg.name("peak_pages")),
  };
  for (const name of ["live", "peak_live"]) m.addGlobal(cg.name(name), binaryen.i64, true, cg.i64(0n));
  const i64Var = (name: string) => ({
    get: () => m.global.get(cg.name(name), binaryen.i64),
    set: (v: Expr) => m.global.set(cg.name(name), v),
  });
  const liveG = i64Var("live"), peakLiveG = i64Var("peak_live");

  /** Every local, parameter and global is pointer width; the slot's layout follows it. */
  const { ptrBytes } = cg;
  const slotShift = Math.log2(slotBytes(cg.memory64));
  /** A pointer-width value as an i64 (unsigned). */
  const u64 = (x: Expr) => (cg.memory64 ? x : i64.extend_u(x));
  /** A u32 read from memory, as pointer width. */
  const loadU32 = (ptr: Expr, offset = 0) => cg.fromI32(cg.load32(ptr, offset));
  const tagOf = (k: Expr) => i64.mul(u64(cg.add(k, cg.size(1))), cg.i64(TAG_MULTIPLIER));
  /** The tag's byte for offset `i` of the block. */
  const tagByte = (tag: Expr, i: Expr) => m.i32.wrap(i64.shr_u(tag, u64(cg.shl(cg.and(i, cg.size(7)), cg.size(3)))));

  /** Loops `while (cond) { body }` (body must not branch out). */
  const whileLoop = (f: FunctionScope, cond: () => Expr, body: Expr[]) => {
    const label = f.label("loop");
    return m.loop(label, cg.when(cond(), [...body, m.br(label)]));
  };

  /**
   * Walks bytes [from, to) of allocation k's block at p (8-aligned) as the tag lays them out:
   * single bytes up to a multiple of 8, whole 8-byte words, then the tail bytes. `byte` and `word`
   * build the statements for the byte or word at `at()` (offset `i`), given the tag.
   */
  const walkTagged = (
    f: FunctionScope,
    byte: (at: () => Expr, i: Local, tag: Local) => Expr,
    word: (at: () => Expr, i: Local, tag: Local) => Expr,
  ) => {
    const p = f.param("p"), to = f.param("to"), k = f.param("k");
    const i = f.param("from");
    const tag = f.local("i64");
    const at = () => cg.add(p.get(), i.get());
    const step = (n: number) => i.set(cg.add(i.get(), cg.size(n)));
    return [
      tag.set(tagOf(k.get())),
      whileLoop(f, () => m.i32.and(cg.ltU(i.get(), to.get()), cg.ne(cg.and(i.get(), cg.size(7)), cg.size(0))), [byte(at, i, tag), step(1)]),
      whileLoop(f, () => cg.geU(cg.sub(to.get(), i.get()), cg.size(8)), [word(at, i, tag), step(8)]),
      whileLoop(f, () => cg.ltU(i.get(), to.get()), [byte(at, i, tag), step(1)]),
    ];
  };

  if (verify) {
    // fill(p, from, to, k): tags bytes [from, to) of allocation k's block at p.
    cg.function(cg.name("fill"), ["p", "from", "to", "k"], "none", (f) =>
      walkTagged(
        f,
        (at, i, tag) => cg.store8(at(), tagByte(tag.get(), i.get())),
        (at, _i, tag) => i64.store(0, 8, at(), tag.get()),
      ),
    );
    // check(p, from, to, k) -> the offset of the first byte (or word) in [from, to) without its tag, or -1.
    cg.function(cg.name("check"), ["p", "from", "to", "k"], "usize", (f) => [
      ...walkTagged(
        f,
        (at, i, tag) => cg.returnIf(m.i32.ne(cg.load8(at()), m.i32.and(tagByte(tag.get(), i.get()), cg.i32(0xff))), i.get()),
        (at, i, tag) => cg.returnIf(i64.ne(i64.load(0, 8, at()), tag.get()), i.get()),
      ),
      cg.size(-1),
    ]);
  }
  const fill = (p: Expr, from: Expr, to: Expr, k: Expr) => cg.callVoid(cg.name("fill"), [p, from, to, k]);
  const check = (p: Expr, from: Expr, to: Expr, k: Expr) => cg.call(cg.name("check"), [p, from, to, k]);

  /** Stops with `status` after recording the slot, pointer and detail. */
  const fail = (status: number, slot: Expr, ptr: Expr, detail: Expr) => [
    globals.slot.set(slot),
    globals.ptr.set(ptr),
    globals.detail.set(detail),
    cg.ret(cg.i32(status)),
  ];

  cg.function(cg.name("run"), ["ops", "n", "table", "slots", "align"], "i32", (f) => {
    const ops = f.param("ops"), n = f.param("n"), table = f.param("table"), slots = f.param("slots"), align = f.param("align");
    const i = f.local(), word = f.local(), k = f.local(), size = f.local(), entry = f.local();
    const p = f.local(), s = f.local(), q = f.local(), keep = f.local(), off = f.local();
    const liveBytes = f.local("i64"), peakLive = f.local("i64"), peak = f.local(), failed = f.local();

    const samplePeak = () => peak.set(cg.select(cg.gtU(cg.memorySize(), peak.get()), cg.memorySize(), peak.get()));
    const addLive = (bytes: Expr) => [
      liveBytes.set(i64.add(liveBytes.get(), u64(bytes))),
      peakLive.set(m.select(i64.gt_u(liveBytes.get(), peakLive.get()), liveBytes.get(), peakLive.get())),
    ];
    const subLive = (bytes: Expr) => liveBytes.set(i64.sub(liveBytes.get(), u64(bytes)));
    const store = (ptr: Expr, bytes: Expr) => [cg.store(entry.get(), ptr), cg.store32(entry.get(), cg.toI32(bytes), ptrBytes)];
    /** The checks on a new block `b` of `size` bytes. */
    const validate = (b: Local) => {
      if (!verify) return [];
      const end = () => i64.add(u64(b.get()), u64(size.get()));
      const overlaps = (start: Expr, bytes: Expr) =>
        m.i32.and(
          cg.ne(size.get(), cg.size(0)),
          m.i32.and(i64.lt_u(u64(b.get()), i64.add(u64(start), u64(bytes))), i64.lt_u(u64(start), end())),
        );
      return [
        cg.when(cg.and(b.get(), cg.sub(align.get(), cg.size(1))), fail(STATUS.misaligned, k.get(), b.get(), align.get())),
        cg.when(
          i64.gt_u(end(), i64.shl(u64(cg.memorySize()), cg.i64(BigInt(PAGE_SHIFT)))),
          fail(STATUS.outOfBounds, k.get(), b.get(), size.get()),
        ),
        cg.when(
          m.i32.or(
            overlaps(ops.get(), cg.shl(n.get(), cg.size(3))),
            overlaps(table.get(), cg.shl(slots.get(), cg.size(slotShift))),
          ),
          fail(STATUS.overlapsDriver, k.get(), b.get(), size.get()),
        ),
      ];
    };
    /** The whole of the live block p (s bytes) still holds its tag. */
    const checkWhole = () =>
      verify
        ? [cg.when(cg.ne(off.tee(check(p.get(), cg.size(0), s.get(), k.get())), cg.size(-1)), fail(STATUS.corrupted, k.get(), p.get(), off.get()))]
        : [];

    const doAlloc = [
      p.set(m.call("malloc", [size.get()], cg.usize)),
      cg.when(
        p.get(),
        [...validate(p), ...(verify ? [fill(p.get(), cg.size(0), size.get(), k.get())] : []), ...store(p.get(), size.get()), ...addLive(size.get())],
        [failed.set(cg.add(failed.get(), cg.fromBool(cg.ne(size.get(), cg.size(0)))))],
      ),
      samplePeak(),
    ];
    const doFree = [
      cg.when(p.tee(cg.load(entry.get())), [
        s.set(loadU32(entry.get(), ptrBytes)),
        ...checkWhole(),
        m.call("free", [p.get()], binaryen.none),
        cg.store(entry.get(), cg.size(0)),
        subLive(s.get()),
      ]),
    ];
    const doRealloc = [
      p.set(cg.load(entry.get())),
      s.set(cg.select(p.get(), loadU32(entry.get(), ptrBytes), cg.size(0))),
      ...(verify ? [cg.when(p.get(), checkWhole())] : []),
      q.set(m.call("realloc", [p.get(), size.get()], cg.usize)),
      cg.when(
        m.i32.and(cg.eqz(q.get()), cg.ne(size.get(), cg.size(0))),
        // Failed: the old block stays allocation k, untouched.
        [failed.set(cg.add(failed.get(), cg.size(1)))],
        [
          subLive(s.get()),
          cg.when(
            q.get(),
            [
              ...validate(q),
              ...(verify
                ? [
                    keep.set(cg.select(cg.ltU(s.get(), size.get()), s.get(), size.get())),
                    cg.when(
                      cg.ne(off.tee(check(q.get(), cg.size(0), keep.get(), k.get())), cg.size(-1)),
                      fail(STATUS.reallocLost, k.get(), q.get(), off.get()),
                    ),
                    fill(q.get(), keep.get(), size.get(), k.get()),
                  ]
                : []),
              ...store(q.get(), size.get()),
              ...addLive(size.get()),
            ],
            // realloc(p, 0) freed p.
            [cg.store(entry.get(), cg.size(0))],
          ),
        ],
      ),
      samplePeak(),
    ];

    const done = f.label("done"), next = f.label("next");
    // Dispatch on the kind: block realloc { block free { block alloc { br_table } alloc } free } realloc.
    const dispatch = m.block("realloc", [
      m.block("free", [
        m.block("alloc", [m.switch(["alloc", "free"], "realloc", cg.toI32(cg.shrU(word.get(), cg.size(30))))]),
        ...doAlloc,
        m.br(next),
      ]),
      ...doFree,
      m.br(next),
    ]);
    return [
      peak.set(cg.memorySize()),
      m.block(done, [
        m.loop(
          next,
          cg.block([
            m.br(done, cg.geU(i.get(), n.get())),
            globals.op.set(i.get()),
            word.set(loadU32(cg.add(ops.get(), cg.shl(i.get(), cg.size(3))))),
            size.set(loadU32(cg.add(ops.get(), cg.shl(i.get(), cg.size(3))), 4)),
            k.set(cg.and(word.get(), cg.size(0x3fffffff))),
            entry.set(cg.add(table.get(), cg.shl(k.get(), cg.size(slotShift)))),
            i.set(cg.add(i.get(), cg.size(1))),
            dispatch,
            ...doRealloc,
            m.br(next),
          ]),
        ),
      ]),
      globals.op.set(n.get()),
      globals.failed.set(failed.get()),
      globals.peakPages.set(peak.get()),
      liveG.set(liveBytes.get()),
      peakLiveG.set(peakLive.get()),
      cg.i32(0),
    ];
  });

  /** Loops over the live entries of the table: `body(k, p, s, entry)` for each. */
  const forLive = (f: FunctionScope, table: Local, slots: Local, body: (k: Local, p: Local, s: Local, entry: Local) => Expr[]) => {
    const k = f.local(), p = f.local(), s = f.local(), entry = f.local();
    return whileLoop(f, () => cg.ltU(k.get(), slots.get()), [
      entry.set(cg.add(table.get(), cg.shl(k.get(), cg.size(slotShift)))),
      cg.when(p.tee(cg.load(entry.get())), [s.set(loadU32(entry.get(), ptrBytes)), ...body(k, p, s, entry)]),
      k.set(cg.add(k.get(), cg.size(1))),
    ]);
  };

  cg.function(cg.name("free_live"), ["table", "slots"], "none", (f) => [
    forLive(f, f.param("table"), f.param("slots"), (_k, p, _s, entry) => [
      m.call("free", [p.get()], binaryen.none),
      cg.store(entry.get(), cg.size(0)),
    ]),
    liveG.set(cg.i64(0n)),
  ]);

  if (verify) {
    cg.function(cg.name("check_live"), ["table", "slots"], "i32", (f) => {
      const off = f.local();
      return [
        forLive(f, f.param("table"), f.param("slots"), (k, p, s) => [
          cg.when(cg.ne(off.tee(check(p.get(), cg.size(0), s.get(), k.get())), cg.size(-1)), fail(STATUS.corrupted, k.get(), p.get(), off.get())),
        ]),
        cg.i32(0),
      ];
    });
  }

  for (const fn of ["run", "free_live", ...(verify ? ["check_live"] : [])]) m.addFunctionExport(cg.name(fn), fn);
  for (const g of ["op", "slot", "ptr", "detail", "failed", "peak_pages", "live", "peak_live"]) m.addGlobalExport(cg.name(g), g);
}
