import { AllocConfigError } from "@alloc/core";
import type { ReplayTarget } from "@alloc/trace";
import { readFileSync } from "node:fs";

const NEEDED = ["malloc", "free", "realloc"] as const;
const BUILD_HINT =
  "build it with its allocator exported, e.g. clang --target=wasm32-wasi -mexec-model=reactor -Wl,--export=malloc,--export=free,--export=realloc";

/**
 * A compiled module with the C ABI (its own malloc, free and realloc exported, and its memory) to
 * replay traces against: `alloc replay --module other.wasm`. WASI imports are served by node:wasi;
 * a reactor's `_initialize` is run; any other import is refused.
 */
export async function moduleTarget(file: string): Promise<{ size: number; instantiate(): Promise<ReplayTarget> }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (error) {
    throw new AllocConfigError(`cannot read --module ${file}: ${(error as Error).message}`);
  }
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes as BufferSource);
  } catch (error) {
    throw new AllocConfigError(`--module ${file} is not a valid WebAssembly module: ${(error as Error).message}`);
  }
  const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  for (const name of NEEDED) {
    if (exports.get(name) !== "function") throw new AllocConfigError(`--module ${file} does not export the function ${name}: ${BUILD_HINT}`);
  }
  if (exports.get("memory") !== "memory") throw new AllocConfigError(`--module ${file} does not export its memory as "memory"`);
  const other = WebAssembly.Module.imports(module).find((i) => i.module !== "wasi_snapshot_preview1");
  if (other) throw new AllocConfigError(`--module ${file} imports ${other.module}.${other.name}, which replay cannot provide`);
  return {
    size: bytes.byteLength,
    async instantiate() {
      const { WASI } = await import("node:wasi");
      const wasi = new WASI({ version: "preview1", args: [file], env: {}, returnOnExit: true });
      const instance = await WebAssembly.instantiate(module, wasi.getImportObject() as WebAssembly.Imports);
      if (exports.has("_initialize") && !exports.has("_start")) wasi.initialize(instance);
      return { instance, memory: instance.exports.memory as WebAssembly.Memory };
    },
  };
}
