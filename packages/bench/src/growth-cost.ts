import { buildAllocator, growBackend, type GrowBackendOptions } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { generateWorkload, WORKLOADS, type Trace } from "@alloc/trace";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PEERS_DIR } from "./paths.ts";

/**
 * What the grow backend's growth policy costs in memory: the default free list grown by an eighth
 * and exactly, beside wasi-libc's dlmalloc, on every generated workload. Each runs by calls from
 * JS (no driver, so only the allocator's memory counts); peak `memory.buffer.byteLength` is
 * deterministic. Prints a table.
 */
export function growthCost(log: (line: string) => void): void {
  const ours = (growth: NonNullable<GrowBackendOptions["growth"]>) =>
    new WebAssembly.Module(buildAllocator({ strategy: [freeList()], exports: ["malloc", "free", "realloc"], optimize: "speed", backend: growBackend({ growth }) }).binary as BufferSource);
  const dl = join(PEERS_DIR, "dlmalloc.wasm");
  const modules: [string, WebAssembly.Module][] = [["1/8", ours(1 / 8)], ["exact", ours("exact")]];
  try {
    modules.push(["dlmalloc", new WebAssembly.Module(readFileSync(dl))]);
  } catch {
    log(`(no ${dl}: run \`pnpm --filter @alloc/bench setup-peers\` to compare with dlmalloc)`);
  }
  const kib = (n: number) => `${Math.round(n / 1024)}`;
  log(`workload (ops): peak live KiB | ${modules.map(([n]) => `${n} KiB`).join(" | ")} | 1/8 ÷ exact${modules.length > 2 ? " | 1/8 ÷ dlmalloc | exact ÷ dlmalloc" : ""}`);
  for (const w of WORKLOADS) {
    const trace = generateWorkload(w.name, { ops: ["staircase", "realloc-doubling", "large-blocks"].includes(w.name) ? 10_000 : 100_000 });
    const peaks = modules.map(([, m]) => peak(m, trace));
    const live = peaks[0]!.live;
    const [g, e, d] = peaks.map((p) => p.memory) as [number, number, number | undefined];
    const ratios = [g / e, ...(d ? [g / d, e / d] : [])].map((r) => r.toFixed(2));
    log(`${w.name} (${trace.ops.length}): ${kib(live)} | ${peaks.map((p) => kib(p.memory)).join(" | ")} | ${ratios.join(" | ")}`);
  }
}

/** Replays `trace` by calls from JS: peak live bytes and peak memory. */
function peak(module: WebAssembly.Module, trace: Trace): { live: number; memory: number } {
  type Fn = (...args: number[]) => number;
  const { malloc, free, realloc, memory } = new WebAssembly.Instance(module, {}).exports as { malloc: Fn; free: Fn; realloc: Fn; memory: WebAssembly.Memory };
  const ptrs: number[] = [], sizes: number[] = [];
  let live = 0, peakLive = 0, peakMemory = 0;
  for (const op of trace.ops) {
    if (op.op === "alloc") {
      ptrs[op.index] = malloc(op.size);
      sizes[op.index] = op.size;
      live += op.size;
    } else if (op.op === "free") {
      if (ptrs[op.index]) {
        free(ptrs[op.index]!);
        ptrs[op.index] = 0;
        live -= sizes[op.index]!;
      }
    } else {
      const p = realloc(ptrs[op.index] ?? 0, op.size);
      if (p) {
        live += op.size - (ptrs[op.index] ? sizes[op.index]! : 0);
        ptrs[op.index] = p;
        sizes[op.index] = op.size;
      }
    }
    peakLive = Math.max(peakLive, live);
    peakMemory = Math.max(peakMemory, memory.buffer.byteLength);
  }
  return { live: peakLive, memory: peakMemory };
}
