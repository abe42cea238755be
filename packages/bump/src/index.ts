/** @alloc/bump: bump allocation, the smallest and fastest strategy when memory is rarely reused. */
export { bump } from "./bump.ts";
