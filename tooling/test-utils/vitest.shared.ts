import { defineConfig } from "vitest/config";

/**
 * The vitest configuration every package uses: workspace packages resolve to their TypeScript
 * sources through the "source" export condition, so tests need no prior build.
 */
export const vitestConfig = defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
