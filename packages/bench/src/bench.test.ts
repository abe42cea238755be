import { generateWorkload, WORKLOADS } from "@alloc/trace";
import { describe, expect, test } from "vitest";
import { chart } from "./chart.ts";
import { contenders } from "./contenders.ts";
import { measure } from "./measure.ts";
import { buildReport, formatReport } from "./report.ts";
import type { Contender } from "./contenders.ts";
import type { Cell } from "./measure.ts";
import { growthCost } from "./growth-cost.ts";
import { geomean, spread } from "./stats.ts";
import { benchWorkloads } from "./workloads.ts";

describe("stats", () => {
  test("spread: median, range and interquartile range", () => {
    const s = spread([5, 1, 3, 2, 4]);
    expect(s).toMatchObject({ median: 3, min: 1, max: 5 });
    expect(s.iqr).toBeCloseTo((4 - 2) / 3);
    expect(spread([7, 9]).median).toBe(8);
    expect(() => spread([])).toThrow(/no samples/);
  });

  test("geomean", () => {
    expect(geomean([2, 8])).toBeCloseTo(4);
    expect(geomean([])).toBeNaN();
  });
});

describe("a run with our own allocators only (the suite never needs the peers)", () => {
  test("measures, reports, charts; an unknown allocator is skipped with the reason", () => {
    const { contenders: list, skipped } = contenders(["bump", "no-such-allocator", "fail", "page"]);
    expect(list.map((c) => c.name)).toEqual(["bump"]);
    expect(skipped).toContainEqual({ name: "no-such-allocator", reason: "unknown allocator" });
    for (const name of ["fail", "page"]) expect(skipped).toContainEqual({ name, reason: expect.stringMatching(/SIZES.md only/) });
    const workloads = [generateWorkload("small-churn", { ops: 500 }), generateWorkload("long-lived", { ops: 2_500 })];
    const steps: string[] = [];
    const cells = measure(list, workloads, { rounds: 2, sampleOps: 1_000, maxFresh: 2, budgetMs: 1_000, progress: (_d, _t, what) => steps.push(what) });
    expect(steps.at(-1)).toBe("done");
    expect(cells).toHaveLength(2);
    for (const cell of cells) {
      expect(cell.error).toBeUndefined();
      expect(cell.fresh!.samples).toHaveLength(2);
      expect(cell.reused!.samples).toHaveLength(2);
      expect(cell.peakMemoryBytes).toBeGreaterThanOrEqual(cell.peakLiveBytes);
      // bump: a malloc is one straight-line call or two (a helper to grow), a free one.
      expect(cell.work!.malloc.count).toBeGreaterThan(200);
      expect(cell.work!.malloc.worst).toBeGreaterThanOrEqual(1);
      expect(cell.work!.malloc.worst).toBeLessThan(10);
    }
    // small-churn's first 500 ops only allocate; long-lived frees its hot set.
    expect(cells.map((c) => c.work!.free.count)).toEqual([0, expect.any(Number)]);
    expect(cells[1]!.work!.free.mean).toBeGreaterThanOrEqual(1);
    const report = buildReport({ command: "test", mode: "quick", config: { rounds: 2, sampleOps: 1_000, maxFresh: 2 }, contenders: list, skipped, workloads, cells });
    expect(report.summary[0]!.excluded).toEqual([]);
    expect(report.targets.find((t) => t.target.startsWith("bump"))!.met).toBeNull();
    const text = formatReport(report);
    expect(text).toMatch(/small-churn\(seed 1\) \(\d+\)/);
    expect(text).toMatch(/n\/a +default composition at or below dlmalloc/);
    expect(text).toMatch(/workload: malloc work mean\/worst +bump\n[- ]+\nsmall-churn\(seed 1\) +\d+\.\d\/\d+\n/);
    expect(report.summary[0]!.workWorst).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/n\/a +default composition's worst call at most 128 work on every workload/);
    const svg = chart(report);
    expect(svg).toMatch(/^<svg [^>]*viewBox="0 0 \d+ \d+"/);
    expect(svg).toContain("long-lived(seed 1)");
    expect(svg.match(/<rect /g)!.length).toBeGreaterThanOrEqual(1 + 1 + 3);
  });

  test("an allocator that fails verification is reported and not timed", () => {
    const { contenders: list } = contenders(["bump"]);
    // A trace bump cannot serve: far more than 4 GiB live.
    const trace = { name: "huge", ops: Array.from({ length: 3 }, (_, index) => ({ op: "alloc" as const, index, size: 2 ** 32 - 1 })), allocations: 3 };
    const [cell] = measure(list, [trace], { rounds: 1, sampleOps: 10, maxFresh: 1, budgetMs: 100 });
    expect(cell!.failedAllocations).toBe(3);
    const report = buildReport({ command: "test", mode: "quick", config: { rounds: 1, sampleOps: 10, maxFresh: 1 }, contenders: list, skipped: [], workloads: [trace], cells: [cell!] });
    expect(report.summary[0]!.excluded).toEqual(["huge"]);
    expect(formatReport(report)).toMatch(/bump on huge: 3 failed allocations/);
  });
});

