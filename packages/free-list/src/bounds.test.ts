/**
 * Bounded work and memory that follows live bytes, on the shapes that broke earlier designs:
 * each test builds its pattern from a rule (not from a recorded trace) and checks a bound that
 * does not depend on the pattern's length.
 */
import { buildAllocator, growBackend, PAGE_SIZE } from "@alloc/core";
import { staticBackend } from "@alloc/page-backend-static";
import { measureWork, TraceBuilder, type Trace } from "@alloc/trace";
import { describe, expect, test } from "vitest";
import { freeList } from "./index.ts";

const EXPORTS = ["malloc", "free", "realloc"];
const bins = () => buildAllocator({ strategy: freeList(), exports: EXPORTS });

/** n free cells of 24 bytes kept apart by live ones, then requests none of them can hold. */
function manySmallHoles(holes: number): Trace {
  const b = new TraceBuilder();
  const small: number[] = [];
  for (let i = 0; i < 2 * holes; i++) small.push(b.alloc(24));
  for (let i = 0; i < small.length; i += 2) b.free(small[i]!);
  for (let i = 0; i < 200; i++) b.free(b.alloc(100 + (i % 7) * 8));
  return b.build(`${holes} holes`);
}

/** malloc(24 KiB * k + 1), a small block kept, the large one freed, for k = 1..steps. */
function staircase(steps: number): Trace {
  const b = new TraceBuilder();
  for (let k = 1; k <= steps; k++) {
    const big = b.alloc(24 * 1024 * k + 1);
    b.alloc(16);
    b.free(big);
  }
  return b.build(`staircase ${steps}`);
}

/**
 * Short-lived small objects; one in five grows by realloc doubling 12 times before it dies.
 * Live bytes stay level however long it runs.
 */
function reallocDoubling(steps: number, seed = 1): Trace {
  const b = new TraceBuilder();
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
  const live: { id: number; dies: number; size: number; grows: number }[] = [];
  for (let step = 0; step < steps; step++) {
    const size = 16 + Math.floor(rand() * 64);
    live.push({ id: b.alloc(size), dies: step + 200 + Math.floor(rand() * 800), size, grows: rand() < 0.2 ? 12 : 0 });
    for (let i = live.length - 1; i >= 0; i--) {
      const o = live[i]!;
      if (o.dies <= step) {
        b.free(o.id);
        live.splice(i, 1);
      } else if (o.grows > 0 && rand() < 0.05) {
        o.size *= 2;
        o.grows--;
        b.realloc(o.id, o.size);
      }
    }
  }
  return b.build(`realloc doubling ${steps}`);
}

describe("free-list (bins): bounded work", () => {
  test("the worst malloc does not grow with the number of free cells (a first-fit walk does)", () => {
    const worst = (fit: "first" | "bins", holes: number) =>
      measureWork(buildAllocator({ strategy: freeList({ fit }), exports: EXPORTS }).binary, manySmallHoles(holes)).malloc.worst;
    const [small, large] = [worst("bins", 100), worst("bins", 2000)];
    expect(large).toBe(small);
    expect(large).toBeLessThanOrEqual(20);
    // The same pattern makes first fit walk every hole: the bound above means something.
    expect(worst("first", 2000)).toBeGreaterThan(1000);
  });

  test("the worst operation of a long random history is that of a short one", () => {
    const history = (ops: number) => {
      const b = new TraceBuilder();
      let s = 7;
      const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
      const live: number[] = [];
      while (b.length < ops) {
        if (live.length < 50 || rand() < 0.5) live.push(b.alloc(rand() < 0.9 ? 1 + Math.floor(rand() * 300) : 1 + Math.floor(rand() * 70000)));
        else b.free(live.splice(Math.floor(rand() * live.length), 1)[0]!);
      }
      return b.build(`random ${ops}`);
    };
    const binary = bins().binary;
    const [short, long] = [measureWork(binary, history(5_000)), measureWork(binary, history(40_000))];
    for (const kind of ["malloc", "free"] as const) {
      expect(long[kind].worst, kind).toBeLessThanOrEqual(Math.max(short[kind].worst, 20));
    }
  });
});

describe("free-list (bins): memory follows live bytes", () => {
  test("a staircase of growing blocks separated by kept small ones reuses the freed space", () => {
    for (const steps of [50, 200]) {
      const r = measureWork(bins().binary, staircase(steps));
      // The largest block is live at the peak; the small ones go into old holes, so the large
      // ones merge with the free tail instead of piling up.
      expect(r.peakMemoryBytes, `${steps} steps`).toBeLessThanOrEqual(1.25 * r.peakLiveBytes + 4 * PAGE_SIZE);
    }
  });

  test("realloc doubling among short-lived objects: memory levels off", () => {
    const [short, long] = [reallocDoubling(15_000), reallocDoubling(60_000)].map((t) => measureWork(bins().binary, t));
    expect(long!.peakMemoryBytes).toBeLessThanOrEqual(1.1 * short!.peakMemoryBytes + 4 * PAGE_SIZE);
    expect(long!.peakMemoryBytes).toBeLessThanOrEqual(2 * long!.peakLiveBytes + 4 * PAGE_SIZE);
  });
});

describe("free-list: refills ask only for what the free tail lacks", () => {
  for (const fit of ["bins", "first"] as const) {
    test(`${fit}: a static region of 4 pages serves 100,000 then 150,000 bytes`, async () => {
      const a = await buildAllocator({ strategy: freeList({ fit }), backend: staticBackend({ start: PAGE_SIZE, size: 4 * PAGE_SIZE }) }).instantiate();
      expect(a.malloc(100_000)).not.toBe(0);
      expect(a.malloc(150_000)).not.toBe(0);
    });

    test(`${fit}: a grow backend at its page limit serves a larger block after a large one is freed`, async () => {
      for (const exclusive of [true, false]) {
        const a = await buildAllocator({ strategy: freeList({ fit }), backend: growBackend({ maximumPages: 64, exclusive }) }).instantiate();
        const p = a.malloc(2 * 1024 * 1024);
        expect(p).not.toBe(0);
        a.free(p);
        // 3 MiB more would pass the limit; what the free tail lacks does not.
        expect(a.malloc(3 * 1024 * 1024), `exclusive ${exclusive}`).not.toBe(0);
      }
    });
  }
});
