/**
 * `pnpm playground`: builds the page and serves it on http://127.0.0.1:4173/ (PORT=n for another
 * port; PORT=0 takes a free one) until interrupted.
 */
import { buildAndServe } from "../src/serve.ts";

const port = process.env.PORT === undefined ? 4173 : Number(process.env.PORT);
console.log("building the playground (binaryen.js is 13 MB: a few seconds)…");
const served = await buildAndServe(port);
console.log(`alloc playground: ${served.url}  (Ctrl-C to stop)`);
