import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { PACKAGE_DIR } from "./paths.ts";
import { buildProgram, measurePrograms, PROGRAM_ALLOCATORS, PROGRAMS, PROGRAMS_DIR, runProgram } from "./programs.ts";

const program = (name: string) => PROGRAMS.find((p) => p.name === name)!;

/**
 * Each of these builds whole programs with Binaryen at -O3 (the baseline and every swapped
 * build: seconds each) and runs them: on a loaded 2-core machine that passed vitest's 60 s.
 */
const BUILDS = 300_000;

describe("real programs with each allocator swapped in", () => {
  test("binary-trees prints the Benchmarks Game's expected output for depth 10, with every allocator", async () => {
    const expected = [
      "stretch tree of depth 11\t check: 4095",
      "1024\t trees of depth 4\t check: 31744",
      "256\t trees of depth 6\t check: 32512",
      "64\t trees of depth 8\t check: 32704",
      "16\t trees of depth 10\t check: 32752",
      "long lived tree of depth 10\t check: 2047",
      "",
    ].join("\n");
    for (const allocator of PROGRAM_ALLOCATORS) {
      const run = await runProgram(buildProgram(program("binary-trees"), allocator).module, ["10"]);
      expect({ allocator, exitCode: run.exitCode, stdout: run.stdout }).toEqual({ allocator, exitCode: 0, stdout: expected });
    }
  }, BUILDS);

  test.each(["interp", "json"])("%s: the same checksum with every allocator as with its own dlmalloc", async (name) => {
    const p = program(name);
    const original = await runProgram(new WebAssembly.Module(readFileSync(join(PROGRAMS_DIR, p.file))), p.args.quick);
    expect(original.exitCode).toBe(0);
    // The program's own summary line: it did its work (a checksum, counts that are not zero).
    expect(original.stdout).toMatch(name === "json" ? /json: 2 rounds of 60 records, [1-9]\d+ bytes printed, checksum [0-9a-f]{16}\n$/ : /^\d+\ninterp: 4 iterations, [1-9]\d* collections, [1-9]\d+ objects freed, 0 on the stack\n$/);
    for (const allocator of PROGRAM_ALLOCATORS) {
      const run = await runProgram(buildProgram(p, allocator).module, p.args.quick);
      expect({ allocator, exitCode: run.exitCode, stdout: run.stdout }).toEqual({ allocator, exitCode: 0, stdout: original.stdout });
      expect(run.memoryBytes).toBeGreaterThan(0);
    }
  }, BUILDS);

  test("measurePrograms: every cell timed, same output, ratios to dlmalloc", async () => {
    const cells = await measurePrograms({ mode: "quick", rounds: 2, programs: ["binary-trees"], allocators: ["dlmalloc", "free-list"] });
    expect(cells.map((c) => c.allocator)).toEqual(["dlmalloc", "free-list"]);
    for (const c of cells) {
      expect(c.failed).toBeUndefined();
      expect(c.sameOutput).toBe(true);
      expect(c.cpuMs).toBeGreaterThan(0);
      expect(c.locality.pairs).toBeGreaterThan(10_000);
      expect(c.locality.nearAfter + c.locality.below).toBeLessThanOrEqual(1);
      expect(c.replay.ms).toBeGreaterThan(0);
      // binary-trees mallocs and frees; each call counts at least its entry.
      expect(c.work.malloc).toBeGreaterThanOrEqual(1);
      expect(c.work.free).toBeGreaterThanOrEqual(1);
    }
    expect(cells[0]!.replay.ratio).toBe(1);
    expect(cells[0]!.ratio).toBe(1);
    await expect(measurePrograms({ mode: "quick", rounds: 1, allocators: ["free-list"] })).rejects.toThrow(/dlmalloc must be among/);
  }, BUILDS);

  test("`programs --quick` prints the table", () => {
    const result = spawnSync(
      process.execPath,
      ["--conditions=source", "--import", "../cli/scripts/register-ts.mjs", "src/cli.ts", "programs", "--quick", "--rounds", "1", "--allocators", "free-list"],
      { cwd: PACKAGE_DIR, encoding: "utf8" },
    );
    expect(result.status, result.stderr).toBe(0);
    for (const p of PROGRAMS) {
      for (const allocator of ["dlmalloc", "free-list"]) expect(result.stdout).toMatch(new RegExp(`\\| ${p.name} \\| ${allocator} \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| [\\d.]+ MiB \\| [\\d,]+ \\| same \\| [\\d.]+ % \\| [\\d.]+ % \\|`));
    }
    for (const p of PROGRAMS) expect(result.stdout).toMatch(new RegExp(`\\| ${p.name} \\| free-list \\| [\\d.]+ \\| [\\d.]+× \\| [\\d.]+ \\| [\\d.]+ \\|`));
    expect(result.stdout).toMatch(/Locality: .* Traces: binary-trees 10 \(/);
    expect(result.stderr).toMatch(/load average/);
  }, BUILDS);

  const hasClang = spawnSync("clang", ["--version"], { stdio: "ignore" }).status === 0;
  test.skipIf(!hasClang)("build.sh rebuilds the committed modules byte for byte (skipped without clang)", () => {
    const out = mkdtempSync(join(tmpdir(), "alloc-programs-build-"));
    try {
      const result = spawnSync("sh", [join(PROGRAMS_DIR, "build.sh"), out], { encoding: "utf8" });
      expect(result.status, result.stderr).toBe(0);
      for (const file of [...PROGRAMS.map((p) => p.file), "dlmalloc.wasm"]) {
        expect(Buffer.compare(readFileSync(join(out, file)), readFileSync(join(PROGRAMS_DIR, file))), file).toBe(0);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
