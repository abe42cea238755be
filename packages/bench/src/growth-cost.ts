import { buildAllocator, DEFAULT_GROWTH, growBackend, type GrowBackendOptions } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { PAGE_BYTES, recordHeap } from "@alloc/heap-map";
import { generateWorkload, WORKLOADS, type Trace } from "@alloc/trace";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PEERS_DIR } from "./paths.ts";

/**
 * What the grow backend's growth policy costs in memory: the default free list grown by the
 * default step (1/16), by an eighth and exactly, beside wasi-libc's dlmalloc and Rust std's, on
 * every generated workload. Each runs by calls from JS (no driver, so only the allocator's memory
 * counts); peak `memory.buffer.byteLength` is deterministic. Prints a table for seed 1, then the
 * worst ratio to each dlmalloc over `seeds` for the workloads with 100 KB or more live, and how
 * many runs were over 1.1 times. `names` picks workloads by name or kind (`shape`, `adversarial`);
 * a name that is neither is a RangeError. `ops`: each trace's length (default 100,000, and 10,000
 * for the three workloads of large blocks).
 */
export function growthCost(log: (line: string) => void, seeds: readonly number[] = [1, 2, 3, 4], names?: readonly string[], ops?: number): void {
  const unknown = names?.filter((n) => !WORKLOADS.some((w) => w.name === n || w.kind === n));
  if (unknown?.length) throw new RangeError(`growth: unknown workloads ${unknown.join(", ")} (known: shape, adversarial, ${WORKLOADS.map((w) => w.name).join(", ")})`);
  const workloads = WORKLOADS.filter((w) => !names || names.includes(w.name) || names.includes(w.kind));
  const ours = (growth: NonNullable<GrowBackendOptions["growth"]>) =>
    new WebAssembly.Module(buildAllocator({ strategy: [freeList()], exports: ["malloc", "free", "realloc"], optimize: "speed", backend: growBackend({ growth }) }).binary as BufferSource);
  const modules: [string, WebAssembly.Module][] = [[`${fraction(DEFAULT_GROWTH)} (default)`, ours(DEFAULT_GROWTH)], ["1/8", ours(1 / 8)], ["exact", ours("exact")]];
  const peers: [string, WebAssembly.Module][] = [];
  for (const name of ["dlmalloc", "rust-std"]) {
    const file = join(PEERS_DIR, `${name}.wasm`);
    try {
      peers.push([name, new WebAssembly.Module(readFileSync(file))]);
    } catch {
      log(`(no ${file}: run \`pnpm --filter @alloc/bench setup-peers\` to compare with ${name})`);
    }
  }
  const all = [...modules, ...peers];
  const kib = (n: number) => `${Math.round(n / 1024)}`;
  const ratioNames = [`${modules[0]![0]} ÷ exact`, "1/8 ÷ exact", ...peers.flatMap(([p]) => [`default ÷ ${p}`, `exact ÷ ${p}`])];
  log(`workload (ops), seed ${seeds[0]}: peak live KiB | ${all.map(([n]) => `${n} KiB`).join(" | ")} | ${ratioNames.join(" | ")}`);
  const worst = new Map<string, { ratio: number; where: string; over: string[]; runs: number }>();
  for (const seed of seeds) {
    for (const w of workloads) {
      const trace = generateWorkload(w.name, { seed, ops: ops ?? (["staircase", "realloc-doubling", "large-blocks"].includes(w.name) ? 10_000 : 100_000) });
      const peaks = all.map(([, m]) => peak(m, trace));
      const live = peaks[0]!.live;
      const [d, e8, e] = peaks.map((p) => p.memory) as [number, number, number];
      const peerPeaks = peaks.slice(modules.length).map((p) => p.memory);
      const ratios = [d / e, e8 / e, ...peerPeaks.flatMap((m) => [d / m, e / m])];
      if (seed === seeds[0]) log(`${w.name} (${trace.ops.length}): ${kib(live)} | ${peaks.map((p) => kib(p.memory)).join(" | ")} | ${ratios.map((r) => r.toFixed(2)).join(" | ")}`);
      if (live < 100_000) continue;
      peers.forEach(([p], i) => {
        const ratio = d / peerPeaks[i]!;
        const w0 = worst.get(p) ?? { ratio: 0, where: "", over: [], runs: 0 };
        const over = ratio > 1.1 ? [...w0.over, `${w.name} ${seed}: ${ratio.toFixed(2)}`] : w0.over;
        worst.set(p, { ...(ratio > w0.ratio ? { ratio, where: `${w.name}, seed ${seed}` } : w0), over, runs: w0.runs + 1 });
      });
    }
  }
  for (const [p, { ratio, where, over, runs }] of worst) {
    log(`worst default ÷ ${p} over seeds ${seeds.join(", ")}, workloads with 100 KB or more live: ${ratio.toFixed(2)} (${where}); over 1.1 in ${over.length} of ${runs} runs${over.length ? ` (${over.join(", ")})` : ""}`);
  }
}

/** 1/16 for 0.0625. */
function fraction(growth: number): string {
  return `1/${Math.round(1 / growth)}`;
}

/** Replays `trace` by calls from JS (heap-map's recorder): peak live bytes and peak memory. */
function peak(module: WebAssembly.Module, trace: Trace): { live: number; memory: number } {
  const instance = new WebAssembly.Instance(module, {});
  const recording = recordHeap({ instance, memory: instance.exports.memory as WebAssembly.Memory }, trace);
  return { live: recording.peakLiveBytes, memory: recording.pages.reduce((a, b) => Math.max(a, b), recording.initialPages) * PAGE_BYTES };
}
