import {
  AllocConfigError,
  allocEntries,
  check,
  type AllocatorFunctions,
  type BuildLimits,
  type EmitContext,
  type Expr,
  type FunctionScope,
  type Local,
  type Parent,
  type Strategy,
} from "@alloc/core";
import { HEADER_MAGIC, SizeClassesDebug } from "./debug.ts";

export interface SizeClassesOptions {
  /**
   * The largest request served from a size class, in bytes; larger ones go to the parent.
   * Default 1024.
   */
  readonly maxSmall?: number;
  /**
   * How many classes share [1, maxSmall]: class i holds blocks of (i + 1) * maxSmall / classes
   * bytes. maxSmall / classes must be a power of two and at least the minimum alignment (8 by
   * default). Default: maxSmall / max(8, minAlign), i.e. 128 classes 8 bytes apart.
   */
  readonly classes?: number;
  /**
   * The most bytes asked of the parent at a time to carve small blocks from (all classes share
   * the current chunk). Chunks start smaller and double up to this size: the first is the
   * smallest of chunkBytes / 2^k (k >= 0) that is at least 4096 bytes, a multiple of the
   * minimum alignment, and holds the class table and the largest small block. chunkBytes itself
   * must be a multiple of the minimum alignment and hold them. Default 16384.
   */
  readonly chunkBytes?: number;
}

/** Fully resolved options, for one set of build limits. */
interface Resolved {
  readonly maxSmall: number;
  readonly classes: number;
  /** log2 of the class spacing. */
  readonly shift: number;
  /** The largest chunk, and the first (chunks double from it up to the largest). */
  readonly chunkBytes: number;
  readonly firstChunk: number;
}

/** Chunks start at this size or more (when chunkBytes allows): a fresh heap asks for less memory. */
const FIRST_CHUNK_MIN = 4096;

/**
 * Segregated free lists for small requests, on top of another strategy.
 *
 * ```text
 *   small block (size <= maxSmall)            large block (from the parent)
 *        header        payload                     parent block       header       payload
 *   ... [ pad | class*W ][ (i+1)*step bytes ]       [ .. | size | block+1 ][ size bytes ]
 *                       ^ ptr                                           ^ ptr
 *   chunk from the parent: [class table][blk][blk]....[blk][  top ... end  ]
 *   table[i] -> free block of class i -> next free block -> ... -> 0   (link in the payload)
 * ```
 *
 * Every block carries a header word just before its payload (the payload stays aligned to the
 * minimum alignment, so the header takes that many bytes: 8 by default). For a small block it
 * is `class * W` (W = 4 bytes on wasm32): even, and the byte offset of its list head in the class
 * table. For a large block it is the parent's block address + 1 (odd), and the word before it
 * holds the size asked for. `free(ptr)` reads the word: even, the block goes back to the front of
 * its class's list; odd, to the parent. No size is needed from the caller.
 *
 * - `alloc`: a small request pops the front of its class list, O(1); an empty list carves a
 *   block from the current chunk (bump allocation), and a used-up chunk is replaced by a new one
 *   from the parent, twice the size of the last up to `chunkBytes`. The first chunk also holds
 *   the class table. Larger requests, and those
 *   aligned above the minimum, go to the parent with the header in front.
 * - `free`: O(1) for small blocks; large blocks are the parent's `free`.
 * - `resize`: a small block keeps its place while the new size fits its class; a large one asks
 *   the parent's `resize`.
 *
 * Small blocks stay in their class for good: memory is never moved between classes or given
 * back to the parent, so what the classes hold is bounded by each class's peak live bytes.
 * The tail of a used-up chunk (less than one block) is left unused.
 */
