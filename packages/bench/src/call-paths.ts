import type { Trace } from "@alloc/trace";
import type { Contender } from "./contenders.ts";
import { counterExports, instrumentInstructions } from "./instructions.ts";

/**
 * Where a reused heap's time goes, deterministically: the Wasm instructions each call executes
 * on the bench's reused-heap replay (the trace once, every live block freed, then the trace again,
 * counted), per kind of call, and the most frequent per-call counts. A per-call count stands for
 * a path through the allocator (a listed hit, a carve, the top, a walk): an allocator with one
 * fast path shows one dominant count; one whose paths differ by a few instructions shows many.
 *
 * Instructions are `instructions.ts`'s unit, charged per region: two allocators compare loosely
 * (a dependent load weighs more than a `local.get`), one allocator's paths compare well.
 */
export interface PathsCell {
  readonly contender: string;
  readonly workload: string;
  /** Per kind of call of the counted pass: how many, and their mean instructions. */
  readonly kinds: readonly { readonly kind: Kind; readonly count: number; readonly mean: number }[];
  /** Every (kind, instructions per call) seen in the counted pass, most frequent first. */
  readonly paths: readonly { readonly kind: Kind; readonly instructions: number; readonly count: number }[];
}

type Kind = "malloc" | "free" | "realloc";
type Fn = (...args: number[]) => number;

/** Counts `trace`'s second replay on a fresh instance of `c` (see {@link PathsCell}). */
export function measurePaths(c: Contender, trace: Trace): PathsCell {
  const im = instrumentInstructions(c.binary);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(im.binary as BufferSource), {});
  const ex = instance.exports as Record<string, unknown>;
  const counters = im.functions.map((_, i) => ex[counterExports(i).instructions] as WebAssembly.Global);
  const total = () => {
    let s = 0n;
    for (const g of counters) s += g.value as bigint;
    return s;
  };
  const call = { malloc: ex.malloc as Fn, free: ex.free as Fn, realloc: ex.realloc as Fn };
  const ptrs = new Uint32Array(trace.allocations);
  const tally = new Map<string, number>();
  const kinds = { malloc: { count: 0, sum: 0 }, free: { count: 0, sum: 0 }, realloc: { count: 0, sum: 0 } };
  for (const counted of [false, true]) {
    for (const op of trace.ops) {
      if (op.op === "free" && ptrs[op.index] === 0) continue;
      const before = counted ? total() : 0n;
      if (op.op === "alloc") ptrs[op.index] = call.malloc(op.size) >>> 0;
      else if (op.op === "free") {
        call.free(ptrs[op.index]!);
        ptrs[op.index] = 0;
      } else {
        const p = call.realloc(ptrs[op.index]!, op.size) >>> 0;
        if (p !== 0 || op.size === 0) ptrs[op.index] = p;
      }
      if (!counted) continue;
      const n = Number(total() - before);
      const kind: Kind = op.op === "alloc" ? "malloc" : op.op;
      kinds[kind].count++;
      kinds[kind].sum += n;
      const key = `${kind} ${n}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    // Every live block freed: the second pass starts on a reused, empty heap.
    for (let k = 0; k < ptrs.length; k++) {
      if (ptrs[k]) call.free(ptrs[k]!);
      ptrs[k] = 0;
    }
  }
  return {
    contender: c.name,
    workload: trace.name,
    kinds: (Object.keys(kinds) as Kind[]).filter((k) => kinds[k].count).map((k) => ({ kind: k, count: kinds[k].count, mean: kinds[k].sum / kinds[k].count })),
    paths: [...tally]
      .map(([key, count]) => {
        const [kind, n] = key.split(" ") as [Kind, string];
        return { kind, instructions: Number(n), count };
      })
      .sort((a, b) => b.count - a.count || a.instructions - b.instructions),
  };
}

/** A block of text per workload: each contender's means per kind, then its `top` most frequent paths. */
export function formatPaths(cells: readonly PathsCell[], top: number): string {
  const out: string[] = [];
  for (const workload of [...new Set(cells.map((c) => c.workload))]) {
    out.push(`## ${workload}`);
    for (const c of cells.filter((c) => c.workload === workload)) {
      const calls = c.kinds.reduce((s, k) => s + k.count, 0);
      out.push(`${c.contender}: ${c.kinds.map((k) => `${k.kind} ${k.count} x ${k.mean.toFixed(1)}`).join(", ")}`);
      out.push(
        `  paths: ${c.paths
          .slice(0, top)
          .map((p) => `${p.kind} ${p.instructions} (${((100 * p.count) / calls).toFixed(1)} %)`)
          .join(", ")}`,
      );
    }
  }
  return out.join("\n");
}
