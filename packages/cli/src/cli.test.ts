import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { run } from "./index.ts";

async function alloc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await run(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

describe("alloc build", () => {
  test("builds, prints size and exports, writes .wasm and .wat that work", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-cli-"));
    const wasm = join(dir, "a.wasm"), wat = join(dir, "a.wat");
    const r = await alloc("build", "--strategy", "bump", "--exports", "malloc,free", "-o", wasm, "--wat", wat);
    expect(r.code).toBe(0);
    const size = readFileSync(wasm).byteLength;
    expect(r.out).toContain(`bump > grow: ${size} bytes (optimised for size)`);
    expect(r.out).toContain("exports: malloc, free, memory");
    expect(readFileSync(wat, "utf8")).toContain('(export "malloc"');
    const { instance } = await WebAssembly.instantiate(readFileSync(wasm));
    const malloc = instance.exports.malloc as (n: number) => number;
    expect(malloc(8)).not.toBe(malloc(8));
  });

  test("the default stack is the free list alone, over the grow backend", async () => {
    const r = await alloc("build");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^free-list > grow: \d+ bytes/m);
  });

  test("--demo runs the allocator", async () => {
    const r = await alloc("build", "--strategy", "bump", "--demo");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/malloc\(16\) = [1-9]\d*/);
    expect(r.out).toMatch(/malloc\(4 GiB - 1\) = 0 /);
  });

  test("--debug builds the debug build: heap_check exported, the demo ends with the walker's statistics", async () => {
    const r = await alloc("build", "--debug", "--demo", "--strategy", "size-classes,free-list");
    expect(r.code).toBe(0);
    expect(r.out).toContain("exports: malloc, free, calloc, realloc, aligned_alloc, heap_check, memory");
    expect(r.out).toMatch(/heap check passed: size-classes: \d+ used blocks .*; free-list: \d+ used blocks/);
    const release = await alloc("build");
    expect(Number(/(\d+) bytes/.exec(r.out)![1])).toBeGreaterThan(Number(/(\d+) bytes/.exec(release.out)![1]));
  });

  test("--strategy fail: every allocation is 0, alone or in the debug build", async () => {
    for (const debug of [[], ["--debug"]]) {
      const r = await alloc("build", "--strategy", "fail", "--demo", ...debug);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^fail > grow: \d+ bytes/m);
      expect(r.out).toContain("malloc(16) = 0\n");
      expect(r.out).toContain("malloc(24) = 0\n");
      if (debug.length) expect(r.out).toContain("heap check passed: no layer keeps a heap;");
    }
  });

  test("--strategy page: every block on fresh pages; size-classes may sit on it", async () => {
    const r = await alloc("build", "--strategy", "page", "--demo");
    expect(r.code).toBe(0);
    expect(r.out).toContain("malloc(16) = 65536\n");
    expect(r.out).toContain("malloc(100) = 131072\n");
    const stacked = await alloc("build", "--strategy", "size-classes,page", "--demo");
    expect(stacked.code).toBe(0);
    expect(stacked.out).toMatch(/^size-classes > page > grow: \d+ bytes/m);
  });

  test("--threads builds a thread-safe allocator over an imported shared memory, --wait one that sleeps", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-cli-"));
    const wat = join(dir, "t.wat");
    const r = await alloc("build", "--threads", "--wait", "-s", "size-classes,free-list", "--demo", "--wat", wat);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain('imports: memory "env"."memory" (shared, maximum 65536 pages)');
    expect(r.out).toMatch(/malloc\(16\) = [1-9]\d*/);
    const text = readFileSync(wat, "utf8");
    expect(text).toContain("i32.atomic.rmw.cmpxchg");
    expect(text).toContain("memory.atomic.wait32");
    const at = await alloc("build", "--threads", "--state-address", "2048", "--wat", wat);
    expect(at.code).toBe(0);
    expect(readFileSync(wat, "utf8")).toMatch(/cmpxchg offset=2048/);
  });

  test.each([
    [["--threads", "--memory", "export"], /--threads imports its memory .* leave out --memory/],
    [["--wait"], /--wait applies to a thread-safe build: add --threads/],
    [["--state-address", "2048"], /--state-address applies to a thread-safe build/],
    [["--threads", "--exclusive"], /exclusive needs a memory whose size at start is known; an imported memory's is not/],
    [["--threads", "--state-address", "1027"], /threads\.stateAddress must be a positive multiple of 8/],
    [["--thread-cache", "-s", "size-classes,free-list"], /--thread-cache applies to a thread-safe build: add --threads/],
    [["--threads", "--thread-cache-class-bytes", "2048"], /--thread-cache-class-bytes applies to a build with thread caches: add --thread-cache/],
    [["--threads", "--thread-cache", "-s", "bump"], /threadCache: the top strategy "bump" .* put size-classes on top \(-s size-classes,bump\)/],
  ])("alloc build %j fails in one line", async (args, message) => {
    const r = await alloc("build", ...args);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split("\n")).toHaveLength(1);
  });

  test("every flag reaches the build: static backend, imported memory, renamed prefix, speed", async () => {
    const r = await alloc(
      "build", "-s", "bump", "-b", "static", "--static-start", "64KiB", "--static-size", "0x20000",
      "-m", "import", "--opt", "speed", "--prefix", "~mine", "--min-align", "16", "--no-bulk-memory", "--demo",
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("bump > static(start=65536,size=131072):");
    expect(r.out).toContain('imports: memory "env"."memory"');
    expect(r.out).toContain("malloc(16) = 65536");
  });

  test.each([
    [["build", "--strategy", "nope"], /unknown strategy "nope"/],
    [["build", "--strategy", "size-classes,fail"], /strategy "size-classes" cannot sit on top of "fail": "fail" must be the top of the stack/],
    [["build", "--strategy", "fail,bump"], /strategy "fail" cannot sit on top of "bump": "fail" must be the bottom of the stack/],
    [["build", "--strategy", "page,bump"], /strategy "page" cannot sit on top of "bump"/],
    [["build", "--static-start", "65536"], /need --backend static/],
    [["build", "--backend", "static"], /needs --static-start and --static-size/],
    [["build", "--backend", "static", "--static-start", "65536", "--static-size", "65536", "--grow-max-pages", "3"], /apply to --backend grow/],
    [["build", "--min-align", "3"], /minAlign must be a power of two/],
    [["build", "--exports", "malloc,frea"], /unknown function "frea"/],
    [["build", "--memory", "import", "--maximum-pages", "4"], /imported memory's maximum/],
    [["build", "--static-size", "lots"], /not a whole number/],
    [["build", "--bogus"], /unknown option '--bogus'/],
    [["build", "--backend", "mmap"], /unknown backend "mmap" \(known: grow, static\)/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    // Contradictions are refused, not settled silently by the last flag.
    [["build", "--exclusive", "--no-exclusive"], /--exclusive and --no-exclusive contradict each other/],
    [["build", "-s", "bump", "--strategy", "free-list"], /--strategy is given twice/],
    [["build", "--exports", ""], /--exports.*needs at least one name/],
    [["build", "--exports", " , "], /needs at least one name/],
    [["build", "--exports", "free", "--demo"], /--demo calls malloc: add malloc to --exports/],
    [["build", "--growth", "lots"], /"lots" is not "exact" or a fraction/],
    [["build", "--growth", "1/3"], /growth must be "exact" or a fraction .* got 0\.333/],
    [["build", "-b", "static", "--static-start", "64KiB", "--static-size", "64KiB", "--growth", "exact"], /apply to --backend grow/],
    [["build", "--min-align", "3"], /got 3\b/],
  ])("%j fails with a clear message", async (argv, message) => {
    const r = await alloc(...argv);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(message);
    expect(r.out).toBe("");
  });

  test("--help lists every option, strategy and export", async () => {
    const r = await alloc("build", "--help");
    expect(r.code).toBe(0);
    for (const word of ["--strategy", "--backend", "--static-start", "--memory", "--exports", "--opt", "--wat", "bump", "page", "fail", "aligned_alloc"]) {
      expect(r.out).toContain(word);
    }
  });
});

describe("alloc build output files", () => {
  test.each([
    ["-o into a missing directory", (dir: string) => ["-o", join(dir, "missing", "a.wasm")], /cannot write -o .*: the directory .*missing does not exist/],
    ["-o onto a directory", (dir: string) => ["-o", dir], /cannot write -o .*: it is a directory/],
    ["--wat into a missing directory", (dir: string) => ["--wat", join(dir, "missing", "a.wat")], /cannot write --wat .*missing does not exist/],
    ["--wat onto a directory, after a good -o", (dir: string) => ["-o", join(dir, "ok.wasm"), "--wat", dir], /cannot write --wat .*: it is a directory/],
  ])("%s: one line, a non-zero exit, nothing printed or written as done", async (_name, args, message) => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-out-"));
    const r = await alloc("build", ...args(dir));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.out).toBe("");
    expect(existsSync(join(dir, "ok.wasm"))).toBe(false);
  });

  test("--growth and --exclusive reach the grow backend", async () => {
    const sizes = await Promise.all(
      [[], ["--growth", "exact"], ["--exclusive"], ["--exclusive", "--growth", "exact"]].map(async (flags) => {
        const r = await alloc("build", "-s", "bump", "-e", "malloc,free", ...flags);
        expect(r.code).toBe(0);
        return Number(/(\d+) bytes/.exec(r.out)![1]);
      }),
    );
    const [grown, exact, exclusive, exclusiveExact] = sizes as [number, number, number, number];
    expect(exact).toBeLessThan(grown);
    expect(exclusive).toBeLessThan(grown);
    expect(exclusiveExact).toBeLessThan(exclusive);
  });
});

