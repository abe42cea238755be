import {
  AllocConfigError,
  allocEntries,
  check,
  isPowerOfTwo,
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
import { SizeClassesStats } from "./stats.ts";

export interface SizeClassesOptions {
  /**
   * The largest request served from a size class, in bytes; larger ones go to the parent.
   * Default 1024.
   */
  readonly maxSmall?: number;
  /**
   * How many classes share [1, maxSmall], by their spacing maxSmall / classes: class i's blocks
   * take (i + 1) * maxSmall / classes bytes with their header word (one class more holds the
   * requests up to maxSmall that the header leaves out). maxSmall / classes must be a power of
   * two and at least the minimum alignment (8 by default). Default: maxSmall / max(8, minAlign),
   * i.e. 128 classes 8 bytes apart (129 on wasm32: blocks of 4, 12, ... 1028 bytes).
   */
  readonly classes?: number;
  /**
   * A class's first span: the block it asks of the parent to carve its small blocks from. A span
   * holds `spanBytes` or, when that is less, `spanBlocks` blocks of its class (and its header).
   * A multiple of the minimum alignment, from 256 bytes to 16 MiB. Default 1024.
   */
  readonly spanBytes?: number;
  /** The fewest blocks a span holds (see `spanBytes`), from 1 to 4096. Default 2. */
  readonly spanBlocks?: number;
  /**
   * How many times a class's spans double: a class that holds k spans gets its next one
   * `spanBytes << min(k, spanDoublings)` bytes (or `spanBlocks` blocks when that is more), so a
   * class with a few blocks takes little memory and a busy one asks the parent rarely. From 0 to
   * 16. Default 2 (spans of 1 to 4 KiB).
   */
  readonly spanDoublings?: number;
  /**
   * How many empty spans are kept (the most recently emptied ones, whatever their class) rather
   * than given back to the parent at once: a program that allocates and frees one block of a
   * class over and over then does not ask the parent each time. 0 or a power of two up to 256.
   * Default 4.
   */
  readonly spareSpans?: number;
}

/** Fully resolved options, for one set of build limits. */
interface Resolved {
  readonly maxSmall: number;
  readonly classes: number;
  /** log2 of the class spacing. */
  readonly shift: number;
  readonly spanBytes: number;
  readonly spanBlocks: number;
  readonly spanDoublings: number;
  readonly spareSpans: number;
}

/**
 * Size classes over spans, on top of another strategy.
 *
 * ```text
 *   small block (size <= maxSmall)             large block (from the parent)
 *     header  payload                               parent block       header        payload
 *   ... [ span ][ class size bytes ]                [ .. | size | block+1 ][ size bytes ]
 *               ^ ptr                                                   ^ ptr
 *   span (a block of the parent):
 *   [ next prev free top avail cap size slot spare grade ][pad][span][blk][span][blk] .. top .. ]
 *   table[class] -> span with free blocks <-> span <-> ... (spans that are full are on no list)
 * ```
 *
 * Every block carries a header word just before its payload. A small block and its header take
 * a multiple of the class spacing, so that blocks stay aligned with no padding (`layoutFor`). A
 * small block's header is the address of its span (even); a large
 * block's is the parent's block address + 1 (odd), with the size asked for in the word before.
 * `free(ptr)` reads it, so it needs no size.
 *
 * A span holds the blocks of one class: a header (its links on its class's list, its free
 * blocks' list, the bump pointer `top` of blocks never handed out, the count of blocks
 * available, its capacity, its class's block size and list slot, a mark when it is spare),
 * then the blocks, handed out in address order until they have all been used once.
 *
 * - `alloc`: a small request takes the first span on its class's list: its list of freed blocks
 *   first, else the next block at `top`. A span that becomes full leaves the list. No span:
 *   a new one from the parent. O(1). Larger requests, and those aligned above the minimum, go
 *   to the parent with the header in front.
 * - `free`: a small block goes on its span's list; a full span rejoins its class's list (at the
 *   front); a span whose blocks are all free goes back to the parent, but for the most recently
 *   emptied `spareSpans` spans, which stay ready (the oldest spare goes when a new one comes).
 *   O(1). Large blocks are the parent's `free`.
 * - `resize`: a small block keeps its place while the new size fits its class; a large one asks
 *   the parent's `resize`. A small block that outgrows its class makes the next request of the
 *   same size (realloc's) twice as large: a block that keeps growing moves O(log n) times, and
 *   past half of maxSmall becomes a large block, which the parent grows in place.
 *
 * Memory follows live bytes: a class holds no more than its live blocks' spans (each at most
 * `spanBytes` or `spanBlocks` blocks) and the spares; the parent sees a few block sizes only.
 */
export function sizeClasses(options: SizeClassesOptions = {}): Strategy {
  const { maxSmall = 1024, classes, spanBlocks = 2, spanDoublings = 2, spareSpans = 4 } = options;
  // (The default grows with a minimum alignment above it: see `resolve`.)
  const spanBytes = options.spanBytes ?? 1024;
  check(Number.isInteger(maxSmall) && maxSmall >= 1 && maxSmall <= 65536,
    `size-classes: maxSmall must be an integer from 1 to 65536, got ${maxSmall}`);
  check(classes === undefined || (Number.isInteger(classes) && classes >= 1 && classes <= maxSmall),
    `size-classes: classes must be an integer from 1 to maxSmall (${maxSmall}), got ${classes}`);
  check(Number.isInteger(spanBytes) && spanBytes >= 256 && spanBytes <= 2 ** 24,
    `size-classes: spanBytes must be an integer from 256 to 16 MiB, got ${spanBytes}`);
  check(Number.isInteger(spanBlocks) && spanBlocks >= 1 && spanBlocks <= 4096,
    `size-classes: spanBlocks must be an integer from 1 to 4096, got ${spanBlocks}`);
  check(Number.isInteger(spanDoublings) && spanDoublings >= 0 && spanDoublings <= 16,
    `size-classes: spanDoublings must be an integer from 0 to 16, got ${spanDoublings}`);
  check(spanBytes * 2 ** spanDoublings <= 2 ** 24,
    `size-classes: the largest span (spanBytes ${spanBytes} doubled ${spanDoublings} times) must be at most 16 MiB`);
  check(spareSpans === 0 || (isPowerOfTwo(spareSpans) && spareSpans <= 256),
    `size-classes: spareSpans must be 0 or a power of two up to 256, got ${spareSpans}`);
  check(classes === undefined || classes <= MAX_CLASSES, `size-classes: classes must be at most ${MAX_CLASSES}, got ${classes}`);
  const resolve = (limits: BuildLimits): Resolved => {
    const { minAlign } = limits;
    // No spacing can be both at least minAlign and within maxSmall.
    if (maxSmall < minAlign) {
      throw new AllocConfigError(
        `size-classes: maxSmall (${maxSmall}) is below the minimum alignment (${minAlign}), so no two classes can be ${minAlign} bytes apart: ` +
          `raise maxSmall to at least ${minAlign}, or lower minAlign to ${2 ** Math.floor(Math.log2(maxSmall))} or less`,
      );
    }
    const spacing = Math.max(8, minAlign);
    const count = classes ?? Math.max(1, Math.floor(maxSmall / spacing));
    // Before the first span, alloc reads a list head from page 0 (and ignores it): the table's
    // offsets must stay inside page 0.
    if (count > MAX_CLASSES) {
      // (Only without `classes`: an explicit count above the limit was refused above.)
      const example = suggestClasses(maxSmall, spacing);
      throw new AllocConfigError(
        `size-classes: maxSmall ${maxSmall} at the default spacing (minAlign ${minAlign}) makes ${count} classes, more than the ${MAX_CLASSES} allowed: ` +
          `pass classes (at most ${MAX_CLASSES}${example ? `, e.g. { maxSmall: ${maxSmall}, classes: ${example} }` : ""}) or a maxSmall of at most ${MAX_CLASSES * spacing}`,
      );
    }
    const step = maxSmall / count;
    check(Number.isInteger(step) && (step & (step - 1)) === 0,
      `size-classes: maxSmall / classes must be a power of two (the spacing of the classes), got ${maxSmall} / ${count} = ${step}`);
    // (maxSmall >= minAlign here: one class at least is possible.)
    check(step >= minAlign,
      `size-classes: the classes are ${step} bytes apart, less than the minimum alignment (${minAlign}); ` +
        `use fewer classes (at most ${Math.floor(maxSmall / minAlign)}) or a larger maxSmall`);
    check(spanBytes % limits.minAlign === 0 || options.spanBytes === undefined,
      `size-classes: spanBytes (${spanBytes}) must be a multiple of the minimum alignment (${limits.minAlign})`);
    return { maxSmall, classes: count, shift: Math.log2(step), spanBytes: Math.max(spanBytes, minAlign), spanBlocks, spanDoublings, spareSpans };
  };
  return {
    name: "size-classes",
    accepts: ["allocator"],
    validate: (limits) => void resolve(limits),
    emit: (ctx, parent) => emitSizeClasses(ctx, parent, resolve(ctx.limits)),
  };
}

/** The most classes: the class table's offsets must stay within page 0 (see `resolve`). */
const MAX_CLASSES = 4096;

/**
 * The most classes at most {@link MAX_CLASSES} that `maxSmall` can be divided into, spaced a
 * power of two of at least `spacing` bytes apart; undefined when there is no such count.
 */
function suggestClasses(maxSmall: number, spacing: number): number | undefined {
  for (let step = spacing; step <= maxSmall; step *= 2) {
    if (maxSmall % step === 0 && maxSmall / step <= MAX_CLASSES) return maxSmall / step;
  }
  return undefined;
}

/** The fields of a span's header, in words. Debug builds add three (see debug.ts). */
export const SPAN_FIELDS = ["next", "prev", "free", "top", "avail", "cap", "size", "slot", "spare", "grade"] as const;
export const DEBUG_SPAN_FIELDS = ["mark", "allNext", "allPrev"] as const;
export type SpanField = (typeof SPAN_FIELDS)[number] | (typeof DEBUG_SPAN_FIELDS)[number];

/**
 * The layout of small blocks, spans and the class table, for one build.
 *
 * ```text
 *   release:  ..][ span ][ block: (i + 1) * spacing - inside bytes ][ span ][ block ..
 *                          ^ ptr (minimum aligned)
 *   debug:    ..][ canary | pad | span ][ block ][ canary | pad | span ][ block ..
 *                 (canaryRoom bytes)
 * ```
 *
 * A small block's header is one word. Class i's blocks are (i + 1) * spacing - `inside` bytes,
 * with `inside` the header word when it is smaller than the spacing (0 otherwise: a block must
 * hold a word, its free-list link), so that a block and its header (the stride) take a multiple
 * of the spacing, itself a multiple of the minimum alignment: every block stays aligned with no
 * padding. (At minAlign 16 on wasm32, a request of 8 bytes gets a 12-byte block, 16 bytes with
 * its header, where a header padded to 16 bytes took 32.) Requests up to maxSmall need one class
 * more than maxSmall / spacing when `inside` is not 0. Debug builds put a canary in front of
 * every header, in room of the minimum alignment, so that the class sizes (and every usable
 * size) are the release build's.
 */
export function layoutFor(o: { minAlign: number; word: number; maxSmall: number; shift: number; spares: number; debug: boolean }) {
  const { minAlign, word, maxSmall, shift, spares, debug } = o;
  const alignUp = (n: number) => Math.ceil(n / minAlign) * minAlign;
  const fields = debug ? [...SPAN_FIELDS, ...DEBUG_SPAN_FIELDS] : SPAN_FIELDS;
  const spacing = 2 ** shift;
  const inside = word < spacing ? word : 0;
  /** Debug builds: room for a canary word in front of each small block's header. */
  const canaryRoom = debug ? alignUp(word) : 0;
  const smallHeader = word + canaryRoom;
  const classes = Math.ceil((maxSmall + inside) / spacing);
  // The last class holds requests up to maxSmall: its blocks take maxSmall bytes with their
  // header, rounded up to the minimum alignment (not to the spacing, when that is larger).
  const largest = Math.min(classes * spacing - inside, alignUp(maxSmall + word) - word);
  /** The first block's payload, from the span's start: after the span's header and the block's own. */
  const firstBlock = alignUp(fields.length * word + smallHeader);
  return {
    /** Bytes a small block's class size leaves to its header: class i holds (i + 1) * spacing - inside bytes. */
    inside,
    /** How many classes: requests from 1 to maxSmall bytes. */
    classes,
    /**
     * The last class's block size, when it is below (classes * spacing - inside): a spacing
     * above the minimum alignment would round maxSmall up by up to a spacing. Else undefined.
     */
    largest: largest < classes * spacing - inside ? largest : undefined,
    /** Bytes in front of a small payload: its header word (and in debug builds, the canary's room). */
    smallHeader,
    /** Debug builds: the canary's room (0 in release builds). */
    canaryRoom,
    /**
     * Bytes in front of a large payload (for the minimum alignment): two words, padded. Debug
     * builds keep two more words free in front, where the parent may keep its own links once the
     * block is free: the header then shows that it was freed (see debug.ts).
     */
    largeHeader: alignUp((debug ? 4 : 2) * word),
    /** The class table: a list head per class, a count of spans per class, then the spare spans. */
    tableBytes: alignUp((2 * classes + spares) * word),
    /** Offset from a class's list head (its `slot`) to its count of spans. */
    countAt: classes * word,
    /** Offset in the table of the spare spans. */
    sparesAt: 2 * classes * word,
    /** The span header's bytes (its fields). */
    spanHeader: fields.length * word,
    /** The offset in a span of its first block's payload (minimum aligned). */
    firstBlock,
    /** The offset in a span of its first block's header: the span's blocks start there. */
    blocksAt: firstBlock - smallHeader,
    /** A span field's byte offset. */
    at: (field: SpanField) => fields.indexOf(field as never) * word,
  };
}

function emitSizeClasses(ctx: EmitContext, parent: Parent, o: Resolved): AllocatorFunctions {
  if (parent.kind !== "allocator") throw new AllocConfigError("size-classes: needs a strategy below it");
  const { cg, scope, limits } = ctx;
  const m = cg.module;
  const up = parent.allocator;
  const W = cg.ptrBytes;
  const wordLog = Math.log2(W);
  const L = layoutFor({
    minAlign: limits.minAlign, word: W, maxSmall: o.maxSmall, shift: o.shift,
    spares: up.usableSize === undefined ? 0 : o.spareSpans, debug: !!ctx.debug,
  });
  const { smallHeader, largeHeader, tableBytes, firstBlock, blocksAt, inside, largest, at, countAt, sparesAt } = L;
  const zero = () => cg.size(0);
  const one = () => cg.size(1);
  /** Sizes this large or more can never be allocated; refusing them keeps `size + header` from wrapping. */
  const tooLarge = cg.memory64 ? 2 ** 52 : 2 ** 32 - 2 ** 17;
  // Debug builds store headers XOR HEADER_MAGIC (see debug.ts): zeroed or stray memory then
  // never reads as a live block's header.
  const magic = ctx.debug ? HEADER_MAGIC : 0;
  /** The header word of the block at `ptr`, and the size word of a large block. */
  const headerOf = (ptr: Expr) => {
    const word = cg.load(cg.sub(ptr, cg.size(W)));
    return magic ? cg.xor(word, cg.size(magic)) : word;
  };
  /** Stores header `h` in front of the payload at `ptr`. */
  const setHeader = (ptr: Expr, h: Expr) => cg.store(cg.sub(ptr, cg.size(W)), magic ? cg.xor(h, cg.size(magic)) : h);
  const sizeWordAt = (ptr: Expr) => cg.sub(ptr, cg.size(2 * W));
  const isLarge = (h: Expr) => cg.toI32(cg.and(h, one()));
  /** A span's field. */
  const get = (s: Expr, field: SpanField) => cg.load(s, at(field));
  const set = (s: Expr, field: SpanField, value: Expr) => cg.store(s, value, at(field));
  const divU = (a: Expr, b: Expr) => (cg.memory64 ? m.i64.div_u(a, b) : m.i32.div_u(a, b));

  /** Address of the class table (list heads, then the spare spans), 0 until the first span. */
  const table = cg.global(scope("table"));
  // A parent without `usableSize` may hand out only memory above every live block (core's
  // contract), so it cannot reuse a span given back in the middle of its memory (bump): over such
  // a parent, spans are kept for good. An empty one goes on a pool of empty spans (`pool`, linked
  // through `next`, their size in `spare`) that the next new span of any class is taken from
  // when the first one is large enough.
  const keepSpans = up.usableSize === undefined;
  const spares = keepSpans ? 0 : o.spareSpans;
  const pool = keepSpans ? cg.global(scope("pool")) : undefined;
  /** The byte offset in the spare ring where the next spare goes. */
  const spareAt = spares > 0 ? cg.global(scope("spare_at")) : undefined;
  /** A request size that realloc asks for after resize refused it: it is given twice the room. */
  const grower = cg.global(scope("grower"));

  /** The byte size of the class whose table offset is `h()` (= class * W). */
  // ((class + 1) << shift) - inside, from h = class * W: (h + W) scaled by 2^(shift - wordLog),
  // exact as W divides h; at most `largest`.
  const classSize = (h: () => Expr) => {
    const size = () => {
      const next = cg.add(h(), cg.size(W));
      const stride = o.shift >= wordLog ? cg.shl(next, cg.size(o.shift - wordLog)) : cg.shrU(next, cg.size(wordLog - o.shift));
      return inside ? cg.sub(stride, cg.size(inside)) : stride;
    };
    return largest === undefined ? size() : cg.select(cg.ltU(size(), cg.size(largest)), size(), cg.size(largest));
  };

  /** Debug builds only: free marks, poison, canaries, the span list and the walker (`debug.ts`). */
  const dbg =
    ctx.debug &&
    new SizeClassesDebug({
      cg,
      debug: ctx.debug,
      scope,
      classes: L.classes,
      spareSpans: spares,
      spanDoublings: o.spanDoublings,
      keepSpans,
      minAlign: limits.minAlign,
      maxLargeHeader: limits.maxAlign + largeHeader,
      layout: L,
      table,
      classSize,
      headerOf,
      setHeader,
      sizeWordAt,
    });

  /** Release builds with heap statistics only: counters and the walker (`stats.ts`). */
  const st = ctx.stats && new SizeClassesStats({ cg, scope, classes: L.classes, table, get, sizeWordAt });

  /**
   * A minimum-aligned block of `size` bytes from the parent: its constant-alignment copy when it
   * has one. (The parent is never asked for more alignment: see `largeBody`.)
   */
  const upAlloc = (size: Expr) =>
    up.allocFixed ? cg.call(up.allocFixed(limits.minAlign), [size]) : cg.call(up.alloc, [size, cg.size(limits.minAlign)]);

  // ---- class lists: doubly linked; `prev` is the address of the word that points to the span
  // (its class's table slot, or the previous span's `next`, at offset 0), so the front needs no
  // special case.

  /** link(s, slot): puts span s at the front of the list whose head is at `slot`. */
  const link = cg.function(scope("link"), ["s", "slot"], "none", (f) => {
    const s = f.param("s"), slot = f.param("slot"), n = f.local();
    return [
      set(s.get(), "next", n.tee(cg.load(slot.get()))),
      set(s.get(), "prev", slot.get()),
      cg.when(n.get(), [set(n.get(), "prev", s.get())]),
      cg.store(slot.get(), s.get()),
    ];
  });
  /** unlink(s): takes span s off its class's list. */
  const unlink = cg.function(scope("unlink"), ["s"], "none", (f) => {
    const s = f.param("s"), n = f.local(), p = f.local();
    return [
      cg.store(p.tee(get(s.get(), "prev")), n.tee(get(s.get(), "next"))),
      cg.when(n.get(), [set(n.get(), "prev", p.get())]),
    ];
  });
  /** Span s leaves its class: one span fewer in the class's count, and off its list. */
  const leave = (s: Local, c: Local): Expr[] => [
    cg.store(c.tee(get(s.get(), "slot")), cg.sub(cg.load(c.get(), countAt), one()), countAt),
    cg.callVoid(unlink, [s.get()]),
  ];
  /** release(s): span s, all of its blocks free, goes back to the parent. */
  const release = cg.function(scope("release"), ["s"], "none", (f) => {
    const s = f.param("s"), c = f.local();
    return [...leave(s, c), ...(dbg ? dbg.spanReleased(s) : []), cg.callVoid(up.free, [s.get()])];
  });
  /**
   * Span s has just become empty. Its class's only span, of the first size, stays (on its list):
   * a class whose last block comes and goes does not ask the parent each time, and costs at most
   * one small span. Any other empty span becomes a spare (unless it is one already), and the
   * oldest spare goes back to the parent if it is still empty (else it just stops being one);
   * without spares, it goes back at once.
   */
  const kept = (s: Local) => cg.eqz(cg.or(cg.sub(cg.load(get(s.get(), "slot"), countAt), one()), get(s.get(), "grade")));
  const retire =
    spareAt
      ? cg.function(scope("retire"), ["s"], "none", (f) => {
          const s = f.param("s"), slot = f.local(), v = f.local();
          return cg.when(m.i32.and(cg.eqz(get(s.get(), "spare")), m.i32.eqz(kept(s))), [
            v.set(cg.load(slot.tee(cg.add(cg.add(table.get(), cg.size(sparesAt)), spareAt.get())))),
            cg.store(slot.get(), s.get()),
            set(s.get(), "spare", one()),
            spareAt.set(cg.and(cg.add(spareAt.get(), cg.size(W)), cg.size(spares * W - 1))),
            cg.when(v.get(), [
              cg.when(
                cg.eq(get(v.get(), "avail"), get(v.get(), "cap")),
                [cg.callVoid(release, [v.get()])],
                [set(v.get(), "spare", zero())],
              ),
            ]),
          ]);
        })
      : pool
        ? cg.function(scope("retire"), ["s"], "none", (f) => {
            // (Pooled at once: the pool asks the parent nothing.)
            const s = f.param("s"), c = f.local();
            return [...leave(s, c), ...(dbg ? dbg.pooled(s) : []), set(s.get(), "next", pool.get()), pool.set(s.get())];
          })
        : cg.function(scope("retire"), ["s"], "none", (f) => {
            const s = f.param("s");
            return cg.when(m.i32.eqz(kept(s)), [cg.callVoid(release, [s.get()])]);
          });

  /**
   * new_span(h) -> s: a new span for the class at table offset h, at the front of its list; 0
   * when the parent has no memory. The first one also makes the class table. A class holding k
   * spans gets one of spanBytes << min(k, spanDoublings) bytes, or spanBlocks blocks when that
   * is more.
   */
  const newSpan = cg.function(scope("new_span"), ["h"], "usize", (f) => {
    const h = f.param("h"), t = f.local(), size = f.local(), stride = f.local(), bytes = f.local(), s = f.local();
    const c = f.local(), k = f.local(), g = f.local();
    const tail = dbg ? dbg.spanTail : 0;
    return [
      cg.when(cg.eqz(table.get()), [
        cg.returnIf(cg.eqz(t.tee(upAlloc(cg.size(tableBytes)))), zero()),
        cg.fill(f, t.get(), cg.i32(0), cg.size(tableBytes)),
        table.set(t.get()),
      ]),
      // The span's grade: how many times its size doubled (min(k, spanDoublings) for the class's
      // k spans). (select evaluates both arms before its condition: the tees go in the first.)
      // Over a parent that keeps spans, they all have one grade (the pool reuses its first span
      // only when it is large enough): min(2, spanDoublings), 4 KiB by default.
      ...(pool
        ? [k.set(cg.load(c.tee(cg.add(table.get(), h.get())), countAt)), g.set(cg.size(Math.min(2, o.spanDoublings)))]
        : [g.set(cg.select(cg.ltU(k.get(), cg.size(o.spanDoublings)), k.tee(cg.load(c.tee(cg.add(table.get(), h.get())), countAt)), cg.size(o.spanDoublings)))]),
      // spanBlocks blocks, or spanBytes << grade when that holds more.
      t.set(cg.add(cg.mul(stride.tee(cg.add(size.tee(classSize(h.get)), cg.size(smallHeader))), cg.size(o.spanBlocks)), cg.size(blocksAt + tail))),
      bytes.set(cg.select(cg.gtU(bytes.get(), t.get()), bytes.tee(cg.shl(cg.size(o.spanBytes), g.get())), t.get())),
      ...(pool
        ? [
            // The first empty span, when it is large enough (its size, not the size asked for, is the span's).
            m.if(
              m.i32.and(cg.ne(s.tee(pool.get()), zero()), cg.leU(bytes.get(), get(s.get(), "spare"))),
              cg.block([pool.set(get(s.get(), "next")), bytes.set(get(s.get(), "spare")), ...(dbg ? dbg.unpooled(s) : [])]),
              cg.returnIf(cg.eqz(s.tee(upAlloc(bytes.get()))), zero()),
            ),
            set(s.get(), "spare", bytes.get()),
          ]
        : [cg.returnIf(cg.eqz(s.tee(upAlloc(bytes.get()))), zero())]),
      set(s.get(), "free", zero()),
      set(s.get(), "top", cg.add(s.get(), cg.size(firstBlock))),
      set(s.get(), "avail", t.tee(divU(cg.sub(bytes.get(), cg.size(blocksAt + tail)), stride.get()))),
      set(s.get(), "cap", t.get()),
      set(s.get(), "size", size.get()),
      set(s.get(), "slot", c.get()),
      set(s.get(), "grade", g.get()),
      cg.store(c.get(), cg.add(k.get(), one()), countAt),
      ...(spareAt || (dbg && !pool) ? [set(s.get(), "spare", zero())] : []),
      ...(dbg ? dbg.spanMade(s) : []),
      cg.callVoid(link, [s.get(), c.get()]),
      s.get(),
    ];
  });

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
      setHeader(ptr.tee(payload()), cg.add(block.get(), one())),
      cg.store(sizeWordAt(ptr.get()), size.get()),
      ...(dbg ? dbg.largeTaken(size) : []),
      ...(st ? st.largeTaken(size) : []),
      ptr.get(),
    ];
  };

  /** alloc(size, align) with `align` an expression, or the constant `alignConst`. */
  const allocBody = (f: FunctionScope, size: Local, align: () => Expr, alignConst: number | undefined): Expr[] => {
    const t = f.local(), h = f.local(), s = f.local(), p = f.local(), n = f.local();
    const small = cg.ltU(t.tee(cg.sub(size.get(), one())), cg.size(o.maxSmall));
    const again = f.label("span");
    // Small blocks are aligned to the minimum alignment only.
    if (alignConst !== undefined && alignConst > limits.minAlign) return largeBody(f, size, align, alignConst);
    return [
      // realloc's request after resize refused this size: twice the room (see `resize`).
      cg.when(cg.eq(size.get(), grower.get()), [grower.set(zero()), size.set(cg.shl(size.get(), one()))]),
      cg.when(alignConst === undefined ? m.i32.and(small, cg.leU(align(), cg.size(limits.minAlign))) : small, [
        // The class: the first whose blocks hold size bytes, ((size - 1 + inside) >> shift).
        h.set(cg.shl(cg.shrU(inside ? cg.add(t.get(), cg.size(inside)) : t.get(), cg.size(o.shift)), cg.size(wordLog))),
        m.loop(
          again,
          cg.block([
            // The first span with free blocks (no table yet: no span; the load is of page 0, and unused).
            cg.when(s.tee(cg.select(table.get(), cg.load(cg.add(table.get(), h.get())), zero())), [
              cg.when(
                p.tee(get(s.get(), "free")),
                [...(dbg ? dbg.beforePop(p, s) : []), set(s.get(), "free", cg.load(p.get())), ...(dbg ? dbg.popped(p, s) : [])],
                [
                  // A block never handed out, in address order.
                  set(s.get(), "top", cg.add(cg.add(p.tee(get(s.get(), "top")), get(s.get(), "size")), cg.size(smallHeader))),
                  setHeader(p.get(), s.get()),
                  ...(dbg ? dbg.carved(p, s) : []),
                ],
              ),
              ...(st ? st.smallTaken(s) : []),
              // The last block available: the span leaves its class's list.
              set(s.get(), "avail", n.tee(cg.sub(get(s.get(), "avail"), one()))),
              cg.when(cg.eqz(n.get()), [cg.callVoid(unlink, [s.get()])]),
              cg.ret(p.get()),
            ]),
            cg.returnIf(cg.eqz(cg.call(newSpan, [h.get()])), zero()),
            m.br(again),
          ]),
        ),
      ]),
      ...largeBody(f, size, align, alignConst),
    ];
  };
  const { alloc, allocFixed } = allocEntries({ cg, scope }, allocBody);

  const free = cg.function(scope("free"), ["ptr"], "none", (f) => {
    const ptr = f.param("ptr");
    const s = f.local(), a = f.local();
    return [
      // (The debug checks read the header into s, then mark a small block free in memory.)
      ...(dbg ? dbg.free(f, ptr, s) : []),
      cg.when(isLarge(dbg ? s.get() : s.tee(headerOf(ptr.get()))), [
        ...(st ? st.largeFreed(ptr) : []),
        cg.callVoid(up.free, [cg.sub(s.get(), one())]),
        cg.ret(),
      ]),
      ...(st ? st.smallFreed(s) : []),
      // On its span's list.
      cg.store(ptr.get(), get(s.get(), "free")),
      set(s.get(), "free", ptr.get()),
      set(s.get(), "avail", cg.add(a.tee(get(s.get(), "avail")), one())),
      // A full span has a block again: back on its class's list, at the front.
      cg.when(cg.eqz(a.get()), [cg.callVoid(link, [s.get(), get(s.get(), "slot")])]),
      // All of its blocks free: a spare, or back to the parent.
      cg.when(cg.eq(cg.add(a.get(), one()), get(s.get(), "cap")), [cg.callVoid(retire, [s.get()])]),
    ];
  });

  const resize = cg.function(scope("resize"), ["ptr", "size"], "usize", (f) => {
    const ptr = f.param("ptr"), size = f.param("size");
    const h = f.local(), block = f.local();
    const largeResize = up.resize
      ? [
          cg.returnIf(cg.geU(size.get(), cg.size(tooLarge)), zero()),
          block.set(cg.sub(h.get(), one())),
          cg.returnIf(
            cg.eqz(cg.call(up.resize, [block.get(), cg.add(size.get(), cg.sub(ptr.get(), block.get()))])),
            zero(),
          ),
          ...(dbg ? dbg.largeResized(ptr, size) : []),
          ...(st ? st.largeResized(ptr, size) : []),
          cg.store(sizeWordAt(ptr.get()), size.get()),
          cg.ret(ptr.get()),
        ]
      : [cg.ret(zero())];
    return [
      cg.when(isLarge(h.tee(headerOf(ptr.get()))), largeResize),
      // A small block stays while the size fits its class. When it does not, realloc asks alloc
      // for this size next: it gets twice the room.
      cg.returnIf(cg.leU(size.get(), get(h.get(), "size")), ptr.get()),
      // (Only a small size: doubling a large one could wrap.)
      grower.set(cg.select(cg.leU(size.get(), cg.size(o.maxSmall)), size.get(), zero())),
      zero(),
    ];
  });

  const usableSize = cg.function(scope("usable_size"), ["ptr"], "usize", (f) => {
    const ptr = f.param("ptr");
    const h = f.local();
    return [
      // Debug builds: the pointer is checked like free's (nothing is written).
      ...(dbg ? dbg.checkBlock(f, ptr, f.local(), false) : []),
      m.if(isLarge(h.tee(headerOf(ptr.get()))), cg.load(sizeWordAt(ptr.get())), get(h.get(), "size")),
    ];
  });

  const checkFn = dbg && dbg.emitCheck();

  return {
    alloc,
    allocFixed,
    free,
    resize,
    usableSize,
    // A small block's header and its span's size, or a large block's size word: only calls on
    // the block itself write them while it is live (a span is remade only empty).
    usableSizeUnlocked: true,
    // Small blocks fit while the size is within the class; large ones when the parent shrinks in place.
    ...(up.resize && up.shrinksInPlace && { shrinksInPlace: true }),
    // The parent's fresh mark holds for blocks from here too: spans and large blocks come from
    // the parent, and nothing is written inside a payload handed out (headers lie in front).
    ...(up.fresh && !dbg && { fresh: up.fresh }),
    ...(checkFn && { check: checkFn }),
    ...(st && ctx.stats && { walk: st.emitWalk(ctx.stats.vars) }),
  };
}
