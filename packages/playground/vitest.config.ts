import { mergeConfig } from "vitest/config";
import { vitestConfig } from "../../tooling/test-utils/vitest.shared.ts";

export default mergeConfig(vitestConfig, {
  // Installs Debian's chromium when it is missing (a fresh CI machine), before any test runs.
  test: { globalSetup: ["./src/global-setup.ts"] },
});
