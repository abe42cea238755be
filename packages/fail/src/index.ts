/** @alloc/fail: the fail strategy, every allocation returns 0 (for programs that must never allocate). */
export { fail } from "./fail.ts";
