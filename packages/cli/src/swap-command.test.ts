import { runWasi } from "@alloc/swap";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { run } from "./index.ts";

async function alloc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await run(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

const fixture = (name: string) => fileURLToPath(new URL(`../../swap/fixtures/${name}.wasm`, import.meta.url));

describe("alloc swap", () => {
  test("swaps a C program's dlmalloc: prints what it found, replaced and removed, and the sizes; the program runs the same", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "alloc-swap-")), "out.wasm");
    const r = await alloc("swap", fixture("realloc_growth"), "-o", out, "-s", "size-classes,free-list");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^found: malloc \(malloc, by name\), dlmalloc .*realloc \(realloc, by name\)/m);
    expect(r.out).toMatch(/^replaced: malloc, dlmalloc -> malloc; free, dlfree -> free; realloc -> realloc$/m);
    expect(r.out).toMatch(/^removed, the old allocator: .*\bsbrk\b/m);
    expect(r.out).toMatch(/^heap: from 70848 .* through the initial memory \(131,072 bytes\), then memory.grow$/m);
    const size = readFileSync(out).byteLength;
    expect(r.out).toContain(`size-classes > free-list > heap-base: 32,656 -> ${size.toLocaleString("en-US")} bytes`);
    expect(r.out).toMatch(/^note: enabled bulk memory/m);
    expect(r.out).toContain(`wrote ${out}`);
    const [before, after] = await Promise.all([runWasi(readFileSync(fixture("realloc_growth"))), runWasi(readFileSync(out))]);
    expect(after.exitCode).toBe(0);
    expect(Buffer.from(after.stdout).equals(Buffer.from(before.stdout))).toBe(true);
  });

  test("refusals are one line and exit 2: stripped, bump with malloc_usable_size, unknown strategy, missing file", async () => {
    const stripped = await alloc("swap", fixture("strings.stripped"));
    expect(stripped.code).toBe(2);
    expect(stripped.err).toMatch(/^alloc: swap: the module has no name section .*--strip-all/);
    const bump = await alloc("swap", fixture("memalign"), "-s", "bump");
    expect(bump.code).toBe(2);
    expect(bump.err).toMatch(/malloc_usable_size/);
    expect((await alloc("swap", fixture("strings"), "-s", "tlsf")).err).toMatch(/unknown strategy "tlsf"/);
    expect((await alloc("swap", "/nonexistent.wasm")).err).toMatch(/cannot read \/nonexistent.wasm/);
    for (const r of [stripped, bump]) expect(r.err.trim().split("\n")).toHaveLength(1);
  });

  test("--no-bulk-memory says so", async () => {
    const r = await alloc("swap", fixture("calloc"), "--no-bulk-memory", "--opt", "none");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^bulk memory: off/m);
    expect(r.out).toContain("(nothing written: give -o OUT.wasm)");
  });
});

describe("alloc replay --module", () => {
  test("replays against a compiled module's own malloc, free and realloc (wasi-libc's dlmalloc), every block verified", async () => {
    const r = await alloc("replay", "--module", fixture("dlmalloc"), "-w", "small-churn,realloc-growth");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/dlmalloc\.wasm \(its own allocator\): \d+ bytes/);
    expect(r.out).toMatch(/^small-churn\(seed 1\): 20000 ops .* 0 failed, .* every block verified$/m);
    expect(r.out).toMatch(/^realloc-growth\(seed 1\): \d+ ops .* 0 failed, .* every block verified$/m);
  });

  test("a module without the C ABI exported is refused with how to build one", async () => {
    const r = await alloc("replay", "--module", fixture("strings"), "-w", "small-churn");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/does not export the function malloc: build it with .*-Wl,--export=malloc/);
  });
});

describe("alloc record", () => {
  test("records a program's allocator calls; alloc replay replays the trace against ours and against the program's own dlmalloc", async () => {
    const trace = join(mkdtempSync(join(tmpdir(), "alloc-record-")), "strings.trace");
    const r = await alloc("record", fixture("strings"), "-o", trace);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/strings\.wasm: exit code 0, \d+ bytes of output/);
    const [, ops, allocs, frees] = /recorded (\d+) operations \((\d+) Alloc, (\d+) Free, 0 Realloc\)/.exec(r.out)!.map(Number);
    expect(allocs).toBe(frees);
    expect(readFileSync(trace, "utf8").trim().split("\n")).toHaveLength(ops!);
    for (const module of [[], ["--module", fixture("dlmalloc")]]) {
      const replayed = await alloc("replay", trace, ...module);
      expect(replayed.code).toBe(0);
      expect(replayed.out).toContain(`strings.trace: ${ops} ops in`);
      expect(replayed.out).toContain("0 failed");
    }
  });

  test("-o is required", async () => {
    const r = await alloc("record", fixture("strings"));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--out/);
  });
});

test("alloc swap --record: a module that reports every allocator call to alloc_record imports", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "alloc-swap-")), "rec.wasm");
  const r = await alloc("swap", fixture("realloc_growth"), "--record", "--opt", "none", "-o", out);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^recording: every allocator call is reported/m);
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(out)));
  expect(imports.filter((i) => i.module === "alloc_record").map((i) => i.name).sort()).toEqual(["alloc", "free", "realloc"]);
});
