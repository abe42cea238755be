import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const scripts = JSON.parse(readFileSync(`${root}package.json`, "utf8")).scripts as Record<string, string>;

/**
 * The README's commands start from the TypeScript sources without a build. Through tsx, whose
 * loader transforms binaryen's 14 MB index.js on every start, `pnpm alloc build --help` took
 * 16-50 s; the root scripts run Node with hooks that transpile only `.ts` files (about 1-2 s).
 * The limit leaves room for a machine busy with other tests (turbo runs every package at once on
 * two cores); tsx took 16 s on an idle one.
 */
const LIMIT_MS = 10_000;

async function timed(args: string[]): Promise<{ ms: number; stdout: string }> {
  const started = performance.now();
  const { stdout } = await promisify(execFile)("pnpm", ["run", "--silent", ...args], { cwd: root, timeout: 60_000 });
  return { ms: performance.now() - started, stdout };
}

describe("the root scripts start fast", () => {
  test("start, alloc and soak run Node on the sources through the .ts-only hooks, not tsx", () => {
    for (const name of ["start", "alloc", "soak"]) {
      expect(scripts[name]).toMatch(/^node .*--conditions=source --import \.\/packages\/cli\/scripts\/register-ts\.mjs /);
      expect(scripts[name]).not.toMatch(/\btsx\b/);
    }
  });

  test(`pnpm alloc build --help answers within ${LIMIT_MS / 1000} s`, async () => {
    const { ms, stdout } = await timed(["alloc", "build", "--help"]);
    expect(stdout).toContain("--strategy");
    expect(ms).toBeLessThan(LIMIT_MS);
  });

  test(`pnpm soak --help answers within ${LIMIT_MS / 1000} s`, async () => {
    const { ms, stdout } = await timed(["soak", "--help"]);
    expect(stdout).toContain("--ops");
    expect(ms).toBeLessThan(LIMIT_MS);
  });

  test("pnpm soak --ops N runs exactly N operations per composition", async () => {
    const { stdout } = await timed(["soak", "--ops", "567", "--only", "bump over grow, imported", "--seed", "3"]);
    expect(stdout).toMatch(/bump over grow, imported memory: 567 ops in [\d.]+ s, all checks passed/);
  });
});
