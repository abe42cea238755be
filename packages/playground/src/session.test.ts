import { STRATEGIES } from "@alloc/cli/registry";
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
    expect(session.report.layers.map((l) => l.name)).toEqual(["size-classes", "free-list", "grow"]);
    expect(session.report.layers[0]!.options).toMatchObject({ maxSmall: 1024, classes: 128 });
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
    for (const query of ["memory=import&workload=realloc-growth", "backend=static(start=64KiB,size=32MiB)&workload=realloc-growth"]) {
      const state = codec.parse(query);
      const session = await Session.build(state);
      const r = await session.run({ kind: "workload", name: state.workload, seed: state.seed });
      expect(r.failedAllocations).toBe(0);
      expect(r.operations).toBeGreaterThan(1000);
      expect(r.work.all.count).toBe(r.work.malloc.count + r.work.free.count + r.work.realloc.count);
      expect(r.command).toMatch(/^pnpm alloc replay --workload realloc-growth --seed 1 /);
    }
    expect((await Session.build(codec.parse("backend=static(start=64KiB,size=32MiB)"))).report.command).toContain('--backend "static(start=64KiB,size=32MiB)"');
    const imported = await Session.build(codec.parse("memory=import"));
    expect(imported.report.imports).toEqual(['"env"."memory" (memory)']);
  });

  test("a trace that needs a function the module does not export is refused before it runs", async () => {
    const session = await Session.build(codec.parse("exports=malloc,free"));
    await expect(session.run({ kind: "text", name: "pasted", text: TRACE })).rejects.toThrow("pasted needs realloc among the exports");
  });

  test("options of strategies and backends are the CLI's, with its messages", async () => {
    const session = await Session.build(codec.parse("strategy=size-classes(maxSmall=512),free-list(fit=first)&backend=grow(growth=exact)"));
    expect(session.report.composition).toBe("size-classes(maxSmall=512) > free-list(fit=first) > grow(growth=exact)");
    expect(session.report.stack).toEqual([
      { name: "size-classes", options: { maxSmall: 512 } },
      { name: "free-list", options: { fit: "first" } },
    ]);
    expect(session.report.command).toBe('pnpm alloc build --strategy "size-classes(maxSmall=512),free-list(fit=first)" --backend "grow(growth=exact)" -o alloc.wasm');
  });

  test.each([
    ["strategy=size-classes,nope", `unknown strategy "nope" (known: ${Object.keys(STRATEGIES).join(", ")})`],
    ["strategy=free-list(fit=worst)", 'free-list: fit must be one of bins, first, got "worst"'],
    ["backend=mmap", 'unknown backend "mmap"'],
    ["backend=static(start=64KiB)", "--backend static needs"],
    ["min-align=3", "minAlign"],
  ])("%s is refused by the build (AllocConfigError)", async (query, message) => {
    const build = Session.build(codec.parse(query));
    await expect(build).rejects.toThrow(AllocConfigError);
    await expect(Session.build(codec.parse(query))).rejects.toThrow(message);
  });
});
