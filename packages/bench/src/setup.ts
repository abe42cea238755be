import { spawnSync } from "node:child_process";
import { buildPeers } from "./peers.ts";

/** The Debian packages dlmalloc needs: the compiler, the wasm linker and wasi-libc. */
export const APT_PACKAGES = ["clang", "lld", "wasi-libc"] as const;

function has(command: string): boolean {
  return spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0;
}

function wasiLibcInstalled(): boolean {
  return spawnSync("dpkg-query", ["-W", "-f", "${Status}", "wasi-libc"], { encoding: "utf8" }).stdout?.includes("install ok installed") ?? false;
}

/**
 * Installs the C toolchain with apt-get when it is missing (as root, or through `sudo -n`), then
 * builds every peer into peers/. A peer that cannot be built is reported and skipped: the
 * benchmark runs without it. Returns false when some peer could not be built.
 */
export function setup(log: (line: string) => void = console.log): boolean {
  if (!has("clang") || !has("wasm-ld") || !wasiLibcInstalled()) {
    const install = `apt-get update && apt-get install -y ${APT_PACKAGES.join(" ")}`;
    const asRoot = process.getuid?.() === 0;
    const sudo = !asRoot && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0;
    if (asRoot || sudo) {
      log(`installing the C toolchain for dlmalloc: ${install}`);
      const shell = asRoot ? ["sh", ["-c", install]] : ["sudo", ["-n", "sh", "-c", install]];
      const result = spawnSync(shell[0] as string, shell[1] as string[], {
        stdio: "inherit",
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
      if (result.status !== 0) log(`apt-get failed (status ${result.status}); dlmalloc will be skipped`);
    } else {
      log(`clang, lld or wasi-libc is missing and this is not root: run \`sudo ${install}\`; dlmalloc will be skipped`);
    }
  }
  const { failed } = buildPeers({ log });
  return failed.length === 0;
}
