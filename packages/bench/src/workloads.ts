import { sharedTracesDir } from "@alloc/test-utils";
import { parseTrace, WORKLOADS, type Trace } from "@alloc/trace";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Operations per generated workload; {@link SHORTER} ones get a tenth. */
export const WORKLOAD_OPS = { quick: 10_000, full: 100_000 } as const;

/**
 * Workloads replayed at a tenth of the operations: allocators that never reuse memory (bump,
 * as-stub) need gigabytes for them at full length (the staircase alone asks for 1.9 GB a round;
 * realloc-ping-pong 1 GiB, and bump copies on every realloc: 24 s for one replay), and would spend
 * the run growing memory.
 */
export const SHORTER: readonly string[] = ["large-blocks", "staircase", "realloc-doubling", "realloc-ping-pong"];
export const SEED = 1;

/**
 * The recorded traces in ../shared/traces (when present), then the generated workloads. `names`
 * picks some by name; `recorded`, `shape` and `adversarial` stand for every workload of that kind.
 */
export function benchWorkloads(mode: keyof typeof WORKLOAD_OPS, names?: readonly string[]): Trace[] {
  const traces: Trace[] = [];
  const dir = sharedTracesDir();
  if (dir) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".trace")).sort()) {
      traces.push(parseTrace(readFileSync(join(dir, file), "utf8"), file.replace(/\.trace$/, "")));
    }
  }
  const recorded = new Set(traces.map((t) => t.name));
  const kinds = new Map<string, string>();
  for (const w of WORKLOADS) {
    const ops = SHORTER.includes(w.name) ? WORKLOAD_OPS[mode] / 10 : WORKLOAD_OPS[mode];
    const trace = w.generate({ seed: SEED, ops });
    traces.push({ ...trace, name: w.name });
    kinds.set(w.name, w.kind);
  }
  if (!names) return traces;
  const kind = (t: Trace) => (recorded.has(t.name) ? "recorded" : kinds.get(t.name));
  return traces.filter((t) => names.includes(t.name) || names.includes(kind(t)!));
}
