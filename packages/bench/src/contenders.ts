import { buildAllocator, type CFunction } from "@alloc/core";
import type { ReplayTarget } from "@alloc/trace";
import { compositions } from "./compositions.ts";
import { loadPeers, readManifest } from "./peers.ts";

/** The ABI every contender exports: the same four C functions and its memory. */
export const BENCH_EXPORTS: readonly CFunction[] = ["malloc", "free", "calloc", "realloc"];

/** An allocator in the benchmark: one of our compositions or a peer. */
export interface Contender {
  readonly name: string;
  readonly kind: "ours" | "peer";
  readonly description: string;
  /** The project's default composition. */
  readonly isDefault?: boolean;
  /** The module's size in bytes (ours: optimised for speed, as benchmarked). */
  readonly bytes: number;
  /** How it was built. */
  readonly builtWith: string;
  readonly module: WebAssembly.Module;
  /** The module's bytes (the work count instruments them). */
  readonly binary: Uint8Array;
  /** Its memory before the first call: stack and data (a peer's), the first page (ours). */
  readonly initialMemoryBytes?: number;
}

/** The memory `module` has before any call. */
function initialMemory(module: WebAssembly.Module): number {
  return (new WebAssembly.Instance(module, {}).exports.memory as WebAssembly.Memory).buffer.byteLength;
}

/** A fresh instance of `contender`: a new, empty heap. */
export function instantiate(contender: Contender): ReplayTarget {
  const instance = new WebAssembly.Instance(contender.module, {});
  return { instance, memory: instance.exports.memory as WebAssembly.Memory };
}

/**
 * Every contender that can run here (filtered by `names` when given), and the ones left out
 * with the reason: a composition whose packages are not written yet, a peer not built.
 */
export function contenders(names?: readonly string[]): { contenders: Contender[]; skipped: { name: string; reason: string }[] } {
  const wanted = (name: string) => !names || names.includes(name);
  const { available, missing } = compositions();
  const list: Contender[] = [];
  for (const c of available.filter((c) => wanted(c.name) && !c.sizeOnly)) {
    const built = buildAllocator({ strategy: c.stack(), exports: BENCH_EXPORTS, optimize: "speed" });
    const module = new WebAssembly.Module(built.binary as BufferSource);
    list.push({
      name: c.name,
      kind: "ours",
      description: c.description,
      ...(c.isDefault && { isDefault: true }),
      bytes: built.size,
      builtWith: `buildAllocator({ optimize: "speed", exports: [${BENCH_EXPORTS.join(", ")}] })`,
      module,
      binary: built.binary,
      initialMemoryBytes: initialMemory(module),
    });
  }
  const manifest = readManifest();
  const peers = loadPeers(names);
  for (const { peer, binary } of peers.loaded) {
    const module = new WebAssembly.Module(binary as BufferSource);
    list.push({
      name: peer.name,
      kind: "peer",
      description: peer.description,
      bytes: binary.byteLength,
      builtWith: manifest[peer.name]?.builtWith ?? "unknown (rebuild with setup)",
      module,
      binary,
      initialMemoryBytes: initialMemory(module),
    });
  }
  const skipped = [
    ...missing.filter((m) => wanted(m.name)),
    // Asked for by name only: a full run leaves them out without a word.
    ...available
      .filter((c) => c.sizeOnly && names?.includes(c.name))
      .map((c) => ({ name: c.name, reason: "measured for SIZES.md only: the workloads cannot run on it" })),
    ...peers.missing,
  ];
  if (names) {
    const known = new Set([...list.map((c) => c.name), ...skipped.map((s) => s.name)]);
    for (const name of names) if (!known.has(name)) skipped.push({ name, reason: "unknown allocator" });
  }
  return { contenders: list, skipped };
}
