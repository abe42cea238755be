/**
 * @alloc/heap-map: record where an allocator puts every block of a trace ({@link recordHeap}) and
 * draw the heap over time as a small SVG ({@link renderHeapMap}) or an HTML page with tooltips
 * ({@link renderHeapMapHtml}). Pure TypeScript without Node APIs: it runs in browsers too.
 */
export { recordHeap, PAGE_BYTES } from "./record.ts";
export type { HeapRecording, RecordOptions } from "./record.ts";
export { buildGrid, gridScale, sizeClassOf, CELL, LIVE_LEVELS, SIZE_CLASSES } from "./grid.ts";
export type { GridOptions, GridScale, HeapGrid } from "./grid.ts";
export { renderHeapMap, formatBytes } from "./svg.ts";
export type { RenderOptions } from "./svg.ts";
export { renderHeapMapHtml } from "./html.ts";
