/**
 * @alloc/core: the contracts between allocator layers, the codegen helpers every strategy is
 * written with, the default page backend, and composition into a final module.
 */
/**
 * The binaryen.js instance this package generates code with. A module given to
 * {@link installAllocator} must come from this same instance (modules live on one Binaryen heap):
 * `new binaryen.Module()` with this export, or a `binaryen` dependency that resolves to the same copy.
 */
export { default as binaryen } from "binaryen";
export { Codegen, FunctionScope, PAGE_SHIFT, PAGE_SIZE } from "./codegen.ts";
export type { CodegenOptions, Expr, Local, ValueKind, Var } from "./codegen.ts";
export type {
  AllocatorFunctions,
  BuildGoal,
  BuildLimits,
  ContiguousRun,
  EmitContext,
  MemoryDescription,
  PageBackend,
  PageSource,
  Parent,
  Strategy,
} from "./contracts.ts";
export { AllocConfigError, check, isPowerOfTwo } from "./errors.ts";
export { allocEntries } from "./alloc-entries.ts";
export type { AllocBody } from "./alloc-entries.ts";
export { DEFAULT_GROWTH, growBackend, MEMORY64_MAX_PAGES, WASM32_MAX_PAGES } from "./grow-backend.ts";
export type { GrowBackendOptions } from "./grow-backend.ts";
export { C_FUNCTIONS, C_FUNCTION_DOCS, EINVAL, ENOMEM } from "./c-api.ts";
export type { CFunction } from "./c-api.ts";
export { buildAllocator, engineRunsMemory64, installAllocator, DEFAULT_EXPORTS, DEFAULT_MIN_ALIGN, HEAP_CHECK } from "./compose.ts";
export type {
  AllocatorOptions,
  BuildOptions,
  BuiltAllocator,
  ExportRequest,
  InstallOptions,
  InstalledAllocator,
  MemoryOptions,
  ResolvedMemory,
} from "./compose.ts";
export type { AllocatorInstance, HeapReport, InstantiateOptions } from "./instantiate.ts";
export { HeapFaultError, POISON, POISON_WORD } from "./debug.ts";
export type { DebugHooks, DebugInfo, FaultKind, FaultSite, LayerStats, StatsInfo, StatVars } from "./debug.ts";
export { HEAP_STATS } from "./stats.ts";
export type { StatsHooks } from "./stats.ts";
export { THREAD_STATE_BYTES } from "./threads.ts";
export type { ThreadOptions } from "./threads.ts";
export { DEFAULT_THREAD_CACHE, THREAD_CACHE_FLUSH } from "./thread-cache.ts";
export type { ThreadCacheOptions } from "./thread-cache.ts";
export { withOptimizeSettings } from "./optimize.ts";
export type { OptimizeFlags, OptimizeMode } from "./optimize.ts";
export { CELL_FREE, cellLayout, cellSizes, walkCells } from "./cell.ts";
export type { CellLayout, CellSizes, CellView } from "./cell.ts";
