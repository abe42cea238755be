import binaryen from "binaryen";
import { describe, expect, test } from "vitest";
import { CELL_FREE, cellLayout, cellSizes, walkCells } from "./cell.ts";
import { Codegen, type Expr } from "./codegen.ts";

describe("cell sizes", () => {
  test("a header is two words and the granule; the smallest cell is a header and a granule", () => {
    expect(cellSizes(4)).toMatchObject({ word: 4, header: 8, minCell: 16 });
    expect(cellSizes(8)).toMatchObject({ word: 8, header: 16, minCell: 32 });
  });

  test("wasm32: the largest request plus 64 KiB of alignment and three headers stays below 2^32", () => {
    // Why maxRequest is what it is: strategies add an alignment and headers to a request, and
    // round up to pages, without overflow checks of their own.
    const { maxRequest, header } = cellSizes(4);
    expect(maxRequest + 65536 + 3 * header).toBeLessThan(2 ** 32);
    expect(maxRequest % header).toBe(0);
  });

  test("the FREE tag fits in the low bits every cell address leaves clear", () => {
    expect(CELL_FREE).toBeLessThan(cellSizes(4).header);
  });
});

/**
 * The layout's emitted helpers, each exported as a function over a 1-page memory:
 * `(a, b, c) -> result`, pointer width i32.
 */
async function helpers() {
  const module = new binaryen.Module();
  try {
    module.setMemory(1, 1, "memory");
    const cg = new Codegen(module, { prefix: "~test" });
    const L = cellLayout(cg);
    const fns: Record<string, (x: Expr, y: Expr, z: Expr) => Expr | Expr[]> = {
      cellBytes: (size) => L.cellBytes(size),
      refused: (n) => L.refused(n),
      isFree: (c) => L.isFree(c),
      word0: (c) => L.word0(c),
      nextOfFree: (c) => L.nextOfFree(c),
      setFree: (c, next) => [L.setFree(c, next), cg.size(0)],
      setUsed: (c, next) => [L.setUsed(c, next), cg.size(0)],
      prevOf: (c, cCopy) => L.prevOf(c, cCopy),
      setPrev: (c, cCopy, prev) => [L.setPrev(c, cCopy, prev), cg.size(0)],
      setNextFree: (c, next) => [L.setNextFree(c, next), cg.size(0)],
      nextFreeOf: (c) => L.nextFreeOf(c),
      setPrevFree: (c, prev) => [L.setPrevFree(c, prev), cg.size(0)],
      prevFreeOf: (c) => L.prevFreeOf(c),
      freeHolds: (c, cCopy, n) => L.freeHolds(c, cCopy, n),
      cellOf: (p) => L.cellOf(p),
      payloadOf: (c) => L.payloadOf(c),
    };
    for (const [name, body] of Object.entries(fns)) {
      cg.function(cg.name(name), ["a", "b", "c"], "usize", (f) => {
        // Each argument is read through its own local.get: side-effect free, as the builders need.
        const [a, b, c] = ["a", "b", "c"].map((p) => () => f.param(p).get()) as [() => Expr, () => Expr, () => Expr];
        return body(a(), b(), c());
      });
      module.addFunctionExport(cg.name(name), name);
    }
    expect(module.validate()).toBe(1);
    const { instance } = await WebAssembly.instantiate(module.emitBinary() as BufferSource);
    const exports = instance.exports as Record<string, (a?: number, b?: number, c?: number) => number> & {
      memory: WebAssembly.Memory;
    };
    const call = (name: string, a = 0, b = 0, c = 0) => exports[name]!(a, b, c) >>> 0;
    return { call, memory: exports.memory };
  } finally {
    module.dispose();
  }
}

