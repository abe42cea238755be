// The C allocation API over AssemblyScript's runtime heap, for the benchmark. Built twice by
// `pnpm --filter @alloc/bench setup`: with `--runtime incremental` (heap = TLSF) and with
// `--runtime stub` (heap = a bump allocator that frees only the latest block).

export function malloc(size: usize): usize {
  return heap.alloc(size);
}

export function free(ptr: usize): void {
  if (ptr) heap.free(ptr);
}

export function calloc(n: usize, size: usize): usize {
  const total = n * size;
  if (size && total / size != n) return 0;
  const ptr = heap.alloc(total);
  memory.fill(ptr, 0, total);
  return ptr;
}

export function realloc(ptr: usize, size: usize): usize {
  if (!ptr) return heap.alloc(size);
  if (!size) {
    heap.free(ptr);
    return 0;
  }
  return heap.realloc(ptr, size);
}

// No host import: a failed assertion or an impossible request traps (`--use abort=as-peer/abort`).
function abort(message: usize, file: usize, line: u32, column: u32): void {
  unreachable();
}