describe("alloc replay", () => {
  test("replays built-in workloads and trace files inside Wasm and reports what it measured", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-replay-"));
    const file = join(dir, "t.trace");
    writeFileSync(file, "Alloc(10),\nAlloc(20),\nFree(0),\nRealloc(1,300),\nAlloc(5),\n");
    const r = await alloc("replay", file, "--workload", "small-churn", "--strategy", "bump");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/t\.trace: 5 ops in .* 0 failed, peak memory \d+ B, peak live 305 B, every block verified/);
    expect(r.out).toMatch(/small-churn\(seed 1\): \d+ ops/);
  });

  test("--debug checks the heap after each trace", async () => {
    const ok = await alloc("replay", "--debug", "-w", "small-churn", "-s", "size-classes,free-list");
    expect(ok.err).toBe("");
    expect(ok.out).toMatch(/small-churn\(seed 1\): .*\n  heap check passed: size-classes:/);
  });

  test("a malformed trace is refused with its line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-replay-"));
    const file = join(dir, "bad.trace");
    writeFileSync(file, "Alloc(8),\nFree(0),\nFrob(3),\n");
    const r = await alloc("replay", file, "-s", "bump");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bad\.trace:3: .*Frob/);
  });

  test.each([
    [["replay", "-s", "bump"], /needs trace files or --workload/],
    [["replay", "-w", "nope", "-s", "bump"], /unknown workload "nope"/],
    [["replay", "/nonexistent/x.trace", "-s", "bump"], /cannot read trace/],
    [["replay", "-w", "small-churn", "-s", "bump", "-s", "bump"], /--strategy is given twice/],
  ])("%j fails clearly", async (argv, message) => {
    const r = await alloc(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  test("--map draws the trace's heap map; --compare puts a second stack beside it on the same scales", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-map-"));
    const svg = join(dir, "m.svg"), html = join(dir, "m.html");
    const r = await alloc("replay", "-w", "phase-change", "--map", svg, "--compare", "size-classes,free-list");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const peak = /phase-change\(seed 1\): .* peak live (\d+) B/.exec(r.out)![1];
    expect(r.out).toMatch(/^size-classes > free-list > grow: \d+ bytes$/m);
    expect(r.out).toContain(`wrote ${svg} (heap map, `);
    const picture = readFileSync(svg, "utf8");
    const panels = [...picture.matchAll(/<g class="heap-map"[^>]*data-label="([^"]*)"[^>]*data-address-high="(\d+)"[^>]*data-peak-live-bytes="(\d+)"/g)];
    expect(panels.map((m) => m[1])).toEqual(["free-list &gt; grow", "size-classes &gt; free-list &gt; grow"]);
    expect(panels.map((m) => m[3])).toEqual([peak, peak]);
    expect(panels[0]![2]).toBe(panels[1]![2]);
    const page = await alloc("replay", "-w", "small-churn", "--map", html);
    expect(page.code).toBe(0);
    expect(readFileSync(html, "utf8")).toMatch(/^<!doctype html>[\s\S]*<svg [\s\S]*id="heap-map-data"/);
  });

  test.each([
    [["replay", "-w", "small-churn", "--map", "m.png"], /--map writes an .svg or an .html file, got "m.png"/],
    [["replay", "-w", "small-churn,transcoder", "--map", "m.svg"], /--map draws one trace: give one trace file or workload, not 2/],
    [["replay", "-w", "small-churn", "--compare", "bump", "--module", "x.wasm"], /--compare and --module contradict each other/],
    [["replay", "-w", "small-churn", "--compare", "nope"], /unknown strategy "nope"/],
  ])("%j fails clearly", async (argv, message) => {
    const r = await alloc(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  test("a static region too small for the driver's data: one line naming the trace and the fix, exit 1", async () => {
    const r = await alloc("replay", "-w", "small-churn", "-s", "bump", "-b", "static", "--static-start", "64KiB", "--static-size", "64KiB");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^alloc: small-churn\(seed 1\): .*driver's data.*try a larger --static-size\)\n$/);
  });

  test("a failed replay with --map says that no map was written, and writes none", async () => {
    const svg = join(mkdtempSync(join(tmpdir(), "alloc-map-")), "never.svg");
    const r = await alloc("replay", "-w", "small-churn", "-s", "bump", "-b", "static", "--static-start", "64KiB", "--static-size", "64KiB", "--map", svg);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`alloc: no heap map written to ${svg}: the replay failed\n`);
    expect(existsSync(svg)).toBe(false);
  });
});

describe("--memory64", () => {
  test("alloc build --memory64 writes a memory64 module whose malloc takes and returns i64", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-cli-"));
    const wasm = join(dir, "a.wasm");
    const r = await alloc("build", "--memory64", "-s", "size-classes,free-list", "-o", wasm);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const size = readFileSync(wasm).byteLength;
    expect(r.out).toContain(`size-classes > free-list > grow: ${size} bytes (optimised for size, memory64)`);
    const { instance } = await WebAssembly.instantiate(readFileSync(wasm));
    const malloc = instance.exports.malloc as (n: bigint) => bigint;
    const [a, b] = [malloc(24n), malloc(24n)];
    expect(a).not.toBe(0n);
    expect(b - a).toBeGreaterThanOrEqual(24n);
  });

  test("--demo on a 64-bit build", async () => {
    const r = await alloc("build", "--memory64", "--demo", "--debug");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/malloc\(16\) = [1-9]\d*/);
    expect(r.out).toMatch(/malloc\(2\^53 - 1\) = 0 /);
    expect(r.out).toMatch(/heap check passed: free-list: /);
  });

  test("alloc replay --memory64 replays and verifies every block on the 64-bit build", async () => {
    const r = await alloc("replay", "--memory64", "-s", "size-classes,free-list", "-w", "compiler,realloc-growth");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^size-classes > free-list > grow \(memory64\): \d+ bytes$/m);
    expect(r.out).toMatch(/^compiler\(seed 1\): \d+ ops .* 0 failed, .*every block verified$/m);
    expect(r.out).toMatch(/^realloc-growth\(seed 1\): \d+ ops .* 0 failed, .*every block verified$/m);
  });

  test("refused in one line where it does not apply", async () => {
    const r = await alloc("replay", "--memory64", "--module", "x.wasm", "-w", "compiler");
    expect(r.code).toBe(2);
    expect(r.err).toBe("alloc: --memory64 builds a composition; --module replays a compiled module as it is: give one of them\n");
    const big = await alloc("build", "--grow-max-pages", "70000");
    expect(big.code).toBe(2);
    expect(big.err).toMatch(/^alloc: grow backend: maximumPages \(70000\) is above 65535, the most a wasm32 memory can hold: build with memory64 for more\n$/);
    expect((await alloc("build", "--grow-max-pages", "70000", "--memory64")).code).toBe(0);
  });

  test("--help documents it", async () => {
    const r = await alloc("build", "--help");
    expect(r.out).toMatch(/--memory64\s+64-bit build: i64 pointers and sizes/);
  });
});
