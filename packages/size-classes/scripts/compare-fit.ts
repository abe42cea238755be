/**
 * Which fit should be free-list's default? Replays the shared traces (when present) and the
 * project's seeded workloads against free-list with `fit: "first"` and `fit: "bins"`, alone and
 * under size-classes, and prints the median time per operation and the peak memory.
 *
 *   cd packages/size-classes && npx tsx --conditions=source scripts/compare-fit.ts
 */
import { buildAllocator, type Strategy } from "@alloc/core";
import { sharedTracesDir } from "@alloc/test-utils";
import { createReplayer, generateWorkload, parseTrace, WORKLOADS, type Trace } from "@alloc/trace";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "../src/index.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 15);


function traces(): Trace[] {
  const out: Trace[] = [];
  const dir = sharedTracesDir();
  if (dir) for (const f of readdirSync(dir).filter((f) => f.endsWith(".trace"))) out.push(parseTrace(readFileSync(join(dir, f), "utf8"), f));
  for (const w of WORKLOADS) out.push(generateWorkload(w.name, { ops: w.name === "large-blocks" ? 2_000 : 50_000 }));
  return out;
}

async function measure(stack: Strategy | Strategy[], trace: Trace): Promise<{ ns: number; peak: number }> {
  const built = buildAllocator({ strategy: stack, exports: ["malloc", "free", "realloc"], optimize: "speed" });
  const times: number[] = [];
  let peak = 0;
  // A fresh instance per round: each round starts from an empty heap.
  for (let i = 0; i < ROUNDS; i++) {
    const a = await built.instantiate();
    const r = createReplayer(a, trace, { verify: false });
    const result = r.run();
    times.push(result.nsPerOp);
    peak = Math.max(peak, result.peakMemoryBytes);
  }
  times.sort((x, y) => x - y);
  return { ns: times[Math.floor(times.length / 2)]!, peak };
}

const stacks: [string, (fit: "first" | "bins") => Strategy | Strategy[]][] = [
  ["free-list", (fit) => freeList({ fit })],
  ["size-classes/free-list", (fit) => [sizeClasses(), freeList({ fit })]],
];
for (const [label, make] of stacks) {
  console.log(`\n${label}: median ns/op over ${ROUNDS} runs (optimize speed), peak memory KiB`);
  console.log("trace".padEnd(34), "first ns", "bins ns", "first KiB", "bins KiB");
  for (const trace of traces()) {
    const first = await measure(make("first"), trace);
    const bins = await measure(make("bins"), trace);
    console.log(
      trace.name.padEnd(34),
      first.ns.toFixed(1).padStart(8),
      bins.ns.toFixed(1).padStart(7),
      String(first.peak >> 10).padStart(9),
      String(bins.peak >> 10).padStart(8),
    );
  }
}
