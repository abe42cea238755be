import { createReplayer, measureWork, replay, type Replayer, type Trace } from "@alloc/trace";
import { instantiate, type Contender } from "./contenders.ts";
import { spread, type Spread } from "./stats.ts";

export interface MeasureOptions {
  /** Interleaved rounds: every (workload, contender) pair gets one sample per round. */
  readonly rounds: number;
  /** About how many operations each timed sample replays (short traces are repeated). */
  readonly sampleOps: number;
  /** At most this many fresh instances per fresh-heap sample. */
  readonly maxFresh: number;
  /**
   * Wall-time budget of one sample in ms: repetitions stop once it is spent (at least one fresh
   * and one reused replay always run). Keeps slow pairs (bump growing memory on every replay)
   * from dominating the run, and from exhausting memory.
   */
  readonly budgetMs: number;
  /** Called before each step, for the progress line. */
  readonly progress?: (done: number, total: number, what: string) => void;
}

/** What one contender did on one workload. */
export interface Cell {
  readonly contender: string;
  readonly workload: string;
  /** Why it was not timed: the verified replay failed (the allocator is wrong or trapped). */
  readonly error?: string;
  /** Why timing stopped: a timed replay trapped (e.g. an allocator that traps when memory runs out). */
  readonly timedError?: string;
  /** From the verified replay on a fresh instance. */
  readonly peakMemoryBytes: number;
  readonly peakLiveBytes: number;
  readonly driverBytes: number;
  readonly failedAllocations: number;
  /** ns per operation, first replay on a fresh instance. */
  readonly fresh?: Spread;
  /** ns per operation, later replays on the same instance after every block was freed. */
  readonly reused?: Spread;
  /** Failed allocations during the timed replays (a heap that ran out). */
  readonly timedFailures: number;
  /** Deterministic work per call (`measureWork` of `@alloc/trace`), on a fresh instance. */
  readonly work?: CellWork;
}

/** Mean and worst work of one kind of call, in `@alloc/trace`'s WORK_UNIT. */
export interface KindWork {
  readonly count: number;
  readonly mean: number;
  readonly worst: number;
}

export interface CellWork {
  readonly malloc: KindWork;
  readonly free: KindWork;
  readonly realloc: KindWork;
  readonly all: KindWork;
  /** Set when the count stopped early (memory past {@link WORK_MEMORY_LIMIT}): the numbers cover the ops before. */
  readonly stopped?: string;
}

/** The work count stops a heap that passes this (bump on the adversarial patterns). */
export const WORK_MEMORY_LIMIT = 1 << 30;

