import { WORK_UNIT, type Trace } from "@alloc/trace";
import os from "node:os";
import type { Contender } from "./contenders.ts";
import type { Cell } from "./measure.ts";
import { geomean } from "./stats.ts";

/** Everything a run measured: what the JSON file holds, and what the table and chart show. */
export interface BenchReport {
  readonly generated: string;
  readonly command: string;
  readonly mode: "quick" | "full";
  readonly machine: { readonly node: string; readonly v8: string; readonly cpu: string; readonly cpus: number; readonly liftoff: boolean };
  readonly config: { readonly rounds: number; readonly sampleOps: number; readonly maxFresh: number };
  readonly contenders: readonly { name: string; kind: "ours" | "peer"; description: string; isDefault: boolean; bytes: number; builtWith: string }[];
  readonly skipped: readonly { name: string; reason: string }[];
  readonly workloads: readonly { name: string; operations: number; allocations: number }[];
  readonly cells: readonly Cell[];
  readonly summary: readonly Summary[];
  readonly targets: readonly Target[];
}

export interface Summary {
  readonly contender: string;
  /** Geometric means of the median ns/op over the workloads it completed without failures. */
  readonly freshGeomean: number;
  readonly reusedGeomean: number;
  /** Geometric mean over workloads of peak memory / dlmalloc's peak memory. */
  readonly memoryVsDlmalloc: number | null;
  readonly bytes: number;
  /** Workloads left out of the means (failed verification or allocations). */
  readonly excluded: readonly string[];
  /** Geometric mean over the workloads it completed of the mean work per call (WORK_UNIT of `@alloc/trace`). */
  readonly workMean?: number;
  /** The worst work of one call over those workloads, and where. */
  readonly workWorst?: number;
  readonly workWorstOn?: string;
}

export interface Target {
  readonly target: string;
  /** null: not measurable in this run (a contender is missing). */
  readonly met: boolean | null;
  readonly detail: string;
}

/** A cell counts in means and comparisons when it was verified and no allocation failed. */
export function usable(cell: Cell | undefined): cell is Cell & { fresh: NonNullable<Cell["fresh"]>; reused: NonNullable<Cell["reused"]> } {
  return !!cell && !cell.error && !cell.timedError && cell.failedAllocations === 0 && cell.timedFailures === 0 && !!cell.fresh && !!cell.reused;
}

export function buildReport(input: {
  command: string;
  mode: "quick" | "full";
  config: BenchReport["config"];
  contenders: readonly Contender[];
  skipped: readonly { name: string; reason: string }[];
  workloads: readonly Trace[];
  cells: readonly Cell[];
}): BenchReport {
  const { contenders, workloads, cells } = input;
  const cell = (c: string, w: string) => cells.find((x) => x.contender === c && x.workload === w);
  const summary: Summary[] = contenders.map((c) => {
    const ok = workloads.filter((w) => usable(cell(c.name, w.name)));
    const ratios = workloads
      .map((w) => [cell(c.name, w.name), cell("dlmalloc", w.name)] as const)
      .filter(([a, d]) => usable(a) && usable(d))
      .map(([a, d]) => a!.peakMemoryBytes / d!.peakMemoryBytes);
    const worked = ok.map((w) => cell(c.name, w.name)!).filter((x) => x.work);
    const worst = worked.reduce<Cell | undefined>((a, x) => (!a || x.work!.all.worst > a.work!.all.worst ? x : a), undefined);
    return {
      contender: c.name,
      ...(worked.length && { workMean: geomean(worked.map((x) => x.work!.all.mean)) }),
      ...(worst && { workWorst: worst.work!.all.worst, workWorstOn: worst.workload }),
      freshGeomean: geomean(ok.map((w) => cell(c.name, w.name)!.fresh!.median)),
      reusedGeomean: geomean(ok.map((w) => cell(c.name, w.name)!.reused!.median)),
      memoryVsDlmalloc: ratios.length ? geomean(ratios) : null,
      bytes: c.bytes,
      excluded: workloads.filter((w) => !ok.includes(w)).map((w) => w.name),
    };
  });
  const cpus = os.cpus();
  return {
    generated: new Date().toISOString(),
    command: input.command,
    mode: input.mode,
    machine: {
      node: process.version,
      v8: process.versions.v8,
      cpu: cpus[0]?.model ?? "unknown",
      cpus: cpus.length,
      liftoff: !process.execArgv.includes("--no-liftoff"),
    },
    config: input.config,
    contenders: contenders.map((c) => ({ name: c.name, kind: c.kind, description: c.description, isDefault: !!c.isDefault, bytes: c.bytes, builtWith: c.builtWith })),
    skipped: input.skipped,
    workloads: workloads.map((w) => ({ name: w.name, operations: w.ops.length, allocations: w.allocations })),
    cells,
    summary,
    targets: targets(contenders, workloads, cells, summary),
  };
}

