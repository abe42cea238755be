/** @alloc/size-classes: segregated free lists for small sizes, refilled from a parent strategy. */
export { sizeClasses } from "./size-classes.ts";
export type { SizeClassesOptions } from "./size-classes.ts";
