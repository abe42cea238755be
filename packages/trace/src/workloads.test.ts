import { describe, expect, test } from "vitest";
import { generateWorkload, WORKLOADS, type Trace } from "./index.ts";

/** Replays a trace in JS: which allocations are live, and how many bytes at most. */
function simulate(trace: Trace): { peakLive: number; reallocs: number; maxSize: number } {
  const live = new Map<number, number>();
  let bytes = 0, peakLive = 0, reallocs = 0, maxSize = 0;
  for (const op of trace.ops) {
    if (op.op === "free") {
      bytes -= live.get(op.index) ?? 0;
      live.delete(op.index);
      continue;
    }
    if (op.op === "realloc") reallocs++;
    bytes += op.size - (live.get(op.index) ?? 0);
    live.set(op.index, op.size);
    peakLive = Math.max(peakLive, bytes);
    maxSize = Math.max(maxSize, op.size);
  }
  return { peakLive, reallocs, maxSize };
}

describe("workloads", () => {
  test.each(WORKLOADS.map((w) => [w.name]))("%s: the same seed gives the same trace, another seed another", (name) => {
    const a = generateWorkload(name, { seed: 7, ops: 3_000 });
    expect(generateWorkload(name, { seed: 7, ops: 3_000 })).toEqual(a);
    expect(generateWorkload(name, { seed: 8, ops: 3_000 }).ops).not.toEqual(a.ops);
    expect(a.name).toBe(`${name}(seed 7)`);
    expect(a.ops.length).toBeGreaterThanOrEqual(3_000);
    expect(a.ops.length).toBeLessThan(3_000 + 2_100);
  });

  test("each workload has the shape its description promises", () => {
    const sim = (name: Parameters<typeof generateWorkload>[0]) => simulate(generateWorkload(name, { ops: 20_000 }));
    expect(sim("small-churn").maxSize).toBeLessThanOrEqual(256);
    const growth = sim("realloc-growth");
    expect(growth.reallocs).toBeGreaterThan(100);
    expect(growth.maxSize).toBe(256 * 1024);
    expect(sim("large-blocks").maxSize).toBeGreaterThan(256 * 1024);
    expect(sim("long-lived").peakLive).toBeGreaterThan(100_000);
  });

  test("an unknown workload or a bad length is refused", () => {
    expect(() => generateWorkload("nope" as never)).toThrow(/unknown workload "nope" \(known: small-churn/);
    expect(() => generateWorkload("small-churn", { ops: 0 })).toThrow(/positive integer/);
  });
});