describe("issue 10's targets", () => {
  const work = (worst: number) => ({ count: 1, mean: worst, worst });
  const cell = (contender: string, peakMemoryBytes: number, worst: number): Cell => ({
    contender, workload: "w", peakMemoryBytes, peakLiveBytes: 1 << 20, driverBytes: 0, failedAllocations: 0, timedFailures: 0,
    fresh: { median: 1, min: 1, max: 1, iqr: 0, samples: [1] }, reused: { median: 1, min: 1, max: 1, iqr: 0, samples: [1] },
    work: { malloc: work(worst), free: work(1), realloc: work(0), all: work(worst) },
  });
  const contender = (name: string, isDefault = false) => ({ name, kind: "ours", description: "", bytes: 1, builtWith: "", ...(isDefault && { isDefault }) }) as unknown as Contender;
  const targets = (ours: Cell) =>
    buildReport({ command: "t", mode: "quick", config: { rounds: 1, sampleOps: 1, maxFresh: 1 }, contenders: [contender("d", true), contender("dlmalloc")], skipped: [], workloads: [{ name: "w", ops: [], allocations: 0 }], cells: [ours, cell("dlmalloc", 4 << 20, 10)] }).targets.filter((t) => t.target.endsWith("(issue 10)"));

  test("the worst call and the memory bound are checked on every workload", () => {
    expect(targets({ ...cell("d", 1 << 20, 20) }).map((t) => t.met)).toEqual([true, true]);
    const [work, memory] = targets({ ...cell("d", 5 << 20, 129) });
    expect(work).toMatchObject({ met: false, detail: "over on: w 129" });
    // 1.5 × 1 MiB + 256 KiB is less than dlmalloc's 4 MiB: the limit is 1.2 × 4 MiB.
    expect(memory).toMatchObject({ met: false, detail: "over on: w 5120 KiB > 4915" });
    expect(targets({ ...cell("d", (4.7 * 2 ** 20) | 0, 20) })[1]).toMatchObject({ met: true });
  });

  test("dlmalloc needs more only when its heap, less its initial memory and the driver's blocks, is over 1.5 × peak live", () => {
    const withInitial = (initial: number, driver: number) =>
      buildReport({
        command: "t", mode: "quick", config: { rounds: 1, sampleOps: 1, maxFresh: 1 },
        contenders: [contender("d", true), { ...contender("dlmalloc"), initialMemoryBytes: initial }], skipped: [],
        workloads: [{ name: "w", ops: [], allocations: 0 }],
        cells: [cell("d", 3 << 20, 10), { ...cell("dlmalloc", 4 << 20, 10), driverBytes: driver }],
      }).targets.find((t) => t.target.startsWith("default composition's peak memory at most 1.5"))!;
    // dlmalloc's 4 MiB less 2 MiB it starts with: a 2 MiB heap, over 1.5 MiB: the limit is 1.2 × 2 MiB.
    expect(withInitial(2 << 20, 0)).toMatchObject({ met: false, detail: "over on: w 3072 KiB > 2458" });
    // Less 2.75 MiB: 1.25 MiB, not over 1.5 × 1 MiB: the limit is 1.5 × 1 MiB + 256 KiB.
    expect(withInitial(2.75 * 2 ** 20, 0)).toMatchObject({ met: false, detail: "over on: w 3072 KiB > 1792" });
    // Its heap of 2 MiB holds 0.75 MiB of the driver's blocks: 1.25 MiB of its own, the same.
    expect(withInitial(2 << 20, 0.75 * 2 ** 20)).toMatchObject({ met: false, detail: "over on: w 3072 KiB > 1792" });
  });

  test("issue 10's done-when is checked against each dlmalloc build that ran", () => {
    const slow = (c: Cell, ns: number): Cell => ({ ...c, reused: { ...c.reused!, median: ns }, fresh: { ...c.fresh!, median: ns } });
    const report = buildReport({
      command: "t", mode: "quick", config: { rounds: 1, sampleOps: 1, maxFresh: 1 },
      contenders: [contender("d", true), contender("dlmalloc")], skipped: [],
      workloads: [{ name: "w", ops: Array.from({ length: 1000 }, (_, index) => ({ op: "alloc" as const, index, size: 8 })), allocations: 1000 }],
      cells: [slow(cell("d", 5 << 20, 10), 1.3), cell("dlmalloc", 4 << 20, 10)],
    });
    const against = (who: string) => report.targets.filter((t) => t.target.startsWith(`issue 10, against ${who}`)).map((t) => [t.met, t.detail]);
    expect(against("wasi-libc's dlmalloc")).toEqual([
      [false, "1.3 vs 1.0 (1.30×)"],
      [false, "over on: w 1.30"],
      [false, "1.3 vs 1.0 (1.30×)"],
      [false, "over on: w 1.25"],
    ]);
    expect(against("Rust std's dlmalloc")).toEqual([[null, "not measured: the default composition or rust-std is not in this run"]]);
  });
});

