/**
 * Cells: the block layout of the general-purpose strategies (`@alloc/free-list`), written once.
 *
 * Pages from the backend are cut into cells that tile them exactly. Every cell starts with a
 * two-word header; the payload (what `alloc` returns) follows it. Sizes below are for wasm32,
 * where a word (W) is 4 bytes; on memory64 every number doubles.
 *
 * ```text
 *   cell c                      payload p = c + 8 (8-aligned)          next cell = end of c
 *   |                           |                                      |
 *   v                           v                                      v
 *   +---------------+-----------+--------------------------------------+---------------
 *   | next      |F  | prev ^ c  | payload: at least 8 bytes            | next |F | ...
 *   +---------------+-----------+--------------------------------------+---------------
 *     word 0:         word 1:     a free cell keeps its free-list links
 *     address of the  address of  in its first two payload words:
 *     next cell;      the previous  [p + 0] next free cell
 *     bit 0: FREE     cell, XOR c   [p + 4] previous free cell
 *
 *   A region (pages that follow each other):
 *   [cell: prev = itself][cell][cell] ... [cell][end sentinel: word 0 = 0, prev = last cell]
 * ```
 *
 * Invariants (what every emitted function may assume, and must keep):
 * 1. Cells tile a region: `next(c)` is the cell after `c` and `prev(next(c)) == c`. The payload
 *    size is `next(c) - c - HEADER`: no size field is stored.
 * 2. Cell addresses are multiples of the granule (2 W = 8 bytes), and so are payloads, since the
 *    header is one granule. A payload is at least one granule: a free cell needs room for its two
 *    links. So the smallest cell, `minCell`, is 16 bytes. A build whose minAlign is 2 headers (16 on
 *    wasm32) keeps a coarser grid G = 2 header: every cell size is a multiple of G and every cell
 *    starts G - header past a multiple of G, so every payload is G-aligned (region starts are
 *    padded onto it; see `@alloc/free-list`).
 * 3. FREE (bit 0 of word 0) is set on free cells only. An allocated cell's word 0 is its `next`
 *    as is, so `free`, `resize` and `usableSize` read it without masking; the first-fit walk
 *    folds the tag into a constant it subtracts anyway.
 * 4. No two free cells are neighbours: `free` merges with both at once.
 * 5. The first cell of a region is its own `prev`: when it is freed it is not free yet, so it
 *    merges with nothing in front. Word 1 holds `prev XOR c`, so 0 means "itself": a region's
 *    first cell in fresh (zero) memory needs no store to say so. The end sentinel is a header
 *    whose word 0 is 0 (not free, and nothing follows it), so the cell in front of it merges
 *    with nothing behind. No bounds tests.
 * 6. Every free cell is on exactly one free list; no allocated cell is on any.
 */
import type { Codegen, Expr } from "./codegen.ts";

/** Bit 0 of word 0: the cell is free. */
export const CELL_FREE = 1;

/** Byte sizes of the cell layout for a pointer width. */
export interface CellSizes {
  /** Bytes in a word: 4 on wasm32, 8 on memory64. */
  readonly word: 4 | 8;
  /** Bytes in a header (two words): also the granule, the unit of every cell size. */
  readonly header: number;
  /** The smallest cell: a header and one granule of payload (room for two free-list links). */
  readonly minCell: number;
  /**
   * Requests of this many bytes or more are refused (and size 0, see `refused`): no
   * larger block can ever fit in wasm32 memory, and refusing them up front keeps every rounding
   * and page count free of overflow. 2^32 - 128 KiB on wasm32.
   */
  readonly maxRequest: number;
}

/** The layout's sizes for `word`-byte pointers. */
export function cellSizes(word: 4 | 8): CellSizes {
  const header = 2 * word;
  return {
    word,
    header,
    minCell: 2 * header,
    maxRequest: word === 4 ? 2 ** 32 - 2 ** 17 : 2 ** 52,
  };
}

/**
 * Expression builders for the cell layout, bound to a code generator. `c` is a cell address,
 * `p` a payload address; every argument must be side-effect free when a builder reads it twice
 * (none does unless its doc says so).
 */
