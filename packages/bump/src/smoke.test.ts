import { buildAllocator } from "@alloc/core";
import { expect, test } from "vitest";
import { bump } from "./index.ts";

test("smoke", async () => {
  const a = await buildAllocator({ strategy: bump() }).instantiate();
  expect(a.malloc(8)).toBe(65536);
});