export function sizeClasses(options: SizeClassesOptions = {}): Strategy {
  const { maxSmall = 1024, classes, chunkBytes = 16384 } = options;
  check(Number.isInteger(maxSmall) && maxSmall >= 1 && maxSmall <= 65536,
    `size-classes: maxSmall must be an integer from 1 to 65536, got ${maxSmall}`);
  check(classes === undefined || (Number.isInteger(classes) && classes >= 1 && classes <= maxSmall),
    `size-classes: classes must be an integer from 1 to maxSmall (${maxSmall}), got ${classes}`);
  check(Number.isInteger(chunkBytes) && chunkBytes >= 64 && chunkBytes <= 2 ** 24,
    `size-classes: chunkBytes must be an integer from 64 to 16 MiB, got ${chunkBytes}`);
  const resolve = (limits: BuildLimits, word: number): Resolved => {
    const count = classes ?? Math.max(1, Math.floor(maxSmall / Math.max(8, limits.minAlign)));
    // Before the first chunk, alloc reads a list head from page 0 (and ignores it): the table's
    // offsets must stay inside page 0.
    check(count <= 4096, `size-classes: at most 4096 classes, got ${count}`);
    const step = maxSmall / count;
    check(Number.isInteger(step) && (step & (step - 1)) === 0,
      `size-classes: maxSmall / classes must be a power of two (the spacing of the classes), got ${maxSmall} / ${count} = ${step}`);
    check(step >= limits.minAlign,
      `size-classes: the classes are ${step} bytes apart, less than the minimum alignment (${limits.minAlign}); ` +
        `use fewer classes (at most ${Math.floor(maxSmall / limits.minAlign)}) or a larger maxSmall`);
    const layout = layoutFor(limits.minAlign, word, count);
    const needed = layout.tableBytes + maxSmall + layout.smallHeader;
    check(chunkBytes % limits.minAlign === 0 && chunkBytes >= needed,
      `size-classes: chunkBytes (${chunkBytes}) must be a multiple of the minimum alignment (${limits.minAlign}) ` +
        `and hold the class table and the largest small block (${needed} bytes)`);
    let firstChunk = chunkBytes;
    for (let half = chunkBytes / 2; half >= Math.max(FIRST_CHUNK_MIN, needed) && half % limits.minAlign === 0; half /= 2) firstChunk = half;
    return { maxSmall, classes: count, shift: Math.log2(step), chunkBytes, firstChunk };
  };
  return {
    name: "size-classes",
    accepts: ["allocator"],
    validate: (limits) => void resolve(limits, 4),
    emit: (ctx, parent) => emitSizeClasses(ctx, parent, resolve(ctx.limits, ctx.cg.ptrBytes)),
  };
}

/** Header sizes and the class table's size. */
function layoutFor(minAlign: number, word: number, classes: number) {
  const alignUp = (n: number) => Math.ceil(n / minAlign) * minAlign;
  return {
    /** Bytes in front of a small payload: one word, padded to the minimum alignment. */
    smallHeader: alignUp(word),
    /** Bytes in front of a large payload (for the minimum alignment): two words, padded. */
    largeHeader: alignUp(2 * word),
    tableBytes: alignUp(classes * word),
  };
}

