import { AllocConfigError } from "@alloc/core";
import { describe, expect, test } from "vitest";
import { catalog, Session } from "./session.ts";
import { StateCodec } from "./state.ts";

const codec = new StateCodec(catalog());
const TRACE = "Alloc(16),\nAlloc(100),\nRealloc(0,4000),\nFree(1),\nAlloc(24),\n";

describe("a session (what the page's worker runs)", () => {
  test("runs a pasted trace on a debug build and reports the heap after it", async () => {
    const session = await Session.build(codec.parse("strategy=size-classes,free-list&debug=1"));
    expect(session.report.composition).toBe("size-classes > free-list > grow");
    expect(session.report.wat).toContain("(export \"heap_check\"");
    const r = await session.run({ kind: "text", name: "pasted", text: TRACE });
    expect(r).toMatchObject({ trace: "pasted", operations: 5, failedAllocations: 0, peakLiveBytes: 4100, liveBytesAtEnd: 4024, command: undefined });
    expect(r.work.malloc.count).toBe(3);
    expect(r.work.realloc.count).toBe(1);
    expect(r.heap!.layers.map((l) => l.layer)).toEqual(["size-classes", "free-list"]);
    // The two live blocks of the trace, in their layers, and the driver's own two blocks.
    expect(r.heap!.layers.reduce((n, l) => n + l.usedBlocks, 0)).toBeGreaterThanOrEqual(4);
  });

  test("an imported memory and a static region replay too", async () => {
    for (const query of ["memory=import&workload=realloc-growth", "backend=static&static-start=65536&static-size=33554432&workload=realloc-growth"]) {
      const state = codec.parse(query);
      const session = await Session.build(state);
      const r = await session.run({ kind: "workload", name: state.workload, seed: state.seed });
      expect(r.failedAllocations).toBe(0);
      expect(r.operations).toBeGreaterThan(1000);
      expect(r.work.all.count).toBe(r.work.malloc.count + r.work.free.count + r.work.realloc.count);
      expect(r.command).toBe(`pnpm alloc ${codec.cliArguments(state, "replay").join(" ")}`);
    }
    const imported = await Session.build(codec.parse("memory=import"));
    expect(imported.report.imports).toEqual(['"env"."memory" (memory)']);
  });

  test("a trace that needs a function the module does not export is refused before it runs", async () => {
    const session = await Session.build(codec.parse("exports=malloc,free"));
    await expect(session.run({ kind: "text", name: "pasted", text: TRACE })).rejects.toThrow("pasted needs realloc among the exports");
  });

  test("bad options are the build's own errors", async () => {
    await expect(Session.build(codec.parse("min-align=3"))).rejects.toThrow(AllocConfigError);
    await expect(Session.build(codec.parse("backend=static&static-start=100&static-size=65536"))).rejects.toThrow(/start/);
  });
});
