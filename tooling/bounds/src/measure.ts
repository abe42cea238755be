/**
 * Prints, for every composition and workload, the worst work per operation at N and 4N and the
 * memory at the end against the peak live bytes: `pnpm --filter @alloc/bounds measure [N]`.
 */
import { WORKLOADS } from "@alloc/trace";
import { COMPOSITIONS, measurePair, memoryViolations, N, SEEDS, workViolations } from "./bounds.ts";

const n = Number(process.argv[2] ?? N);
const names = process.argv[3]?.split(",");
for (const seed of SEEDS) {
  for (const c of COMPOSITIONS) {
    for (const w of WORKLOADS) {
      if (names && !names.includes(w.name)) continue;
      const start = performance.now();
      const pair = measurePair(c, w, n, seed);
      const at = seed === 1 ? w.name : `${w.name} (seed ${seed})`;
      const { short, long } = pair;
      const work = workViolations(pair).length ? "WORK FAIL" : "work ok";
      const mem = !pair.memoryApplies ? "memory n/a" : memoryViolations(pair).length ? "MEMORY FAIL" : "memory ok";
      const ratio = (r: typeof short) => (r.endMemoryBytes / Math.max(r.peakLiveBytes, 1)).toFixed(2);
      console.log(
        [
          c.name.padEnd(24),
          at.padEnd(26),
          `worst ${short.all.worst} -> ${long.all.worst}`.padEnd(22),
          `m/f/r ${long.malloc.worst}/${long.free.worst}/${long.realloc.worst}`.padEnd(24),
          `mem ${(short.endMemoryBytes / 2 ** 20).toFixed(1)} -> ${(long.endMemoryBytes / 2 ** 20).toFixed(1)} MiB (${ratio(short)}x, ${ratio(long)}x live)`.padEnd(44),
          work.padEnd(10),
          mem.padEnd(12),
          `${((performance.now() - start) / 1000).toFixed(1)}s`,
          short.stopped || long.stopped ? "STOPPED" : "",
        ].join(" "),
      );
      if (process.env.KEYS) {
        if (workViolations(pair).length) console.log(`KEY ${JSON.stringify(`${c.name} | ${at} | work`)}`);
        if (pair.memoryApplies && memoryViolations(pair).length) console.log(`KEY ${JSON.stringify(`${c.name} | ${at} | memory`)}`);
      }
    }
  }
}
