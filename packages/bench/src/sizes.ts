import { buildAllocator, DEFAULT_EXPORTS, installAllocator, type Strategy } from "@alloc/core";
import binaryen from "binaryen";
import { join } from "node:path";
import { compositions } from "./compositions.ts";
import { PACKAGE_DIR } from "./paths.ts";

/** Where the size report is kept (embedded in the README). */
export const SIZES_FILE = join(PACKAGE_DIR, "SIZES.md");

/** The export sets of the report, smallest first. */
export const EXPORT_SETS: readonly { readonly label: string; readonly functions: readonly string[] }[] = [
  { label: "malloc, free", functions: ["malloc", "free"] },
  { label: "+ realloc", functions: ["malloc", "free", "realloc"] },
  { label: "+ calloc", functions: ["malloc", "free", "calloc", "realloc"] },
  { label: "+ aligned_alloc (default)", functions: DEFAULT_EXPORTS },
  { label: "+ malloc_usable_size", functions: [...DEFAULT_EXPORTS, "malloc_usable_size"] },
];

export interface SizeRow {
  readonly composition: string;
  readonly exports: string;
  /** Standalone module (own exported memory), optimised for size / for speed; null: not available. */
  readonly size: number | null;
  readonly speed: number | null;
  /** Bytes added to a host module by `installAllocator` with these functions exported, optimised for size. */
  readonly installed: number | null;
  /** Why the set cannot be built (e.g. the top strategy keeps no block sizes). */
  readonly note?: string;
}

/** A stand-in for a user's module: one page of memory, exported, and one exported function. */
function hostModule(): binaryen.Module {
  const module = new binaryen.Module();
  module.setFeatures(binaryen.Features.MutableGlobals | binaryen.Features.SignExt | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
  module.setMemory(1, -1, "memory");
  module.addFunction("main", binaryen.none, binaryen.i32, [], module.i32.const(0));
  module.addFunctionExport("main", "main");
  return module;
}

/** The module's size once optimised like `optimize: "size"` (-Oz), with Binaryen's settings restored. */
function optimisedSize(module: binaryen.Module): number {
  const saved = { optimize: binaryen.getOptimizeLevel(), shrink: binaryen.getShrinkLevel() };
  try {
    binaryen.setOptimizeLevel(2);
    binaryen.setShrinkLevel(2);
    if (!module.validate()) throw new Error("sizes: a host module does not validate");
    module.optimize();
    return module.emitBinary().byteLength;
  } finally {
    binaryen.setOptimizeLevel(saved.optimize);
    binaryen.setShrinkLevel(saved.shrink);
  }
}

function installedBytes(stack: Strategy[], functions: readonly string[]): number {
  const base = hostModule();
  const host = hostModule();
  try {
    installAllocator(host, { strategy: stack, functions, exports: functions });
    return optimisedSize(host) - optimisedSize(base);
  } finally {
    base.dispose();
    host.dispose();
  }
}

/** Measures every available composition with every export set. */
export function measureSizes(): { rows: SizeRow[]; missing: { name: string; reason: string }[] } {
  const { available, missing } = compositions();
  const rows: SizeRow[] = [];
  for (const c of available) {
    for (const set of EXPORT_SETS) {
      try {
        const build = (optimize: "size" | "speed") => buildAllocator({ strategy: c.stack(), exports: set.functions, optimize }).size;
        rows.push({ composition: c.name, exports: set.label, size: build("size"), speed: build("speed"), installed: installedBytes(c.stack(), set.functions) });
      } catch (error) {
        rows.push({ composition: c.name, exports: set.label, size: null, speed: null, installed: null, note: (error as Error).message });
      }
    }
  }
  return { rows, missing };
}

/** A 64-bit build's size next to its wasm32 build's. */
export interface Size64Row {
  readonly composition: string;
  readonly exports: string;
  /** Standalone module optimised for size: wasm32, and memory64. */
  readonly wasm32: number;
  readonly memory64: number;
  /** memory64, optimised for speed. */
  readonly memory64Speed: number;
}

/** The export sets the 64-bit table shows: the smallest, and the default. */
const EXPORT_SETS_64 = [EXPORT_SETS[0]!, EXPORT_SETS[3]!];

/** Every available composition built 64-bit (`memory64: true`), beside its wasm32 build. */
export function measureSizes64(): Size64Row[] {
  return compositions().available.flatMap((c) =>
    EXPORT_SETS_64.map((set) => {
      const build = (memory64: boolean, optimize: "size" | "speed" = "size") =>
        buildAllocator({ strategy: c.stack(), exports: set.functions, optimize, memory64 }).size;
      return { composition: c.name, exports: set.label, wasm32: build(false), memory64: build(true), memory64Speed: build(true, "speed") };
    }),
  );
}

/** The report as Markdown: what `pnpm --filter @alloc/bench sizes` writes to SIZES.md. */
export function sizesMarkdown(): string {
  const { rows, missing } = measureSizes();
  const cell = (n: number | null) => (n === null ? "—" : String(n));
  const lines = [
    "# Code size of every composition",
    "",
    "Generated by `pnpm --filter @alloc/bench sizes` (do not edit; a test checks that this file is current).",
    "",
    "- **-Oz** and **-O3**: bytes of the standalone module `buildAllocator` emits (its own exported memory and",
    "  the listed functions exported) with `optimize: \"size\"` and `optimize: \"speed\"`.",
    "- **installed**: bytes the allocator adds to an existing module (one page of memory, one function) through",
    "  `installAllocator(module, { functions, exports: functions })`, both optimised for size. The memory there is",
    "  not the allocator's own, so the grow backend cannot assume it alone grows it (no `exclusive` savings).",
    "- Export sets are cumulative: each row adds its function to the row above. `calloc`, `realloc` and",
    "  `aligned_alloc` have C semantics (see `@alloc/core`).",
    "",
    "| composition | exports | -Oz | -O3 | installed |",
    "| --- | --- | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.composition} | ${r.exports} | ${cell(r.size)} | ${cell(r.speed)} | ${cell(r.installed)} |`),
  ];
  const notes = [...new Set(rows.filter((r) => r.note).map((r) => `- ${r.composition}, ${r.exports}: ${r.note}`))];
  if (notes.length) lines.push("", "Not available:", "", ...notes);
  const wide = measureSizes64();
  lines.push(
    "",
    "## 64-bit builds (memory64)",
    "",
    "The same compositions built with `memory64: true` (`alloc build --memory64`): i64 pointers and sizes over a",
    "memory64 memory, standalone modules as above. **wasm32** repeats the -Oz column for comparison.",
    "",
    "| composition | exports | wasm32 -Oz | memory64 -Oz | difference | memory64 -O3 |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
    ...wide.map((r) => {
      const diff = r.memory64 - r.wasm32;
      return `| ${r.composition} | ${r.exports} | ${r.wasm32} | ${r.memory64} | ${diff >= 0 ? "+" : ""}${diff} | ${r.memory64Speed} |`;
    }),
  );
  if (missing.length) lines.push("", "Not measured yet:", "", ...missing.map((m) => `- ${m.name}: ${m.reason}`));
  return lines.join("\n") + "\n";
}
