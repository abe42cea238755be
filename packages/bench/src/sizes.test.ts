import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { SIZES_FILE, sizesMarkdown } from "./sizes.ts";

test("SIZES.md is the current size report (regenerate it with `pnpm --filter @alloc/bench sizes`)", () => {
  const generated = sizesMarkdown();
  expect(generated).toMatch(/\| bump \| malloc, free \| \d+ \| \d+ \| \d+ \|/);
  expect(readFileSync(SIZES_FILE, "utf8"), "SIZES.md is stale: run `pnpm --filter @alloc/bench sizes`").toBe(generated);
});
