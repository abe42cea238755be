/**
 * The grow backend under the real strategies (here, where every strategy package is a
 * dependency): memory that the host grows too, and the growth policy.
 */
import { buildAllocator, growBackend, PAGE_SIZE, type GrowBackendOptions } from "@alloc/core";
import { describe, expect, test } from "vitest";
import { STRATEGIES } from "./registry.ts";

const STACKS = [["bump"], ["free-list"], ["size-classes", "free-list"]];

async function heap(stack: readonly string[], backend?: GrowBackendOptions) {
  return buildAllocator({
    strategy: stack.map((name) => STRATEGIES[name]!.create()),
    exports: ["malloc", "free"],
    ...(backend && { backend: growBackend(backend) }),
  }).instantiate();
}

describe.each(STACKS.map((s) => s.join(" > ")))("%s over the default grow backend", (name) => {
  const stack = name.split(" > ");

  test("the host grows the exported memory and writes a page: no block lands in it, nothing traps", async () => {
    const a = await heap(stack);
    const live: [number, number][] = [];
    for (let i = 0; i < 5; i++) live.push([a.malloc(3000), 3000]);
    const hostPage = a.memory.grow(1) * PAGE_SIZE;
    new Uint8Array(a.memory.buffer, hostPage, PAGE_SIZE).fill(0xab);
    for (let round = 0; round < 60; round++) {
      for (const size of [3000, 16, 200, 1000, 40_000]) {
        const p = a.malloc(size);
        expect(p).not.toBe(0);
        // [p, p + size) is not in [hostPage, hostPage + 64 KiB).
        expect(p + size <= hostPage || p >= hostPage + PAGE_SIZE).toBe(true);
        new Uint8Array(a.memory.buffer, p, size).fill(0x11);
        live.push([p, size]);
      }
      // Free some, so that lists are searched, split and merged around the host's page.
      if (round % 3 === 2) for (const [p] of live.splice(0, 4)) a.free(p);
    }
    expect(new Uint8Array(a.memory.buffer, hostPage, PAGE_SIZE).every((b) => b === 0xab)).toBe(true);
  });

  test("growth: many small blocks take few memory.grow calls; exact takes many more", async () => {
    const count = async (backend: GrowBackendOptions) => {
      const a = await heap(stack, backend);
      let grows = 0, refused = 0, bytes = a.memoryBytes();
      for (let i = 0; i < 20_000; i++) {
        if (a.malloc(1000) === 0) refused++;
        if (a.memoryBytes() !== bytes) grows++, (bytes = a.memoryBytes());
      }
      expect(refused).toBe(0);
      return { grows, pages: bytes / PAGE_SIZE };
    };
    const policy = await count({});
    const exact = await count({ growth: "exact" });
    const exclusive = await count({ exclusive: true });
    // 20,000 KB is about 310 pages: exact grows page by page (or by a chunk), the default by a
    // sixteenth (16 -> 310 pages by 17/16 is about 50 steps, plus the first 16 pages).
    expect(policy.grows).toBeLessThan(80);
    expect(exclusive.grows).toBeLessThan(80);
    expect(exact.grows).toBeGreaterThan(2 * policy.grows);
    // The memory held beyond what exact growth needs is at most a sixteenth, plus a step.
    expect(policy.pages).toBeLessThanOrEqual(Math.ceil(exact.pages * 1.125) + 1);
  });

  test("growth is capped by the maximum, which is never passed; refusal returns 0 and the heap stays usable", async () => {
    for (const exclusive of [false, true]) {
      const a = await heap(stack, { maximumPages: 40, exclusive });
      const blocks: number[] = [];
      for (let p = a.malloc(5000); p !== 0; p = a.malloc(5000)) {
        blocks.push(p);
        expect(a.memoryBytes()).toBeLessThanOrEqual(40 * PAGE_SIZE);
      }
      expect(blocks.length).toBeGreaterThan(400);
      expect(a.memoryBytes()).toBeLessThanOrEqual(40 * PAGE_SIZE);
      a.free(blocks.pop()!);
      expect(a.malloc(5000)).not.toBe(0);
    }
  });
});

test("exclusive stays an opt-in that is smaller: the default composition", () => {
  const size = (backend: GrowBackendOptions) =>
    buildAllocator({ strategy: [STRATEGIES["size-classes"]!.create(), STRATEGIES["free-list"]!.create()], backend: growBackend(backend) }).size;
  expect(size({ exclusive: true })).toBeLessThan(size({}));
  expect(size({ exclusive: true, growth: "exact" })).toBeLessThan(size({ growth: "exact" }));
});
