import { defineConfig } from "vitest/config";

/**
 * Node 20 and 22 run memory64 modules (the 64-bit builds' tests) only behind
 * `--experimental-wasm-memory64`; engines that ship memory64 need no flag (and may not know it).
 * The smallest module with a memory64 memory tells which this Node is.
 */
const memory64Flags = WebAssembly.validate(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 4, 0]))
  ? []
  : ["--experimental-wasm-memory64"];

/**
 * The vitest configuration every package uses: workspace packages resolve to their TypeScript
 * sources through the "source" export condition, so tests need no prior build. Tests run in
 * child processes (vitest's default "forks" pool) with memory64 enabled.
 */
export const vitestConfig = defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 60_000,
    pool: "forks",
    execArgv: memory64Flags,
  },
});
