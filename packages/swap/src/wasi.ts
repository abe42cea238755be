import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface WasiRun {
  readonly exitCode: number;
  /** Everything the program wrote to stdout, byte for byte. */
  readonly stdout: Uint8Array;
  readonly instance: WebAssembly.Instance;
  /** The trap that ended the run, if one did (exitCode is then -1). */
  readonly trap?: unknown;
}

/**
 * Runs a WASI command module (`_start`) under node:wasi with `args` (argv[1...]), capturing its
 * stdout (`imports` are added to WASI's). `exit(n)` is an exit code; a trap is returned as `trap`, with the instance (to read a
 * debug allocator's fault from it: takeSwapFault).
 */
export async function runWasi(binary: Uint8Array, args: readonly string[] = [], imports: WebAssembly.Imports = {}): Promise<WasiRun> {
  const dir = mkdtempSync(join(tmpdir(), "alloc-swap-"));
  const file = join(dir, "stdout");
  try {
    // The WASI instance owns this descriptor from here on: node:wasi closes it when the instance
    // is collected, so closing it here could close a descriptor reused by then.
    // Imported here: loading node:wasi prints an experimental warning, which only runs should cost.
    const { WASI } = await import("node:wasi");
    const fd = openSync(file, "w");
    const wasi = new WASI({ version: "preview1", args: ["program", ...args], env: {}, stdout: fd, returnOnExit: true });
    const { instance } = await WebAssembly.instantiate(binary as BufferSource, { ...(wasi.getImportObject() as WebAssembly.Imports), ...imports });
    let exitCode = -1, trap: unknown;
    try {
      exitCode = wasi.start(instance);
    } catch (error) {
      trap = error;
    }
    return { exitCode, stdout: new Uint8Array(readFileSync(file)), instance, ...(trap !== undefined && { trap }) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