/** The work bound of issue 10 (and of `@alloc/bounds`): no call does more, in `@alloc/trace`'s WORK_UNIT. */
export const WORK_BOUND = 128;
/** Issue 10's memory allowance for small heaps, beside the driver's own blocks. */
export const MEMORY_ALLOWANCE = 256 * 1024;

/** Issue 5's and issue 10's targets, checked against this run. */
function targets(contenders: readonly Contender[], workloads: readonly Trace[], cells: readonly Cell[], summary: readonly Summary[]): Target[] {
  const def = contenders.find((c) => c.isDefault)?.name;
  const sum = (name: string | undefined) => summary.find((s) => s.contender === name);
  const cell = (c: string, w: string) => cells.find((x) => x.contender === c && x.workload === w);
  const missing = (...names: (string | undefined)[]) => names.filter((n) => !n || !sum(n));
  const out: Target[] = [];
  const fmt = (n: number) => n.toFixed(1);

  {
    const target = "default composition at or below dlmalloc's time per operation (geometric mean, reused heap)";
    if (missing(def, "dlmalloc").length) out.push({ target, met: null, detail: "not measured: the default composition or dlmalloc is not in this run" });
    else {
      // Compare over the workloads both completed.
      const both = workloads.filter((w) => usable(cell(def!, w.name)) && usable(cell("dlmalloc", w.name)));
      const ours = geomean(both.map((w) => cell(def!, w.name)!.reused!.median));
      const theirs = geomean(both.map((w) => cell("dlmalloc", w.name)!.reused!.median));
      out.push({ target, met: ours <= theirs, detail: `${fmt(ours)} vs ${fmt(theirs)} ns/op (${((ours / theirs - 1) * 100).toFixed(0)}%) over ${both.length} workloads` });
    }
  }
  // Issue 10's "done when", against both builds of dlmalloc: wasi-libc's (C) and Rust std's.
  for (const peer of ["dlmalloc", "rust-std"]) {
    const label = peer === "dlmalloc" ? "wasi-libc's dlmalloc" : "Rust std's dlmalloc";
    const name = (what: string) => `issue 10, against ${label}: default ${what}`;
    if (missing(def, peer).length) {
      out.push({ target: name("vs"), met: null, detail: `not measured: the default composition or ${peer} is not in this run` });
      continue;
    }
    const both = workloads.filter((w) => usable(cell(def!, w.name)) && usable(cell(peer, w.name)));
    const ratio = (w: Trace, k: "fresh" | "reused") => cell(def!, w.name)![k]!.median / cell(peer, w.name)![k]!.median;
    const g = (c: string, k: "fresh" | "reused") => geomean(both.map((w) => cell(c, w.name)![k]!.median));
    const list = (ws: readonly Trace[], f: (w: Trace) => number) => ws.map((w) => `${w.name} ${f(w).toFixed(2)}`).join(", ");
    const warm = [g(def!, "reused"), g(peer, "reused")] as const;
    out.push({ target: name("warm ns/op at or below (geometric mean)"), met: warm[0] <= warm[1], detail: `${fmt(warm[0])} vs ${fmt(warm[1])} (${(warm[0] / warm[1]).toFixed(2)}×)` });
    const long = both.filter((w) => w.ops.length >= 1000);
    const slow = long.filter((w) => ratio(w, "reused") > 1.2);
    out.push({ target: name("warm ns/op at most 1.2× on every workload of 1,000 operations or more"), met: slow.length === 0, detail: slow.length ? `over on: ${list(slow, (w) => ratio(w, "reused"))}` : `within on all ${long.length}` });
    const cold = [g(def!, "fresh"), g(peer, "fresh")] as const;
    out.push({ target: name("cold ns/op at most 1.1× (geometric mean)"), met: cold[0] <= 1.1 * cold[1], detail: `${fmt(cold[0])} vs ${fmt(cold[1])} (${(cold[0] / cold[1]).toFixed(2)}×)` });
    const big = both.filter((w) => cell(def!, w.name)!.peakLiveBytes >= 100_000);
    const mem = (w: Trace) => cell(def!, w.name)!.peakMemoryBytes / cell(peer, w.name)!.peakMemoryBytes;
    const over = big.filter((w) => mem(w) > 1.1);
    out.push({ target: name("peak memory at most 1.1× on every workload with 100 KB live or more"), met: over.length === 0, detail: over.length ? `over on: ${list(over, mem)}` : `within on all ${big.length}` });
  }
  {
    const target = "default composition faster than AssemblyScript's TLSF on every workload (reused heap)";
    if (missing(def, "as-tlsf").length) out.push({ target, met: null, detail: "not measured: the default composition or as-tlsf is not in this run" });
    else {
      const slower = workloads.filter((w) => {
        const a = cell(def!, w.name), t = cell("as-tlsf", w.name);
        return !usable(a) || (usable(t) && a.reused.median >= t.reused.median);
      });
      out.push({ target, met: slower.length === 0, detail: slower.length ? `not faster on: ${slower.map((w) => w.name).join(", ")}` : `faster on all ${workloads.length} workloads` });
    }
  }
  {
    const target = "default composition's peak memory within 10% of dlmalloc's (geometric mean over workloads)";
    const ratio = sum(def)?.memoryVsDlmalloc;
    if (missing(def, "dlmalloc").length || ratio == null) out.push({ target, met: null, detail: "not measured: the default composition or dlmalloc is not in this run" });
    else {
      const worst = workloads
        .map((w) => [w.name, cell(def!, w.name), cell("dlmalloc", w.name)] as const)
        .filter(([, a, d]) => usable(a) && usable(d))
        .map(([name, a, d]) => [name, a!.peakMemoryBytes / d!.peakMemoryBytes] as const)
        .sort((x, y) => y[1] - x[1])[0];
      out.push({ target, met: ratio <= 1.1, detail: `${ratio.toFixed(2)}× dlmalloc's${worst ? `; worst ${worst[0]} ${worst[1].toFixed(2)}×` : ""}` });
    }
  }
  {
    const target = "bump at least as fast as AssemblyScript's stub runtime (geometric mean, fresh and reused heap)";
    if (missing("bump", "as-stub").length) out.push({ target, met: null, detail: "not measured: bump or as-stub is not in this run" });
    else {
      const both = workloads.filter((w) => usable(cell("bump", w.name)) && usable(cell("as-stub", w.name)));
      const g = (c: string, k: "fresh" | "reused") => geomean(both.map((w) => cell(c, w.name)![k]!.median));
      const [bf, br, sf, sr] = [g("bump", "fresh"), g("bump", "reused"), g("as-stub", "fresh"), g("as-stub", "reused")];
      out.push({
        target,
        met: bf <= sf && br <= sr,
        detail: `fresh ${fmt(bf)} vs ${fmt(sf)}, reused ${fmt(br)} vs ${fmt(sr)} ns/op over ${both.length} workloads`,
      });
    }
  }
  {
    const target = `default composition's worst call at most ${WORK_BOUND} work on every workload (issue 10)`;
    const cells = def ? workloads.map((w) => cell(def, w.name)).filter((x) => x?.work) : [];
    if (!def || !cells.length) out.push({ target, met: null, detail: "not measured: the default composition is not in this run" });
    else {
      const over = cells.filter((x) => x!.work!.all.worst > WORK_BOUND).map((x) => `${x!.workload} ${x!.work!.all.worst}`);
      const worst = Math.max(...cells.map((x) => x!.work!.all.worst));
      out.push({ target, met: over.length === 0 && cells.length === workloads.length, detail: over.length ? `over on: ${over.join(", ")}` : `worst ${worst} over ${cells.length} workloads` });
    }
  }
  {
    const target =
      "default composition's peak memory at most 1.5× peak live (+ the driver's blocks + 256 KiB), or 1.2× dlmalloc's heap where dlmalloc itself needs more than 1.5× peak live, on every workload (issue 10)";
    const dlmalloc = contenders.find((c) => c.name === "dlmalloc");
    if (missing(def, "dlmalloc").length || !dlmalloc) out.push({ target, met: null, detail: "not measured: the default composition or dlmalloc is not in this run" });
    else {
      // dlmalloc's heap: its memory less what it starts with (stack and data), as in @alloc/bounds.
      const initial = dlmalloc.initialMemoryBytes ?? 0;
      const over: string[] = [];
      for (const w of workloads) {
        const a = cell(def!, w.name), d = cell("dlmalloc", w.name);
        if (!a || a.error) {
          over.push(`${w.name} (failed)`);
          continue;
        }
        const live = 1.5 * a.peakLiveBytes + a.driverBytes + MEMORY_ALLOWANCE;
        // (dlmalloc's heap holds the driver's blocks too: they are not what it needs.)
        const heap = d && !d.error ? d.peakMemoryBytes - initial : 0;
        const limit = d && heap - d.driverBytes > 1.5 * a.peakLiveBytes ? Math.max(live, 1.2 * heap) : live;
        if (a.peakMemoryBytes > limit) over.push(`${w.name} ${Math.round(a.peakMemoryBytes / 1024)} KiB > ${Math.round(limit / 1024)}`);
      }
      out.push({ target, met: over.length === 0, detail: over.length ? `over on: ${over.join(", ")}` : `within on all ${workloads.length} workloads` });
    }
  }
  return out;
}

