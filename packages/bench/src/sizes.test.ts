import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { SIZES_FILE, sizesMarkdown } from "./sizes.ts";

// Over 200 optimised modules: about 12 s of CPU (`pnpm sizes`), minutes on a loaded machine.
test("SIZES.md is the current size report (regenerate it with `pnpm --filter @alloc/bench sizes`)", { timeout: 600_000 }, () => {
  const generated = sizesMarkdown();
  expect(generated).toMatch(/\| bump \| malloc, free \| \d+ \| \d+ \| \d+ \|/);
  expect(generated).toMatch(/\| free-list \| \+ aligned_alloc \(default\) \| \d+ \| \d+ \| [+-]\d+ \| \d+ \|/);
  expect(readFileSync(SIZES_FILE, "utf8"), "SIZES.md is stale: run `pnpm --filter @alloc/bench sizes`").toBe(generated);
});
