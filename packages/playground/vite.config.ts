import { defineConfig } from "vite";

/**
 * The page and its worker import the workspace packages' TypeScript sources (the "source"
 * condition), binaryen.js included: ESM with top-level await, hence the es2022 target.
 */
const rolldownOptions = {
  checks: { bundlerTimings: false },
  // binaryen.js imports node:module only when it runs in Node: left out of the browser build, as it should.
  onLog(level: string, log: { message: string }, handler: (level: never, log: never) => void) {
    if (log.message.includes('"node:module" has been externalized')) return;
    handler(level as never, log as never);
  },
};

export default defineConfig({
  base: "./",
  resolve: { conditions: ["source"] },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 20_000, rolldownOptions },
  worker: { format: "es", rolldownOptions },
});
