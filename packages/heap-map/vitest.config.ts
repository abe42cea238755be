import { vitestConfig } from "../../tooling/test-utils/vitest.shared.ts";

export default vitestConfig;
