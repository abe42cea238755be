import { check, growBackend, PAGE_SIZE, type GrowBackendOptions, type MemoryDescription, type PageBackend } from "@alloc/core";

export interface HeapBaseBackendOptions extends Omit<GrowBackendOptions, "exclusive"> {
  /**
   * The first byte of the heap: the program's `__heap_base` (everything below it is its static
   * data and stack). Rounded up to 16 bytes.
   */
  readonly start: number;
}

/**
 * The page backend for a program linked by wasm-ld (or any module with a known end of its static
 * data): the heap first takes the memory from `start` (the program's `__heap_base`) to the end of
 * the initial memory, as the program's own allocator would have, then grows the memory with
 * `memory.grow` (the grow backend's growth policy; pages grown by other code of the program, such
 * as a direct `sbrk`, are fenced off). When `start` is at or past the end of the initial memory,
 * it is the grow backend: fresh pages only.
 */
export function heapBaseBackend(options: HeapBaseBackendOptions): PageBackend {
  const { start: given, ...growOptions } = options;
  check(
    Number.isInteger(given) && given > 0 && given < 2 ** 32,
    `heap-base backend: start must be a positive address (the program's __heap_base), got ${JSON.stringify(given) ?? String(given)}`,
  );
  const start = Math.ceil(given / 16) * 16;
  const grow = growBackend(growOptions);
  const inside = (memory: MemoryDescription) => start < memory.initialPages * PAGE_SIZE;
  return {
    name: "heap-base",
    validate(memory) {
      grow.validate?.(memory);
      for (const used of memory.reserved ?? []) {
        check(
          used.end <= start || used.start >= memory.initialPages * PAGE_SIZE,
          Number.isFinite(used.end)
            ? `heap-base backend: the heap would start at ${start}, inside ${used.what} at [${used.start}, ${used.end}): ` +
                `the program's __heap_base is wrong, or its memory is laid out in a way swap does not know`
            : `heap-base backend: ${used.what} may lie anywhere, so the heap cannot start at ${start}`,
        );
      }
    },
    emit(ctx, memory) {
      if (!inside(memory)) return grow.emit(ctx, memory);
      // The grow backend over a memory of its own is a run from its start to the end of the
      // initial memory, grown on demand: the same run, from `start`.
      const source = grow.emit(ctx, { ...memory, mode: "own" });
      if (!source.run) throw new Error("heap-base backend: internal error: the grow backend gave no run over its own memory");
      return { ...source, run: { ...source.run, start } };
    },
  };
}