function emitSizeClasses(ctx: EmitContext, parent: Parent, o: Resolved): AllocatorFunctions {
  if (parent.kind !== "allocator") throw new AllocConfigError("size-classes: needs a strategy below it");
  const { cg, scope, limits } = ctx;
  const m = cg.module;
  const up = parent.allocator;
  const W = cg.ptrBytes;
  const wordLog = Math.log2(W);
  const { smallHeader, largeHeader, tableBytes } = layoutFor(limits.minAlign, W, o.classes);
  const zero = () => cg.size(0);
  /** Sizes this large or more can never be allocated; refusing them keeps `size + header` from wrapping. */
  const tooLarge = cg.memory64 ? 2 ** 52 : 2 ** 32 - 2 ** 17;
  /** The header word of the block at `ptr`, and the size word of a large block. */
  // Debug builds store headers XOR HEADER_MAGIC (see debug.ts): zeroed or stray memory then
  // never reads as a live block's header.
  const magic = ctx.debug ? HEADER_MAGIC : 0;
  const headerOf = (ptr: Expr) => {
    const word = cg.load(cg.sub(ptr, cg.size(W)));
    return magic ? cg.xor(word, cg.size(magic)) : word;
  };
  /** Stores header `h` in front of the payload at `ptr`. */
  const setHeader = (ptr: Expr, h: Expr) => cg.store(cg.sub(ptr, cg.size(W)), magic ? cg.xor(h, cg.size(magic)) : h);
  const sizeWordAt = (ptr: Expr) => cg.sub(ptr, cg.size(2 * W));
  const isLarge = (h: Expr) => cg.toI32(cg.and(h, cg.size(1)));

  /** Address of the class table (list heads), 0 until the first chunk. */
  const table = cg.global(scope("table"));
  /** The current chunk: small blocks are carved at `top`, up to `end`. */
  const top = cg.global(scope("top"));
  const end = cg.global(scope("end"));
  /** The size of the next chunk: doubles from the first up to chunkBytes (a constant when they are equal). */
  const nextChunk = o.firstChunk < o.chunkBytes ? cg.global(scope("chunk_bytes"), o.firstChunk) : undefined;
  const chunkSize = () => nextChunk?.get() ?? cg.size(o.chunkBytes);

  /** The byte size of the class whose header is `h` (= class * W). */
  // (class + 1) << shift, from h = class * W: (h + W) scaled by 2^(shift - wordLog), exact as W divides h.
  const classSize = (h: Expr) => {
    const next = cg.add(h, cg.size(W));
    return o.shift >= wordLog ? cg.shl(next, cg.size(o.shift - wordLog)) : cg.shrU(next, cg.size(wordLog - o.shift));
  };

  /** Debug builds only: free marks, poison, counters and the walker (`debug.ts`). */
  const dbg =
    ctx.debug &&
    new SizeClassesDebug({
      cg,
      debug: ctx.debug,
      scope,
      classes: o.classes,
      minAlign: limits.minAlign,
      maxLargeHeader: limits.maxAlign + largeHeader,
      largeHeader,
      table,
      top,
      end,
      classSize,
      headerOf,
      setHeader,
      sizeWordAt,
    });

  /**
   * A minimum-aligned block of `size` bytes from the parent: its constant-alignment copy when it
   * has one. (The parent is never asked for more alignment: see `largeBody`.)
   */
  const upAlloc = (size: Expr) =>
    up.allocFixed ? cg.call(up.allocFixed(limits.minAlign), [size]) : cg.call(up.alloc, [size, cg.size(limits.minAlign)]);

  /**
   * A large block: from the parent (always minimum aligned), with room in front for the header
   * and, for an alignment above the minimum, for moving the payload up to it. The header's
   * words, just before the payload, hold the size and the parent's block + 1; a gap in front of
   * them stays unused until the block is freed. (Asking the parent for an aligned block instead
   * would give the gap back, but costs the parent's aligned path: about 100 bytes of code.)
   */
  const largeBody = (f: FunctionScope, size: Local, align: () => Expr, alignConst: number | undefined): Expr[] => {
    const block = f.local(), ptr = f.local();
    const minAlign = limits.minAlign;
    const [slack, payload] =
      alignConst === undefined
        ? // The first multiple of align at block + largeHeader or above: as block + largeHeader is
          // minimum aligned, the last one at block + slack or below (one bitwise and, no + align - 1).
          [cg.add(align(), cg.size(largeHeader - minAlign)), () => cg.and(cg.add(block.get(), cg.add(align(), cg.size(largeHeader - minAlign))), cg.sub(zero(), align()))]
        : // (block + largeHeader is minimum aligned already.)
          [cg.size(largeHeader + Math.max(alignConst, minAlign) - minAlign), () => cg.alignUpConst(cg.add(block.get(), cg.size(largeHeader)), alignConst > minAlign ? alignConst : 1)];
    return [
      cg.returnIf(cg.geU(size.get(), cg.size(tooLarge)), zero()),
      cg.returnIf(cg.eqz(block.tee(upAlloc(cg.add(size.get(), slack)))), zero()),
      setHeader(ptr.tee(payload()), cg.add(block.get(), cg.size(1))),
      cg.store(sizeWordAt(ptr.get()), size.get()),
      ...(dbg ? dbg.largeTaken(size) : []),
      ptr.get(),
    ];
  };

  /** alloc(size, align) with `align` an expression, or the constant `alignConst`. */
  const allocBody = (f: FunctionScope, size: Local, align: () => Expr, alignConst: number | undefined): Expr[] => {
    const t = f.local(), h = f.local(), p = f.local(), stride = f.local(), chunk = f.local();
    const small = cg.ltU(t.tee(cg.sub(size.get(), cg.size(1))), cg.size(o.maxSmall));
    const slot = () => cg.add(table.get(), h.get());
    // Small blocks are aligned to the minimum alignment only.
    if (alignConst !== undefined && alignConst > limits.minAlign) return largeBody(f, size, align, alignConst);
    return [
      cg.when(alignConst === undefined ? m.i32.and(small, cg.leU(align(), cg.size(limits.minAlign))) : small, [
        h.set(cg.shl(cg.shrU(t.get(), cg.size(o.shift)), cg.size(wordLog))),
        // Pop the class's list (no table yet: no list; the load is of page 0, and unused).
        cg.when(p.tee(cg.select(table.get(), cg.load(slot()), zero())), [
          cg.store(slot(), cg.load(p.get())),
          ...(dbg ? dbg.popped(p, h) : []),
          cg.ret(p.get()),
        ]),
        // Carve a block from the chunk; a new chunk when it has no room left.
        cg.when(cg.gtU(stride.tee(cg.add(classSize(h.get()), cg.size(smallHeader))), cg.sub(end.get(), top.get())), [
          cg.returnIf(
            cg.eqz(chunk.tee(upAlloc(chunkSize()))),
            zero(),
          ),
          end.set(cg.add(chunk.get(), chunkSize())),
          // Doubled while below chunkBytes (a power-of-two multiple of it): shifted by the test's 0 or 1.
          ...(nextChunk ? [nextChunk.set(cg.shl(nextChunk.get(), cg.fromI32(cg.ltU(nextChunk.get(), cg.size(o.chunkBytes)))))] : []),
          // The first chunk starts with the class table, all lists empty.
          cg.when(cg.eqz(table.get()), [
            table.set(chunk.get()),
            cg.fill(f, chunk.get(), cg.i32(0), cg.size(tableBytes)),
            chunk.set(cg.add(chunk.get(), cg.size(tableBytes))),
          ]),
          top.set(chunk.get()),
        ]),
        setHeader(p.tee(cg.add(top.get(), cg.size(smallHeader))), h.get()),
        top.set(cg.add(top.get(), stride.get())),
        ...(dbg ? dbg.carved(h) : []),
        cg.ret(p.get()),
      ]),
      ...largeBody(f, size, align, alignConst),
    ];
  };
  const { alloc, allocFixed } = allocEntries({ cg, scope }, allocBody);

  const free = cg.function(scope("free"), ["ptr"], "none", (f) => {
    const ptr = f.param("ptr");
    const h = f.local(), s = f.local();
    return [
      // (The debug checks read the header into h, then mark a small block free in memory.)
      ...(dbg ? dbg.free(f, ptr, h) : []),
      cg.when(isLarge(dbg ? h.get() : h.tee(headerOf(ptr.get()))), [cg.callVoid(up.free, [cg.sub(h.get(), cg.size(1))]), cg.ret()]),
      // Back to the front of its class's list.
      cg.store(ptr.get(), cg.load(s.tee(cg.add(table.get(), h.get())))),
      cg.store(s.get(), ptr.get()),
    ];
  });

  const resize = cg.function(scope("resize"), ["ptr", "size"], "usize", (f) => {
    const ptr = f.param("ptr"), size = f.param("size");
    const h = f.local(), block = f.local();
    const largeResize = up.resize
      ? [
          cg.returnIf(cg.geU(size.get(), cg.size(tooLarge)), zero()),
          block.set(cg.sub(h.get(), cg.size(1))),
          cg.returnIf(
            cg.eqz(cg.call(up.resize, [block.get(), cg.add(size.get(), cg.sub(ptr.get(), block.get()))])),
            zero(),
          ),
          ...(dbg ? dbg.largeResized(ptr, size) : []),
          cg.store(sizeWordAt(ptr.get()), size.get()),
          cg.ret(ptr.get()),
        ]
      : [cg.ret(zero())];
    return [
      cg.when(isLarge(h.tee(headerOf(ptr.get()))), largeResize),
      // A small block stays while the size fits its class.
      cg.select(cg.leU(size.get(), classSize(h.get())), ptr.get(), zero()),
    ];
  });

  const usableSize = cg.function(scope("usable_size"), ["ptr"], "usize", (f) => {
    const ptr = f.param("ptr");
    const h = f.local();
    return m.if(isLarge(h.tee(headerOf(ptr.get()))), cg.load(sizeWordAt(ptr.get())), classSize(h.get()));
  });

  const check = dbg && dbg.emitCheck();

  return {
    alloc,
    allocFixed,
    free,
    resize,
    usableSize,
    // Small blocks fit while the size is within the class; large ones when the parent shrinks in place.
    ...(up.resize && up.shrinksInPlace && { shrinksInPlace: true }),
    ...(check && { check }),
  };
}
