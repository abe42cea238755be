import { vitestConfig } from "../test-utils/vitest.shared.ts";

export default vitestConfig;
