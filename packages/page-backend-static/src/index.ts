/** @alloc/page-backend-static: pages from a fixed region of memory; never calls memory.grow. */
export { staticBackend } from "./static-backend.ts";
export type { StaticBackendOptions } from "./static-backend.ts";