// ---- terminal ----------------------------------------------------------------------------------

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r, j) => {
      const line = r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
      return j === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
    })
    .join("\n");
}

const kib = (bytes: number) => (Number.isNaN(bytes) ? "-" : `${Math.round(bytes / 1024)}`);

/** The report as text tables for the terminal (and RESULTS.md). */
export function formatReport(report: BenchReport): string {
  const names = report.contenders.map((c) => c.name);
  const cell = (c: string, w: string) => report.cells.find((x) => x.contender === c && x.workload === w);
  const timeCell = (c: string, w: string, k: "fresh" | "reused") => {
    const x = cell(c, w);
    if (!x || x.error) return "ERROR";
    if (x.timedError) return "TRAP";
    const s = x[k];
    if (!s) return "-";
    const failed = x.failedAllocations || x.timedFailures ? "!" : "";
    return `${s.median.toFixed(1)}${failed} ±${Math.round(s.iqr * 50)}%`;
  };
  const head = ["workload (ops)", ...names];
  const times = (k: "fresh" | "reused") =>
    table([head, ...report.workloads.map((w) => [`${w.name} (${w.operations})`, ...names.map((c) => timeCell(c, w.name, k))])]);
  const memory = table([
    ["workload (peak live KiB)", ...names],
    ...report.workloads.map((w) => {
      const live = cell(names[0]!, w.name)?.peakLiveBytes ?? NaN;
      return [`${w.name} (${kib(live)})`, ...names.map((c) => kib(cell(c, w.name)?.peakMemoryBytes ?? NaN))];
    }),
  ]);
  const workCell = (c: string, w: string, k: "malloc" | "free" | "realloc") => {
    const x = cell(c, w);
    if (!x || x.error) return "ERROR";
    const work = x.work?.[k];
    if (!work) return "-";
    if (!work.count) return "";
    return `${work.mean.toFixed(1)}/${work.worst}${x.work!.stopped ? "*" : ""}`;
  };
  const works = (k: "malloc" | "free" | "realloc") => {
    const rows = report.workloads.filter((w) => names.some((c) => (cell(c, w.name)?.work?.[k].count ?? 0) > 0));
    return table([[`workload: ${k} work mean/worst`, ...names], ...rows.map((w) => [w.name, ...names.map((c) => workCell(c, w.name, k))])]);
  };
  const stoppedWork = report.cells.filter((c) => c.work?.stopped).map((c) => `  ${c.contender} on ${c.workload}: ${c.work!.stopped}`);
  const summary = table([
    ["allocator", "fresh ns/op", "reused ns/op", "work/call", "worst call", "memory vs dlmalloc", "module bytes", "left out"],
    ...report.summary.map((s) => [
      s.contender + (report.contenders.find((c) => c.name === s.contender)?.isDefault ? " (default)" : ""),
      s.freshGeomean.toFixed(1),
      s.reusedGeomean.toFixed(1),
      s.workMean === undefined ? "-" : s.workMean.toFixed(1),
      s.workWorst === undefined ? "-" : `${s.workWorst} (${s.workWorstOn})`,
      s.memoryVsDlmalloc == null ? "-" : `${s.memoryVsDlmalloc.toFixed(2)}×`,
      String(s.bytes),
      s.excluded.join(", ") || "-",
    ]),
  ]);
  const errors = report.cells.filter((c) => c.error).map((c) => `  ${c.contender} on ${c.workload}: ${c.error}`);
  const traps = report.cells.filter((c) => c.timedError).map((c) => `  ${c.contender} on ${c.workload}: ${c.timedError}`);
  const failures = report.cells
    .filter((c) => !c.error && (c.failedAllocations || c.timedFailures))
    .map((c) => `  ${c.contender} on ${c.workload}: ${c.failedAllocations} failed allocations verified, ${c.timedFailures} while timed`);
  const mark = (met: boolean | null) => (met === null ? "n/a " : met ? "MET " : "NOT MET");
  return [
    `ns per operation, reused heap (median ±half the interquartile range, ${report.config.rounds} rounds)`,
    times("reused"),
    "",
    "ns per operation, fresh heap",
    times("fresh"),
    "",
    "peak memory (KiB, memory.buffer.byteLength; includes the driver's op array and pointer table)",
    memory,
    "",
    `work per call, mean/worst, on a fresh heap (deterministic; unit: ${WORK_UNIT}; * stopped early)`,
    works("malloc"),
    "",
    works("free"),
    "",
    works("realloc"),
    ...(stoppedWork.length ? ["", "* work count stopped early (memory past 1 GiB):", ...stoppedWork] : []),
    "",
    "summary (geometric means over the workloads each completed)",
    summary,
    "",
    "targets (issues 5 and 10)",
    ...report.targets.map((t) => `  ${mark(t.met)}  ${t.target}: ${t.detail}`),
    ...(report.skipped.length ? ["", "left out:", ...report.skipped.map((s) => `  ${s.name}: ${s.reason}`)] : []),
    ...(errors.length ? ["", "failed verification (not timed):", ...errors] : []),
    ...(traps.length ? ["", "TRAP: trapped during a timed replay (timing stopped; left out of the means):", ...traps] : []),
    ...(failures.length ? ["", "! failed allocations (left out of the means):", ...failures] : []),
  ].join("\n");
}
