import { buildAllocator, growBackend } from "@alloc/core";
import { freeList } from "@alloc/free-list";
import { sizeClasses } from "@alloc/size-classes";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { run } from "./index.ts";
import { OPTION_SIZES } from "./option-sizes.data.ts";
import { measureOptionSizes } from "./option-sizes.ts";
import { parseSpecs } from "./options.ts";
import { BACKENDS, STRATEGIES } from "./registry.ts";

async function alloc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await run(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

/** The binary `alloc build ARGS -o file` writes. */
async function built(...argv: string[]): Promise<Uint8Array> {
  const file = join(mkdtempSync(join(tmpdir(), "alloc-options-")), "a.wasm");
  const r = await alloc("build", ...argv, "-o", file);
  expect(r.err).toBe("");
  return new Uint8Array(readFileSync(file));
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("the stack grammar", () => {
  test("names top first, each with options in parentheses; a bare option has no value", () => {
    const specs = parseSpecs(" size-classes(maxSmall=512, spanBytes=32KiB) ,free-list(fit=first),bump", "--strategy");
    expect(specs.map((s) => [s.name, [...s.options]])).toEqual([
      ["size-classes", [["maxSmall", "512"], ["spanBytes", "32KiB"]]],
      ["free-list", [["fit", "first"]]],
      ["bump", []],
    ]);
    expect([...parseSpecs("grow(exclusive)", "--backend")[0]!.options]).toEqual([["exclusive", undefined]]);
  });
});

describe("every option reaches the build", () => {
  // Each sample through the CLI gives the very module the API gives with that option, and a
  // module other than the default one.
  const cases: [string, string[], () => Uint8Array][] = [
    ["free-list(fit=first)", ["-s", "free-list(fit=first)"], () => buildAllocator({ strategy: freeList({ fit: "first" }) }).binary],
    ...(
      [
        ["maxSmall=256", { maxSmall: 256 }],
        ["maxSmall=4KiB", { maxSmall: 4096 }],
        ["classes=16", { classes: 16 }],
        ["spanBytes=0x1000", { spanBytes: 4096 }],
        ["spanBlocks=8", { spanBlocks: 8 }],
        ["spanDoublings=0", { spanDoublings: 0 }],
        ["spareSpans=16", { spareSpans: 16 }],
      ] as const
    ).map(
      ([text, options]) =>
        [
          `size-classes(${text})`,
          ["-s", `size-classes(${text}),free-list`],
          () => buildAllocator({ strategy: [sizeClasses(options), freeList()] }).binary,
        ] as [string, string[], () => Uint8Array],
    ),
    ["grow(growth=exact)", ["-b", "grow(growth=exact)"], () => buildAllocator({ strategy: freeList(), backend: growBackend({ growth: "exact" }) }).binary],
    ["grow(exclusive)", ["-b", "grow(exclusive)"], () => buildAllocator({ strategy: freeList(), backend: growBackend({ exclusive: true }) }).binary],
    ["grow(maximumPages=256)", ["-b", "grow(maximumPages=256)"], () => buildAllocator({ strategy: freeList(), backend: growBackend({ maximumPages: 256 }) }).binary],
  ];
  test.each(cases)("%s", async (_name, argv, api) => {
    const cli = await built(...argv);
    expect(same(cli, api())).toBe(true);
    const defaults = argv[0] === "-s" ? await built("-s", argv[1]!.replace(/\([^)]*\)/g, "")) : await built();
    expect(same(cli, defaults)).toBe(false);
  });

  test("the static backend's options, inline or as the older flags, build the same module", async () => {
    const inline = await built("-b", "static(start=64KiB,size=2MiB)");
    expect(same(inline, await built("-b", "static", "--static-start", "0x10000", "--static-size", "2MiB"))).toBe(true);
    expect(same(inline, await built("-b", "static(start=64KiB)", "--static-size", "2MiB"))).toBe(true);
  });

  test("classes' derived default is the strategy's own: giving it explicitly builds the same module", async () => {
    const facts = JSON.parse((await alloc("build", "--json", "-s", "size-classes(maxSmall=512),free-list", "--min-align", "16")).out);
    expect(facts.stack[0].options.classes).toBe(32);
    const explicit = await built("-s", "size-classes(maxSmall=512,classes=32),free-list", "--min-align", "16");
    expect(same(explicit, await built("-s", "size-classes(maxSmall=512),free-list", "--min-align", "16"))).toBe(true);
  });
});

describe("bad options are one line naming the strategy, the option and what is allowed; exit 2", () => {
  test.each([
    [["-s", "size-classes(maxsmall=512),free-list"], /^alloc: size-classes: unknown option "maxsmall" \(options: maxSmall, classes, spanBytes, spanBlocks, spanDoublings, spareSpans\)$/],
    [["-s", "free-list(fit=best)"], /^alloc: free-list: fit must be one of bins, first, got "best"$/],
    [["-s", "size-classes(maxSmall=lots),free-list"], /^alloc: size-classes: maxSmall must be a byte size \(e\.g\. 4096, 0x1000, 4KiB\), got "lots"$/],
    [["-s", "size-classes(maxSmall=100000),free-list"], /^alloc: size-classes: maxSmall must be an integer from 1 to 65536, got 100000$/],
    [["-s", "size-classes(spareSpans=3),free-list"], /^alloc: size-classes: spareSpans must be 0 or a power of two up to 256, got 3$/],
    [["-s", "bump(fit=first)"], /^alloc: bump has no options, got fit$/],
    [["-s", "free-list(fit=first,fit=bins)"], /^alloc: free-list: option fit is given twice: give it once$/],
    [["-s", "free-list(fit=first"], /^alloc: --strategy: cannot read "free-list\(fit=first"/],
    [["-b", "grow(exclusive=maybe)"], /^alloc: grow: exclusive must be true or false, got "maybe"$/],
    [["-b", "grow(growth=1/3)"], /^alloc: grow backend: growth must be "exact" or a fraction/],
    [["-b", "grow(growth=exact)", "--growth", "1/4"], /^alloc: --growth and --backend grow\(growth=\.\.\.\) contradict each other: give one of them$/],
    [["-b", "static(start=64KiB)"], /^alloc: --backend static needs --static-start and --static-size \(or --backend "static\(start=64KiB,size=1MiB\)"\)$/],
    [["-b", "grow,static"], /^alloc: --backend takes one backend, got 2: grow,static$/],
  ])("%j", async (argv, message) => {
    const r = await alloc("build", ...argv);
    expect(r.code).toBe(2);
    expect(r.err.trimEnd()).toMatch(message);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.out).toBe("");
  });

  test("replay and swap take the same options and refuse the same mistakes", async () => {
    const replayed = await alloc("replay", "-w", "small-churn", "-s", "size-classes(maxSmall=256),free-list(fit=first)", "-b", "grow(growth=exact)");
    expect(replayed.err).toBe("");
    expect(replayed.out).toMatch(/^size-classes\(maxSmall=256\) > free-list\(fit=first\) > grow\(growth=exact\): \d+ bytes$/m);
    expect(replayed.out).toMatch(/small-churn.*every block verified/);
    const fixture = fileURLToPath(new URL("../../swap/fixtures/realloc_growth.wasm", import.meta.url));
    const swappedWith = await alloc("swap", fixture, "-s", "size-classes(maxSmall=256),free-list(fit=first)");
    expect(swappedWith.err).toBe("");
    expect(swappedWith.out).toMatch(/^size-classes\(maxSmall=256\) > free-list\(fit=first\) > heap-base: [\d,]+ -> [\d,]+ bytes/m);
    const swapped = await alloc("swap", "/nonexistent.wasm", "-s", "free-list(fit=worst)");
    expect(swapped.code).toBe(2);
    expect(swapped.err).toBe('alloc: free-list: fit must be one of bins, first, got "worst"\n');
  });
});

