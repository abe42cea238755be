/** @alloc/free-list: a general-purpose free list with splitting and coalescing, without wee_alloc's leak. */
export { freeList } from "./free-list.ts";
export type { FreeListOptions } from "./free-list.ts";
