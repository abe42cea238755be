/**
 * What a small block costs in memory: for a few request sizes, at minimum alignments 8 and 16, on
 * wasm32 and memory64, the distance between two blocks of one class carved one after the other
 * (the stride: header + block) and the usable size; then the peak memory of a binary-trees-like
 * run (complete trees of 2-pointer nodes, freed post-order, beside a long-lived one), size-classes
 * over free-list against free-list alone. Every figure is read from the built module running.
 *
 *   node --experimental-wasm-memory64 --conditions=source \
 *     --import ./packages/cli/scripts/register-ts.mjs packages/size-classes/scripts/footprint.ts [depth]
 */
import { buildAllocator, type AllocatorInstance, type Strategy } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "../src/index.ts";

const SIZES = [8, 16, 24, 100, 1000];
const depth = Number(process.argv[2] ?? 14);

const build = (strategy: Strategy[], minAlign: number, memory64: boolean) =>
  buildAllocator({ strategy, minAlign, memory64, exports: ["malloc", "free", "malloc_usable_size"] }).instantiate();

/** The Benchmarks Game's binary-trees from `min` to `max` depth, with nodes of `node` bytes. */
function binaryTrees(a: AllocatorInstance, node: number, max: number): void {
  const make = (d: number): number[] => {
    const tree: number[] = [];
    const grow = (k: number) => {
      tree.push(a.malloc(node));
      if (k > 0) {
        grow(k - 1);
        grow(k - 1);
      }
    };
    grow(d);
    return tree;
  };
  const release = (tree: number[]) => {
    for (let i = tree.length - 1; i >= 0; i--) a.free(tree[i]!);
  };
  release(make(max + 1));
  const longLived = make(max);
  for (let d = 4; d <= max; d += 2) for (let i = 0; i < 2 ** (max - d + 4); i++) release(make(d));
  release(longLived);
}

console.log("| width | minAlign | request | stride (bytes per block) | usable |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const memory64 of [false, true]) {
  for (const minAlign of [8, 16]) {
    for (const size of SIZES) {
      const a = await build([sizeClasses(), freeList()], minAlign, memory64);
      const p = a.malloc(size), q = a.malloc(size);
      console.log(`| ${memory64 ? "memory64" : "wasm32"} | ${minAlign} | ${size} | ${q - p} | ${a.malloc_usable_size(p)} |`);
    }
  }
}

console.log(`\nbinary-trees shape, depth ${depth}: memory at the end (KiB)\n`);
console.log("| width | minAlign | size-classes > free-list | free-list |");
console.log("| --- | ---: | ---: | ---: |");
for (const memory64 of [false, true]) {
  for (const minAlign of [8, 16]) {
    const kib: number[] = [];
    for (const stack of [[sizeClasses(), freeList()], [freeList()]]) {
      const a = await build(stack, minAlign, memory64);
      binaryTrees(a, memory64 ? 16 : 8, depth);
      kib.push(a.memoryBytes() / 1024);
    }
    console.log(`| ${memory64 ? "memory64" : "wasm32"} | ${minAlign} | ${kib[0]} | ${kib[1]} |`);
  }
}