describe("alloc build --json", () => {
  test("prints the build's facts: bytes, exports and imports as the module has them, every option resolved", async () => {
    const dir = mkdtempSync(join(tmpdir(), "alloc-json-"));
    const file = join(dir, "a.wasm");
    const r = await alloc("build", "--json", "-s", "size-classes(spanBytes=4KiB),free-list", "-b", "grow(exclusive)", "-e", "malloc,free", "-o", file);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const facts = JSON.parse(r.out);
    const binary = readFileSync(file);
    expect(facts.bytes).toBe(binary.byteLength);
    const module = new WebAssembly.Module(binary);
    expect(facts.exports).toEqual(WebAssembly.Module.exports(module));
    expect(facts.exports.map((e: { name: string }) => e.name)).toEqual(["memory", "malloc", "free"]);
    expect(facts.imports).toEqual([]);
    expect(facts).toEqual({
      bytes: binary.byteLength,
      exports: facts.exports,
      imports: [],
      stack: [
        { name: "size-classes", options: { maxSmall: 1024, classes: 128, spanBytes: 4096, spanBlocks: 2, spanDoublings: 2, spareSpans: 4 } },
        { name: "free-list", options: { fit: "bins" } },
      ],
      backend: { name: "grow", options: { growth: 0.0625, exclusive: true, maximumPages: 65535 } },
      memory: { mode: "export", name: "memory", importModule: "env", initialPages: 1, maximumPages: 65535, shared: false, memory64: false },
      minAlign: 8,
      prefix: "~alloc",
      optimize: "size",
      bulkMemory: true,
      debug: false,
      stats: false,
      statsLayers: [],
      threads: null,
      threadCache: null,
      files: { wasm: file, wat: null },
    });
    // The instance really has the exports it lists.
    const { instance } = await WebAssembly.instantiate(binary);
    expect(Object.keys(instance.exports)).toEqual(["memory", "malloc", "free"]);
  });

  test("a 64-bit build's grow backend says its real default maximum (2^31 - 1 pages), not wasm32's", async () => {
    const facts = JSON.parse((await alloc("build", "--json", "--memory64")).out);
    expect(facts.backend.options.maximumPages).toBe(2 ** 31 - 1);
    const given = JSON.parse((await alloc("build", "--json", "--memory64", "--grow-max-pages", "100000")).out);
    expect(given.backend.options.maximumPages).toBe(100000);
  });

  test("a thread-safe build with thread caches says so", async () => {
    const facts = JSON.parse((await alloc("build", "--json", "--threads", "--thread-cache", "--thread-cache-max-size", "256", "-s", "size-classes,free-list")).out);
    expect(facts.threads).toEqual({ wait: false, stateAddress: null });
    expect(facts.threadCache).toEqual({ maxSize: 256, classBytes: 1024 });
    expect(facts.exports.map((e: { name: string }) => e.name)).toContain("thread_cache_flush");
  });

  test("an imported memory is listed among the imports; --demo and --json together are refused", async () => {
    const facts = JSON.parse((await alloc("build", "--json", "-m", "import", "-b", "static(start=64KiB,size=64KiB)")).out);
    expect(facts.imports).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
    expect(facts.memory).toMatchObject({ mode: "import", maximumPages: null, initialPages: 2 });
    expect(facts.backend).toEqual({ name: "static", options: { start: 65536, size: 65536 } });
    const both = await alloc("build", "--json", "--demo");
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/--demo and --json: give one of them/);
  });
});

