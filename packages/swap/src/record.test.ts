import { buildAllocator } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { parseTrace, replay } from "@alloc/trace";
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { recordTrace, runWasi, swapAllocator } from "./index.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}.wasm`, import.meta.url)));

describe("record: a program's allocator calls as a trace that alloc replay replays", () => {
  test.each(["strings", "realloc_growth", "calloc", "memalign"])("%s.wasm", async (name) => {
    const { binary, report } = swapAllocator(fixture(name), { record: true, baseline: false });
    expect(WebAssembly.Module.imports(new WebAssembly.Module(binary as BufferSource)).filter((i) => i.module === "alloc_record").map((i) => i.name).sort()).toEqual(
      ["alloc", "free", "realloc"].filter((f) => f !== "realloc" || report.found.some((e) => e.role === "realloc")),
    );
    const recorded = await recordTrace(binary);
    // The program runs as it does with its own allocator.
    const original = await runWasi(fixture(name));
    expect(recorded.run.exitCode).toBe(0);
    expect(Buffer.from(recorded.run.stdout).equals(Buffer.from(original.stdout))).toBe(true);
    const trace = parseTrace(recorded.text, `${name}.trace`);
    expect(trace.ops.length).toBe(recorded.operations);
    expect(recorded.counts.alloc).toBeGreaterThan(5);
    expect(recorded.operations).toBeGreaterThan(100);
    const heap = await buildAllocator({ strategy: freeList(), exports: ["malloc", "free", "realloc"] }).instantiate();
    const result = replay(heap, trace);
    expect(result.operations).toBe(recorded.operations);
  });

  test("the counts are the program's: realloc_growth's 20,000 array reallocs, 6 shrinks and its builder's growth", async () => {
    const { binary } = swapAllocator(fixture("realloc_growth"), { record: true, baseline: false });
    const { counts } = await recordTrace(binary);
    expect(counts.realloc).toBeGreaterThanOrEqual(20_006);
    expect(counts.realloc).toBeLessThan(20_100);
    // strings.c frees every record it allocates: the frees follow the allocations.
    const strings = await recordTrace(swapAllocator(fixture("strings"), { record: true, baseline: false }).binary);
    expect(strings.counts.alloc - strings.counts.free).toBeLessThanOrEqual(2);
  });

  test("Rust: __rust_* calls are recorded too", async () => {
    const { binary } = swapAllocator(fixture("rust_churn"), { record: true, baseline: false });
    const { TraceRecorder } = await import("./index.ts");
    const recorder = new TraceRecorder();
    const instance = await WebAssembly.instantiate(new WebAssembly.Module(binary as BufferSource), recorder.imports());
    (instance.exports.run as (n: number) => number)(500);
    expect(recorder.counts.alloc).toBeGreaterThan(500);
    expect(recorder.counts.realloc).toBeGreaterThan(0);
    expect(parseTrace(recorder.text).ops.length).toBe(recorder.counts.alloc + recorder.counts.free + recorder.counts.realloc);
  });
});
