import { binaryen } from "@alloc/core";
import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { counterExports, instrumentInstructions, readInstructionCounts } from "./instructions.ts";
import { PACKAGE_DIR } from "./paths.ts";
import { isAllocatorFunction, programInstructions, PROGRAMS } from "./programs.ts";

/**
 * sum(n): 0 + 1 + ... + n in a loop; twice(n): sum(n) + sum(n); pick(n): an if with two arms.
 * Instructions per region (see instructions.ts):
 *   sum's loop body, per iteration that goes on: br_if, i32.eqz, local.get (3) + local.set,
 *   i32.add, local.get, local.get (4) + local.set, i32.sub, local.get, i32.const (4) + br (1) = 12;
 *   the last iteration: 3; after the loop: local.get (1). sum(n) = 12 n + 4.
 *   twice: i32.add, call, local.get, call, local.get = 5 (and the two sums).
 *   pick: if, local.get (2) + the arm that runs: i32.const (1) = 3.
 */
function handMade(): Uint8Array {
  const m = new binaryen.Module();
  try {
    const { i32 } = binaryen;
    const get = (i: number) => m.local.get(i, i32);
    m.addFunction(
      "sum",
      binaryen.createType([i32]),
      i32,
      [i32],
      m.block(null, [
        m.block("done", [
          m.loop(
            "next",
            m.block(null, [
              m.br("done", m.i32.eqz(get(0))),
              m.local.set(1, m.i32.add(get(1), get(0))),
              m.local.set(0, m.i32.sub(get(0), m.i32.const(1))),
              m.br("next"),
            ]),
          ),
        ]),
        get(1),
      ], i32),
    );
    m.addFunction("twice", binaryen.createType([i32]), i32, [], m.i32.add(m.call("sum", [get(0)], i32), m.call("sum", [get(0)], i32)));
    m.addFunction("pick", binaryen.createType([i32]), i32, [], m.if(get(0), m.i32.const(1), m.i32.const(2)));
    for (const name of ["sum", "twice", "pick"]) m.addFunctionExport(name, name);
    expect(m.validate()).toBeTruthy();
    // With the name section: the counts are reported by name.
    const debugInfo = binaryen.getDebugInfo();
    binaryen.setDebugInfo(true);
    try {
      return m.emitBinary();
    } finally {
      binaryen.setDebugInfo(debugInfo);
    }
  } finally {
    m.dispose();
  }
}

describe("executed instructions, counted per function", () => {
  test("a hand-made module: exact counts per function, calls, and unchanged results", () => {
    const instrumented = instrumentInstructions(handMade());
    expect(instrumented.functions).toEqual(["sum", "twice", "pick"]);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(instrumented.binary as BufferSource), {});
    const fn = (name: string) => instance.exports[name] as (n: number) => number;
    expect(fn("twice")(10)).toBe(110);
    expect(fn("pick")(1)).toBe(1);
    expect(fn("pick")(0)).toBe(2);
    expect(readInstructionCounts(instance, instrumented)).toEqual([
      { name: "sum", instructions: 2 * (12 * 10 + 4), calls: 2 },
      { name: "pick", instructions: 3 + 3, calls: 2 },
      { name: "twice", instructions: 5, calls: 1 },
    ]);
    // The counters are plain exported globals: zeroing one restarts its count.
    (instance.exports[counterExports(0).instructions] as WebAssembly.Global).value = 0n;
    fn("sum")(0);
    expect(readInstructionCounts(instance, instrumented).find((f) => f.name === "sum")).toEqual({ name: "sum", instructions: 4, calls: 3 });
  });

  test("binary-trees: dlmalloc's free runs once per node, the counts are deterministic, the output unchanged", async () => {
    const program = PROGRAMS.find((p) => p.name === "binary-trees")!;
    // Depth 10: the stretch tree (4,095 nodes), the long-lived tree (2,047) and 1,024 trees of
    // 31, 256 of 127, 64 of 511 and 16 of 2,047 nodes: 135,854 nodes, each freed once.
    const dlmalloc = await programInstructions(program, "dlmalloc", ["10"]);
    expect(dlmalloc.stdout).toMatch(/^stretch tree of depth 11\t check: 4095\n/);
    expect(dlmalloc.functions.find((f) => f.name === "free")!.calls).toBe(135_854);
    expect(dlmalloc.inAllocator).toBeGreaterThan(0);
    expect(dlmalloc.inAllocator).toBeLessThan(dlmalloc.total);
    const freeList = await programInstructions(program, "free-list", ["10"]);
    expect(freeList.stdout).toBe(dlmalloc.stdout);
    expect(freeList.functions.some((f) => f.name.startsWith("~alloc/free-list/"))).toBe(true);
    expect(await programInstructions(program, "free-list", ["10"])).toEqual(freeList);
    expect(isAllocatorFunction("~alloc/free-list/release") && isAllocatorFunction("dlfree") && isAllocatorFunction("malloc")).toBe(true);
    expect(isAllocatorFunction("make")).toBe(false);
  }, 300_000);

  test("`programs --instructions` prints the table", () => {
    const result = spawnSync(
      process.execPath,
      ["--conditions=source", "--import", "../cli/scripts/register-ts.mjs", "src/cli.ts", "programs", "--instructions", "--quick", "--programs", "binary-trees", "--allocators", "free-list"],
      { cwd: PACKAGE_DIR, encoding: "utf8" },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/\| binary-trees 10 \| dlmalloc \| [\d.]+ M \| 1\.00× \| [\d.]+ M \| free [\d.]+ × 135,854/);
    expect(result.stdout).toMatch(/\| binary-trees 10 \| free-list \| [\d.]+ M \| [\d.]+× \| [\d.]+ M \| ~alloc\/free-list\//);
  }, 300_000);
});