describe("--help documents every option with its default and its measured code-size effect", () => {
  test("every option of every strategy and backend is listed, with its default and each sample's size", async () => {
    const lines = (await alloc("build", "--help")).out.split("\n");
    for (const [owner, entry] of [...Object.entries(STRATEGIES), ...Object.entries(BACKENDS)]) {
      const from = lines.findIndex((l) => l.startsWith(`    ${owner} `));
      for (const spec of entry.options ?? []) {
        const line = lines.slice(from).find((l) => new RegExp(`^ {6}${spec.name}[= ]`).test(l));
        expect(line, `${owner}.${spec.name}`).toBeDefined();
        expect(line).toContain(`Default ${spec.defaultText ?? String(spec.default)}.`);
        for (const sample of spec.samples) {
          const delta = OPTION_SIZES[`${owner}.${spec.name}=${sample}`]!;
          expect(line).toContain(`${spec.name}=${sample} ${delta > 0 ? "+" : ""}${delta} B`);
        }
      }
    }
  });

  test("the documented sizes are what the builds measure now (pnpm --filter @alloc/cli option-sizes regenerates them)", () => {
    expect(measureOptionSizes()).toEqual(OPTION_SIZES);
  });

  test("the README's option table and --stats costs say the measured sizes (it is copied by hand)", () => {
    const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8");
    const bytes = (delta: number) => `${delta > 0 ? "+" : delta < 0 ? "−" : ""}${Math.abs(delta)} B`;
    for (const [key, delta] of Object.entries(OPTION_SIZES)) {
      if (key.startsWith("stats:")) {
        const stack = key.slice("stats:".length).split(",").join(" > ");
        expect(readme, key).toContain(`${stack} ${bytes(delta)}`);
        continue;
      }
      if (key.startsWith("threadCache:")) {
        const row = readme.split("\n").find((l) => l.startsWith("| `--thread-cache`"));
        expect(row, key).toContain(`${key.slice("threadCache:".length).split(",").join(" > ")} ${bytes(delta)}`);
        continue;
      }
      const [owner, option] = key.split("=")[0]!.split(".") as [string, string];
      const row = readme.split("\n").find((l) => l.startsWith(`| \`${owner}(${option}`));
      expect(row, key).toBeDefined();
      expect(row, key).toContain(bytes(delta));
    }
  });
});

describe("--stats: heap statistics in a release build", () => {
  test("build exports heap_stats, --demo ends with the statistics, --json says so, --help states the measured cost", async () => {
    const r = await alloc("build", "--stats", "--demo", "-s", "size-classes,free-list");
    expect(r.err).toBe("");
    expect(r.out).toContain("exports: malloc, free, calloc, realloc, aligned_alloc, heap_stats, memory");
    expect(r.out).toMatch(/^ {2}heap stats: size-classes: \d+ used blocks \(\d+ B\), \d+ free .*; free-list: \d+ used blocks/m);
    const release = await alloc("build", "-s", "size-classes,free-list");
    const bytes = (out: string) => Number(/: (\d+) bytes/.exec(out)![1]);
    expect(bytes(r.out) - bytes(release.out)).toBe(OPTION_SIZES["stats:size-classes,free-list"]);
    const facts = JSON.parse((await alloc("build", "--json", "--stats", "-s", "size-classes,free-list")).out);
    expect([facts.stats, facts.statsLayers]).toEqual([true, ["size-classes", "free-list"]]);
    const help = (await alloc("build", "--help")).out.replace(/\s+/g, " ");
    expect(help).toContain(`free-list +${OPTION_SIZES["stats:free-list"]} B`);
  });

  test("replay --stats prints the statistics after each trace", async () => {
    const r = await alloc("replay", "--stats", "-w", "small-churn", "-s", "free-list");
    expect(r.err).toBe("");
    expect(r.out).toMatch(/small-churn.*every block verified\n {2}heap stats: free-list: \d+ used blocks/);
  });
});