export interface CellLayout extends CellSizes {
  /** The cell whose payload is `p`. */
  cellOf(p: Expr): Expr;
  /** The payload of cell `c`. */
  payloadOf(c: Expr): Expr;
  /** Word 0 of `c`: its `next` when it is allocated, `next | FREE` when it is free. */
  word0(c: Expr): Expr;
  /** `next` of a cell known to be free (clears the tag). */
  nextOfFree(c: Expr): Expr;
  /** An i32 condition: cell `c` is free. */
  isFree(c: Expr): Expr;
  /** Marks `c` free, ending at `next`. */
  setFree(c: Expr, next: Expr): Expr;
  /** Marks `c` allocated, ending at `next`. */
  setUsed(c: Expr, next: Expr): Expr;
  /** The previous cell (word 1 XOR c). Reads `c` twice: pass a side-effect-free `c` and its copy. */
  prevOf(c: Expr, cCopy: Expr): Expr;
  /** Stores `prev` as the previous cell of `c` (XOR c). Reads `c` twice, like {@link prevOf}. */
  setPrev(c: Expr, cCopy: Expr, prev: Expr): Expr;
  /** Free-list links of a free cell, stored in its payload. */
  nextFreeOf(c: Expr): Expr;
  setNextFree(c: Expr, next: Expr): Expr;
  prevFreeOf(c: Expr): Expr;
  setPrevFree(c: Expr, prev: Expr): Expr;
  /**
   * An i32 condition: free cell `c` spans `n` bytes or more, header included. Reads `c` twice.
   * Word 0 is the cell's end with the FREE tag (1), so that is `n < word0 - c`.
   */
  freeHolds(c: Expr, cCopy: Expr, n: Expr): Expr;
  /** The bytes of a cell for a request of `size` bytes: the size rounded up to the granule, plus the header. */
  cellBytes(size: Expr): Expr;
  /**
   * An i32 condition on `n = cellBytes(size)`: the request is impossible. `n - 2 * header` is
   * `>= maxRequest` exactly for sizes over maxRequest, for size 0 (n = header) and for the sizes
   * whose n wraps (n = 0), so one comparison refuses them all.
   */
  refused(n: Expr): Expr;
}

/** The cell layout's expression builders for `cg`'s pointer width. */
export function cellLayout(cg: Codegen): CellLayout {
  const sizes = cellSizes(cg.ptrBytes);
  const { word, header } = sizes;
  const tag = () => cg.size(CELL_FREE);
  return {
    ...sizes,
    cellOf: (p) => cg.sub(p, cg.size(header)),
    payloadOf: (c) => cg.add(c, cg.size(header)),
    word0: (c) => cg.load(c),
    nextOfFree: (c) => cg.sub(cg.load(c), tag()),
    isFree: (c) => cg.toI32(cg.and(cg.load(c), tag())),
    setFree: (c, next) => cg.store(c, cg.or(next, tag())),
    setUsed: (c, next) => cg.store(c, next),
    prevOf: (c, cCopy) => cg.xor(cg.load(c, word), cCopy),
    setPrev: (c, cCopy, prev) => cg.store(c, cg.xor(prev, cCopy), word),
    nextFreeOf: (c) => cg.load(c, header),
    setNextFree: (c, next) => cg.store(c, next, header),
    prevFreeOf: (c) => cg.load(c, header + word),
    setPrevFree: (c, prev) => cg.store(c, prev, header + word),
    freeHolds: (c, cCopy, n) => cg.ltU(n, cg.sub(cg.load(c), cCopy)),
    cellBytes: (size) => cg.alignUpConst(cg.add(size, cg.size(header)), header),
    refused: (n) => cg.geU(cg.sub(n, cg.size(2 * header)), cg.size(sizes.maxRequest)),
  };
}

// ---------------------------------------------------------------------------------------------
// Reading cells from JS (tests, debugging tools)
// ---------------------------------------------------------------------------------------------

/** One cell as read from memory by {@link walkCells}. */
export interface CellView {
  readonly cell: number;
  /** The following cell (the end sentinel's address for the last cell). */
  readonly next: number;
  readonly prev: number;
  readonly free: boolean;
  /** Payload bytes: `next - cell - header`. */
  readonly payload: number;
}

/**
 * Walks the region whose first cell is `first` (wasm32 layout) and checks invariants 1–5 on the
 * way: every cell inside memory and granule aligned, `prev(next(c)) == c`, payloads of at least a
 * granule, no two free neighbours, an end sentinel at the end. Returns the cells before the end
 * sentinel; throws an Error naming the first broken invariant.
 */
export function walkCells(memory: Uint8Array, first: number): CellView[] {
  const { header, word } = cellSizes(4);
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const read = (addr: number) => {
    if (addr < 0 || addr + word > memory.byteLength) throw new Error(`cell word at ${addr} is outside memory`);
    return view.getUint32(addr, true);
  };
  const fail = (message: string): never => {
    throw new Error(`region at ${first}: ${message}`);
  };
  const cells: CellView[] = [];
  let prev = first;
  let c = first;
  let prevFree = false;
  for (;;) {
    if (c % header !== 0) fail(`cell ${c} is not ${header}-aligned`);
    const raw = read(c);
    const cPrev = (read(c + word) ^ c) >>> 0;
    if (cPrev !== prev) fail(`cell ${c}: prev is ${cPrev}, expected ${prev}`);
    if (raw === 0) return cells; // the end sentinel
    const free = (raw & CELL_FREE) !== 0;
    const next = raw & ~CELL_FREE;
    const payload = next - c - header;
    if (next <= c || payload < header) fail(`cell ${c}: next ${next} leaves a payload of ${payload}`);
    if (free && prevFree) fail(`cells ${prev} and ${c} are both free: they should have been merged`);
    cells.push({ cell: c, next, prev, free, payload });
    prevFree = free;
    prev = c;
    c = next;
  }
}
