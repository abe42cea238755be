import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { buildPeers, RUSTC, ZIG, ZIG_DIR, ZIG_PACKAGE } from "./peers.ts";

/**
 * The Debian packages the peers need: clang, the wasm linker and wasi-libc for dlmalloc; rustc and
 * Rust's standard library for wasm32 for rust-std.
 */
export const APT_PACKAGES = ["clang", "lld", "wasi-libc", "rustc", "libstd-rust-dev-wasm32"] as const;

function has(command: string): boolean {
  return spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0;
}

function installed(pkg: string): boolean {
  return spawnSync("dpkg-query", ["-W", "-f", "${Status}", pkg], { encoding: "utf8" }).stdout?.includes("install ok installed") ?? false;
}

/** Installs zig from npm into peers/zig (git-ignored) when it is not there. */
function installZig(log: (line: string) => void): void {
  if (existsSync(ZIG)) return;
  mkdirSync(ZIG_DIR, { recursive: true });
  const args = ["install", "--no-save", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", ZIG_DIR, ZIG_PACKAGE];
  log(`installing zig for zig-wasm: npm ${args.join(" ")}`);
  const result = spawnSync("npm", args, { stdio: "inherit" });
  if (result.status !== 0) log(`npm install failed (status ${result.status}); zig-wasm will be skipped`);
}

/**
 * Installs zig from npm (into peers/zig) and the C and Rust toolchains with apt-get when they are
 * missing (as root, or through `sudo -n`), then
 * builds every peer into peers/. A peer that cannot be built is reported and skipped: the
 * benchmark runs without it. Returns false when some peer could not be built.
 */
export function setup(log: (line: string) => void = console.log): boolean {
  installZig(log);
  if (!has("clang") || !has("wasm-ld") || !has(RUSTC) || APT_PACKAGES.some((p) => !installed(p))) {
    const install = `apt-get update && apt-get install -y ${APT_PACKAGES.join(" ")}`;
    const asRoot = process.getuid?.() === 0;
    const sudo = !asRoot && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0;
    if (asRoot || sudo) {
      log(`installing the toolchains for dlmalloc and rust-std: ${install}`);
      const shell = asRoot ? ["sh", ["-c", install]] : ["sudo", ["-n", "sh", "-c", install]];
      const result = spawnSync(shell[0] as string, shell[1] as string[], {
        stdio: "inherit",
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
      if (result.status !== 0) log(`apt-get failed (status ${result.status}); dlmalloc or rust-std may be skipped`);
    } else {
      log(`${APT_PACKAGES.join(", ")}: some are missing and this is not root: run \`sudo ${install}\`; dlmalloc or rust-std may be skipped`);
    }
  }
  const { failed } = buildPeers({ log });
  return failed.length === 0;
}
