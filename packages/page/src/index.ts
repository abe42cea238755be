/** @alloc/page: fresh pages for every block, never reused (lol_alloc's LeakingPageAllocator). */
export { page } from "./page.ts";
