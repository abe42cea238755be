import type { CFunction } from "@alloc/core";

/** What an entry point of a program's allocator does, by the C function that serves it. */
export type Role = CFunction | "memalign";

/** Each role: the C function of ours that serves it, and its wasm32 signature. */
export const ROLES: Readonly<Record<Role, { readonly serves: CFunction; readonly params: number; readonly result: boolean }>> = {
  malloc: { serves: "malloc", params: 1, result: true },
  free: { serves: "free", params: 1, result: false },
  calloc: { serves: "calloc", params: 2, result: true },
  realloc: { serves: "realloc", params: 2, result: true },
  aligned_alloc: { serves: "aligned_alloc", params: 2, result: true },
  // musl's (and wasi-libc's) memalign(align, size) is aligned_alloc.
  memalign: { serves: "aligned_alloc", params: 2, result: true },
  posix_memalign: { serves: "posix_memalign", params: 3, result: true },
  malloc_usable_size: { serves: "malloc_usable_size", params: 1, result: true },
};

/**
 * The names under which C runtimes define their allocator's entry points: the C names,
 * wasi-libc's and musl's internal aliases (`__libc_*`), dlmalloc's own (`dl*`, separate functions
 * in wasi-libc that the C names call), and Emscripten's `emscripten_builtin_*`.
 */
export const ENTRY_NAMES: Readonly<Record<string, Role>> = Object.fromEntries(
  (Object.keys(ROLES) as Role[]).flatMap((role) => {
    const names = [role, `__libc_${role}`, `dl${role}`, `emscripten_builtin_${role}`];
    if (role === "malloc_usable_size") names.push("dlmalloc_usable_size");
    return names.map((name) => [name, role] as const);
  }),
);

/**
 * Functions of dlmalloc (as wasi-libc and Emscripten build it) that are not entry points: if one
 * is still reachable once the entry points call ours, some caller of the old allocator was not
 * found, and the module would mix two allocators.
 */
export const OLD_ALLOCATOR_INTERNALS: ReadonlySet<string> = new Set([
  "sbrk",
  "dispose_chunk",
  "internal_memalign",
  "internal_bulk_free",
  "internal_malloc_stats",
  "internal_mallinfo",
  "tmalloc_small",
  "tmalloc_large",
  "sys_alloc",
  "sys_trim",
  "init_top",
  "init_bins",
  "init_mparams",
  "add_segment",
  "prepend_alloc",
  "release_unused_segments",
  "try_realloc_chunk",
  "mmap_resize",
  "mmap_alloc",
  "ialloc",
  "realloc_in_place",
  "malloc_trim",
  "malloc_stats",
  "mallinfo",
  "mallopt",
  "independent_calloc",
  "independent_comalloc",
  "bulk_free",
  "valloc",
  "pvalloc",
]);

/** Whether a function's name marks it as part of a C runtime's allocator. */
export function isOldAllocatorName(name: string): boolean {
  return (
    OLD_ALLOCATOR_INTERNALS.has(name) ||
    /^(dl|__libc_)(malloc|free|calloc|realloc|memalign|posix_memalign|aligned_alloc|valloc|pvalloc|malloc_usable_size|mallinfo|malloc_trim|malloc_stats|bulk_free|realloc_in_place|independent_c)/.test(name) ||
    name.startsWith("emscripten_builtin_") ||
    name.startsWith("mspace_")
  );
}