/** Counts the work of every call of `trace` on a fresh instance of `c` (see `measureWork`). */
export function countWork(c: Contender, trace: Trace): CellWork | { error: string } {
  try {
    const r = measureWork(c.binary, trace, { maxMemoryBytes: WORK_MEMORY_LIMIT });
    const kind = (k: "malloc" | "free" | "realloc" | "all") => ({ count: r[k].count, mean: r[k].mean, worst: r[k].worst });
    return { malloc: kind("malloc"), free: kind("free"), realloc: kind("realloc"), all: kind("all"), ...(r.stopped !== undefined && { stopped: r.stopped }) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** `global.gc` when node runs with --expose-gc (the bench script does). */
const gc = (globalThis as { gc?: () => void }).gc;

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/**
 * Verifies every contender on every workload (a verified replay on a fresh instance: wrong
 * allocators are not timed), then times them in interleaved rounds with the fast driver:
 * round 1: W1 A, W1 B, W1 C, W2 A, ...; round 2: the same again. Each sample:
 * - fresh heap: the first replay on each of a few fresh instances;
 * - reused heap: on the last of them, after `free` of every live block, the trace again, as many
 *   times as it takes to reach `sampleOps` operations.
 */
export function measure(contenders: readonly Contender[], workloads: readonly Trace[], options: MeasureOptions): Cell[] {
  const total = contenders.length * workloads.length * (options.rounds + 2);
  let done = 0;
  const step = (what: string) => options.progress?.(done++, total, what);

  type Acc = {
    cell: Omit<Cell, "fresh" | "reused" | "timedFailures" | "timedError" | "work">;
    work?: CellWork;
    fresh: number[];
    reused: number[];
    timedFailures: number;
    timedError?: string;
  };
  const acc = new Map<string, Acc>();
  const key = (c: Contender, w: Trace) => `${c.name}\u0000${w.name}`;

  for (const w of workloads) {
    for (const c of contenders) {
      step(`verifying ${c.name} on ${w.name}`);
      try {
        const r = replay(instantiate(c), w, { verify: true });
        acc.set(key(c, w), {
          cell: { contender: c.name, workload: w.name, peakMemoryBytes: r.peakMemoryBytes, peakLiveBytes: r.peakLiveBytes, driverBytes: r.driverBytes, failedAllocations: r.failedAllocations },
          fresh: [],
          reused: [],
          timedFailures: 0,
        });
      } catch (error) {
        acc.set(key(c, w), {
          cell: { contender: c.name, workload: w.name, error: (error as Error).message, peakMemoryBytes: NaN, peakLiveBytes: NaN, driverBytes: NaN, failedAllocations: NaN },
          fresh: [],
          reused: [],
          timedFailures: 0,
        });
      }
    }
  }

  // Work is deterministic: counted once, on the pairs that passed verification.
  for (const w of workloads) {
    for (const c of contenders) {
      step(`counting work of ${c.name} on ${w.name}`);
      const a = acc.get(key(c, w))!;
      if (a.cell.error) continue;
      gc?.();
      const work = countWork(c, w);
      if ("error" in work) a.cell = { ...a.cell, error: `work count: ${work.error}` };
      else a.work = work;
    }
  }

  for (let round = 1; round <= options.rounds; round++) {
    for (const w of workloads) {
      const ops = w.ops.length;
      const fresh = clamp(Math.ceil(options.sampleOps / ops), 1, options.maxFresh);
      const repeats = clamp(Math.ceil(options.sampleOps / ops), 1, 1_000);
      for (const c of contenders) {
        step(`round ${round}/${options.rounds} · ${w.name} · ${c.name}`);
        const a = acc.get(key(c, w))!;
        if (a.cell.error || a.timedError) continue;
        // Let earlier instances' memories go first: V8 counts Wasm memory as external memory, and
        // its pressure triggers full collections inside memory.grow, which would land in our timing.
        gc?.();
        const start = performance.now();
        const spent = () => performance.now() - start;
        let freshMs = 0, freshRuns = 0, reusedMs = 0, reusedRuns = 0;
        let replayer: Replayer | undefined;
        try {
          while (freshRuns < fresh && (freshRuns === 0 || spent() < options.budgetMs / 2)) {
            replayer = createReplayer(instantiate(c), w, { verify: false });
            const r = replayer.run({ freeLive: true });
            freshMs += r.elapsedMs;
            freshRuns++;
            a.timedFailures += r.failedAllocations;
          }
          while (reusedRuns < repeats && (reusedRuns === 0 || spent() < options.budgetMs)) {
            const r = replayer!.run({ freeLive: true });
            reusedMs += r.elapsedMs;
            reusedRuns++;
            a.timedFailures += r.failedAllocations;
          }
        } catch (error) {
          a.timedError = (error as Error).message;
          continue;
        }
        a.fresh.push((freshMs * 1e6) / (freshRuns * ops));
        a.reused.push((reusedMs * 1e6) / (reusedRuns * ops));
      }
    }
  }
  options.progress?.(total, total, "done");

  return [...acc.values()].map(({ cell, work, fresh, reused, timedFailures, timedError }) => ({
    ...cell,
    ...(work && { work }),
    ...(timedError !== undefined && { timedError }),
    ...(fresh.length && { fresh: spread(fresh) }),
    ...(reused.length && { reused: spread(reused) }),
    timedFailures,
  }));
}
