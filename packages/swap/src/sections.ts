/**
 * Just enough of the binary format to read a module's custom sections before Binaryen does:
 * its `target_features` (which Binaryen's reader does not apply) and its DWARF (`.debug_*`),
 * which describes code that swap rewrites, so it is dropped rather than left stale.
 */
import binaryen from "binaryen";

interface Section {
  readonly id: number;
  /** Custom sections only. */
  readonly name: string | undefined;
  /** From the section id byte to the end of its contents. */
  readonly start: number;
  readonly end: number;
  /** Where the contents start (after the size, and a custom section's name). */
  readonly body: number;
}

function leb(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0, shift = 0, byte: number;
  do {
    byte = bytes[at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

function sections(bytes: Uint8Array): Section[] {
  const out: Section[] = [];
  let at = 8;
  while (at < bytes.length) {
    const start = at;
    const id = bytes[at++]!;
    const [size, contents] = leb(bytes, at);
    const end = contents + size;
    let name: string | undefined, body = contents;
    if (id === 0) {
      const [length, nameAt] = leb(bytes, contents);
      name = new TextDecoder().decode(bytes.subarray(nameAt, nameAt + length));
      body = nameAt + length;
    }
    out.push({ id, name, start, end, body });
    at = end;
  }
  return out;
}

/** The module without its `.debug_*` custom sections, and their names. */
export function dropDwarf(bytes: Uint8Array): { bytes: Uint8Array; dropped: string[] } {
  const all = sections(bytes);
  const dwarf = all.filter((s) => s.name?.startsWith(".debug"));
  if (dwarf.length === 0) return { bytes, dropped: [] };
  const parts = [bytes.subarray(0, 8), ...all.filter((s) => !dwarf.includes(s)).map((s) => bytes.subarray(s.start, s.end))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { bytes: out, dropped: dwarf.map((s) => s.name!) };
}

/** Whether the module has a `name` section (a linker's --strip-all removes it). */
export function hasNameSection(bytes: Uint8Array): boolean {
  return sections(bytes).some((s) => s.name === "name");
}

const FEATURES: Readonly<Record<string, number>> = {
  "mutable-globals": binaryen.Features.MutableGlobals,
  "sign-ext": binaryen.Features.SignExt,
  "nontrapping-fptoint": binaryen.Features.NontrappingFPToInt,
  "bulk-memory": binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt,
  "bulk-memory-opt": binaryen.Features.BulkMemoryOpt,
  simd128: binaryen.Features.SIMD128,
  atomics: binaryen.Features.Atomics,
  multivalue: binaryen.Features.Multivalue,
  "reference-types": binaryen.Features.ReferenceTypes,
  "tail-call": binaryen.Features.TailCall,
  "exception-handling": binaryen.Features.ExceptionHandling,
  "extended-const": binaryen.Features.ExtendedConst,
  multimemory: binaryen.Features.MultiMemory,
  memory64: binaryen.Features.Memory64,
};

/**
 * The features the module's `target_features` section declares as used (LLVM writes one), as
 * Binaryen flags; undefined when there is no such section.
 */
export function targetFeatures(bytes: Uint8Array): { flags: number; names: string[] } | undefined {
  const section = sections(bytes).find((s) => s.name === "target_features");
  if (!section) return undefined;
  let [count, at] = leb(bytes, section.body);
  let flags = binaryen.Features.MVP;
  const names: string[] = [];
  for (; count > 0; count--) {
    const prefix = String.fromCharCode(bytes[at++]!);
    const [length, nameAt] = leb(bytes, at);
    const name = new TextDecoder().decode(bytes.subarray(nameAt, nameAt + length));
    at = nameAt + length;
    if (prefix === "-") continue;
    names.push(name);
    flags |= FEATURES[name] ?? 0;
  }
  return { flags, names };
}
