/**
 * @alloc/swap: put an alloc allocator into a compiled WebAssembly program in place of its own.
 */
export { optimizeProgram, swapAllocator, takeSwapFault } from "./swap.ts";
export type { FoundEntry, SwapOptions, SwapReport, SwapResult } from "./swap.ts";
export { heapBaseBackend } from "./heap-base-backend.ts";
export type { HeapBaseBackendOptions } from "./heap-base-backend.ts";
export { ENTRY_NAMES, isOldAllocatorName, ROLES } from "./entries.ts";
export type { Role } from "./entries.ts";
export { runWasi } from "./wasi.ts";
export type { WasiRun } from "./wasi.ts";
export { recordTrace, TraceRecorder } from "./record.ts";
export type { RecordedTrace } from "./record.ts";
export { RECORD_MODULE } from "./swap.ts";