describe("workloads", () => {
  test("every generated workload is in the corpus; a kind picks its workloads", () => {
    const all = benchWorkloads("quick");
    for (const w of WORKLOADS) expect(all.map((t) => t.name)).toContain(w.name);
    for (const name of ["staircase", "realloc-ping-pong"]) expect(all.find((t) => t.name === name)!.ops).toHaveLength(1_000);
    expect(all.find((t) => t.name === "compiler")!.ops).toHaveLength(10_000);
    const adversarial = benchWorkloads("quick", ["adversarial", "small-churn"]).map((t) => t.name);
    expect(adversarial).toEqual(["small-churn", ...WORKLOADS.filter((w) => w.kind === "adversarial").map((w) => w.name)]);
  });
});

describe("growth", () => {
  test("--workloads picks workloads by name or kind; an unknown name is refused", () => {
    const lines: string[] = [];
    growthCost((line) => lines.push(line), [1], ["bin-head-poison"]);
    const rows = lines.filter((l) => /^[a-z-]+ \(\d+\):/.test(l));
    expect(rows).toHaveLength(1);
    // Peak live KiB, then the default's, 1/8's and exact growth's peak memory: 64 KiB pages.
    const [live, ...memory] = rows[0]!.replace(/^bin-head-poison \(100000\): /, "").split(" | ").map(Number);
    const sizes = new Map<number, number>();
    let bytes = 0, peak = 0;
    for (const op of generateWorkload("bin-head-poison", { seed: 1, ops: 100_000 }).ops) {
      bytes += (op.op === "free" ? 0 : op.size) - (sizes.get(op.index) ?? 0);
      if (op.op === "free") sizes.delete(op.index);
      else sizes.set(op.index, op.size);
      peak = Math.max(peak, bytes);
    }
    expect(live).toBe(Math.round(peak / 1024));
    for (const m of memory.slice(0, 3)) expect(m % 64).toBe(0);
    expect(Math.min(...memory.slice(0, 3))).toBeGreaterThanOrEqual(live!);
    expect(() => growthCost(() => {}, [1], ["adversarial", "nope"])).toThrow(/unknown workloads nope \(known: shape, adversarial, small-churn/);
  });
});
