import type { CFunction } from "@alloc/core";

/**
 * What an entry point of a program's allocator does: a C function, memalign, or one of Rust's
 * global allocator functions (`__rust_alloc(size, align)`, `__rust_dealloc(ptr, size, align)`,
 * `__rust_realloc(ptr, old_size, align, new_size)`, `__rust_alloc_zeroed(size, align)`).
 */
export type Role = CFunction | "memalign" | RustRole;
export type RustRole = "rust_alloc" | "rust_dealloc" | "rust_realloc" | "rust_alloc_zeroed";

export interface RoleSpec {
  /** The C function of ours that mainly serves it. */
  readonly serves: CFunction;
  /** Every C function of ours its new body calls. */
  readonly needs: readonly CFunction[];
  /** wasm32 signature: this many i32 parameters, and an i32 result or none. */
  readonly params: number;
  readonly result: boolean;
}

const c = (serves: CFunction, params: number, result = true): RoleSpec => ({ serves, needs: [serves], params, result });

/** Each role: what serves it, and its wasm32 signature. */
export const ROLES: Readonly<Record<Role, RoleSpec>> = {
  malloc: c("malloc", 1),
  free: c("free", 1, false),
  calloc: c("calloc", 2),
  realloc: c("realloc", 2),
  aligned_alloc: c("aligned_alloc", 2),
  // musl's (and wasi-libc's) memalign(align, size) is aligned_alloc.
  memalign: c("aligned_alloc", 2),
  posix_memalign: c("posix_memalign", 3),
  malloc_usable_size: c("malloc_usable_size", 1),
  rust_alloc: { serves: "aligned_alloc", needs: ["malloc", "aligned_alloc"], params: 2, result: true },
  rust_dealloc: { serves: "free", needs: ["free"], params: 3, result: false },
  rust_realloc: { serves: "realloc", needs: ["realloc", "aligned_alloc", "free"], params: 4, result: true },
  rust_alloc_zeroed: { serves: "calloc", needs: ["calloc", "aligned_alloc"], params: 2, result: true },
};

const RUST_ROLES: readonly RustRole[] = ["rust_alloc", "rust_dealloc", "rust_realloc", "rust_alloc_zeroed"];
export const isRustRole = (role: Role): role is RustRole => (RUST_ROLES as readonly string[]).includes(role);

/**
 * The names under which C runtimes define their allocator's entry points: the C names,
 * wasi-libc's and musl's internal aliases (`__libc_*`), dlmalloc's own (`dl*`, separate functions
 * in wasi-libc that the C names call), Emscripten's `emscripten_builtin_*`, and emmalloc's
 * `emmalloc_*` (the malloc of Zig's wasi-libc: its malloc and calloc call `emmalloc_memalign`).
 */
export const ENTRY_NAMES: Readonly<Record<string, Role>> = Object.fromEntries([
  // Rust's global allocator on wasm32: __rust_* call the __rdl_* functions of the default
  // (System: a Rust dlmalloc) allocator, or the __rg_* functions of a #[global_allocator] (such
  // as wee_alloc); all are entry points.
  ...RUST_ROLES.flatMap((role) => [`__${role}`, `__rdl_${role.slice(5)}`, `__rg_${role.slice(5)}`].map((name) => [name, role] as const)),
  ...(Object.keys(ROLES) as Role[]).filter((role) => !isRustRole(role)).flatMap((role) => {
    const names = [role, `__libc_${role}`, `dl${role}`, `emscripten_builtin_${role}`, `emmalloc_${role}`];
    if (role === "malloc_usable_size") names.push("dlmalloc_usable_size", "emmalloc_usable_size");
    return names.map((name) => [name, role] as const);
  }),
]);

/**
 * Functions of dlmalloc (as wasi-libc and Emscripten build it) and of emmalloc (Zig's wasi-libc) that are not entry points: if one
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
  // emmalloc's (its emmalloc_* are matched by prefix).
  "attempt_allocate",
  "allocate_memory",
  "claim_more_memory",
  "initialize_emmalloc_heap",
  "attempt_region_resize",
  "acquire_and_attempt_region_resize",
  "create_free_region",
  "create_used_region",
  "link_to_free_list",
  "unlink_from_free_list",
  "prepend_to_free_list",
  "compute_free_list_bucket",
  "trim_dynamic_heap_reservation",
]);

/** Whether a function's name marks it as part of a C runtime's allocator. */
export function isOldAllocatorName(name: string): boolean {
  return (
    OLD_ALLOCATOR_INTERNALS.has(name) ||
    /^(dl|__libc_)(malloc|free|calloc|realloc|memalign|posix_memalign|aligned_alloc|valloc|pvalloc|malloc_usable_size|mallinfo|malloc_trim|malloc_stats|bulk_free|realloc_in_place|independent_c)/.test(name) ||
    name.startsWith("emscripten_builtin_") ||
    name.startsWith("emmalloc_") ||
    name.startsWith("mspace_") ||
    // Rust's dlmalloc crate (mangled: _ZN8dlmalloc8dlmalloc...; its System: ..dlmalloc..sys..System).
    name.startsWith("_ZN8dlmalloc") ||
    name.includes("dlmalloc..sys..System")
  );
}
