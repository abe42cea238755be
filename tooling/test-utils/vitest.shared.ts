import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * The vitest configuration every package uses: workspace packages resolve to their TypeScript
 * sources through the "source" export condition, so tests need no prior build. Every test process
 * runs memory64 modules (see memory64-setup.ts).
 */
export const vitestConfig = defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 60_000,
    setupFiles: [fileURLToPath(new URL("./memory64-setup.ts", import.meta.url))],
  },
});