describe("the emitted cell helpers, run in Wasm", () => {
  test("cellBytes rounds to the granule and adds the header; size 0 and sizes past maxRequest are refused", async () => {
    const { call } = await helpers();
    const { maxRequest, header } = cellSizes(4);
    const refused = (size: number) => call("refused", call("cellBytes", size));
    expect([1, 7, 8, 9, 16, 17].map((n) => call("cellBytes", n) - header)).toEqual([8, 8, 8, 16, 16, 24]);
    expect(refused(maxRequest)).toBe(0); // the largest accepted
    for (const size of [0, maxRequest + 1, maxRequest + header, 2 ** 32 - 8, 2 ** 32 - 1]) {
      expect(refused(size), `size ${size}`).toBe(1);
    }
  });

  test("FREE is bit 0 of word 0: setFree and setUsed say so, and nextOfFree clears it", async () => {
    const { call } = await helpers();
    call("setFree", 64, 128);
    expect([call("isFree", 64), call("word0", 64), call("nextOfFree", 64)]).toEqual([1, 128 | CELL_FREE, 128]);
    call("setUsed", 64, 128);
    expect([call("isFree", 64), call("word0", 64)]).toEqual([0, 128]);
  });

  test("prev is stored XOR the cell: fresh (zero) memory reads as the cell being its own prev", async () => {
    const { call } = await helpers();
    expect(call("prevOf", 256, 256)).toBe(256);
    call("setPrev", 256, 256, 200);
    expect(call("prevOf", 256, 256)).toBe(200);
    expect(call("prevOf", 512, 512)).toBe(512);
  });

  test("free-list links live in the payload, after the header", async () => {
    const { call, memory } = await helpers();
    call("setNextFree", 64, 1000);
    call("setPrevFree", 64, 2000);
    expect([call("nextFreeOf", 64), call("prevFreeOf", 64)]).toEqual([1000, 2000]);
    const words = new Uint32Array(memory.buffer, 64, 4);
    expect([words[2], words[3]]).toEqual([1000, 2000]); // header (2 words), then the links
    expect([call("payloadOf", 64), call("cellOf", 72)]).toEqual([72, 64]);
  });

  test("freeHolds: a free cell holds a cell of n bytes exactly when it spans n or more", async () => {
    const { call } = await helpers();
    call("setFree", 64, 64 + 8 + 40); // payload 40: 48 bytes with the header
    expect(call("freeHolds", 64, 64, 48)).toBe(1);
    expect(call("freeHolds", 64, 64, 49)).toBe(0);
    expect(call("freeHolds", 64, 64, 16)).toBe(1);
  });
});

describe("walkCells", () => {
  /** A region in a fresh memory: cells given as [address, next, free], then an end sentinel. */
  function region(cells: [number, number, boolean][], end: number) {
    const bytes = new Uint8Array(4096);
    const view = new DataView(bytes.buffer);
    let prev = cells[0]![0];
    for (const [c, next, free] of cells) {
      view.setUint32(c, next | (free ? CELL_FREE : 0), true);
      view.setUint32(c + 4, prev ^ c, true);
      prev = c;
    }
    view.setUint32(end, 0, true);
    view.setUint32(end + 4, prev ^ end, true);
    return { bytes, view };
  }

  test("reads a valid region: cells, payloads, free flags", () => {
    const { bytes } = region([[8, 32, false], [32, 64, true], [64, 200, false]], 200);
    expect(walkCells(bytes, 8)).toEqual([
      { cell: 8, next: 32, prev: 8, free: false, payload: 16 },
      { cell: 32, next: 64, prev: 8, free: true, payload: 24 },
      { cell: 64, next: 200, prev: 32, free: false, payload: 128 },
    ]);
  });

  test("catches a wrong prev, free neighbours, a payload under a granule, misalignment, a cell outside memory", () => {
    const wrongPrev = region([[8, 32, false], [32, 64, false]], 64);
    wrongPrev.view.setUint32(32 + 4, 16 ^ 32, true);
    expect(() => walkCells(wrongPrev.bytes, 8)).toThrow(/cell 32: prev is 16, expected 8/);
    expect(() => walkCells(region([[8, 32, true], [32, 64, true]], 64).bytes, 8)).toThrow(/both free/);
    expect(() => walkCells(region([[8, 16, false], [16, 64, false]], 64).bytes, 8)).toThrow(/payload of 0/);
    expect(() => walkCells(region([[8, 36, false]], 36).bytes, 8)).toThrow(/36 is not 8-aligned/);
    expect(() => walkCells(region([[8, 8192, false]], 64).bytes, 8)).toThrow(/outside memory/);
  });
});
