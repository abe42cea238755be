/**
 * Each fixture with its own allocator and swapped for our compositions: module size, run time
 * (median of 7 runs of the whole program under node:wasi, instantiation excluded) and memory at
 * exit. `pnpm --filter @alloc/swap measure`. Prints a Markdown table.
 */
import { bump } from "@alloc/bump";
import type { Strategy } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";
import { swapAllocator } from "../src/index.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}.wasm`, import.meta.url)));
const COMPOSITIONS: [string, () => Strategy[]][] = [
  ["free-list", () => [freeList()]],
  ["size-classes > free-list", () => [sizeClasses(), freeList()]],
  ["bump", () => [bump()]],
];

async function measure(binary: Uint8Array, rust: boolean): Promise<{ ms: number; memory: number }> {
  const module = new WebAssembly.Module(binary as BufferSource);
  const times: number[] = [];
  let memory = 0;
  for (let i = 0; i < 7; i++) {
    if (rust) {
      const instance = new WebAssembly.Instance(module, {});
      const t = performance.now();
      (instance.exports.run as (n: number) => number)(200_000);
      times.push(performance.now() - t);
      memory = (instance.exports.memory as WebAssembly.Memory).buffer.byteLength;
    } else {
      const wasi = new WASI({ version: "preview1", args: ["p"], env: {}, returnOnExit: true, stdout: 2 });
      const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
      const t = performance.now();
      wasi.start(instance);
      times.push(performance.now() - t);
      memory = (instance.exports.memory as WebAssembly.Memory).buffer.byteLength;
    }
  }
  times.sort((a, b) => a - b);
  return { ms: times[3]!, memory };
}

const rows: string[] = ["| program | allocator | bytes | ms (median of 7) | memory at exit |", "| --- | --- | ---: | ---: | ---: |"];
for (const name of ["strings", "realloc_growth", "calloc", "memalign", "rust_churn"]) {
  const rust = name === "rust_churn";
  const input = fixture(name);
  const own = await measure(input, rust);
  const label = rust ? "Rust's dlmalloc" : "wasi-libc dlmalloc";
  rows.push(`| ${name} | ${label} (own) | ${input.byteLength} | ${own.ms.toFixed(1)} | ${own.memory / 1024} KiB |`);
  for (const [composition, strategy] of COMPOSITIONS) {
    if (composition === "bump" && (name === "realloc_growth" || name === "memalign" || rust)) continue;
    const { binary } = swapAllocator(input, { strategy: strategy(), baseline: false });
    const m = await measure(binary, rust);
    rows.push(`| | ${composition} | ${binary.byteLength} | ${m.ms.toFixed(1)} | ${m.memory / 1024} KiB |`);
  }
}
console.log(rows.join("\n"));
