import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Debian's chromium: the only browser the end-to-end test drives (playwright downloads none). */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * The flags the test launches chromium with: headless, no sandbox (CI runs as root), and nothing
 * that reaches the network or updates itself. A fresh `--user-data-dir` is added per launch.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function apt(args: readonly string[], log: (line: string) => void): string {
  log(`playground test setup: apt-get ${args.join(" ")}`);
  return execFileSync("apt-get", args, {
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The version `apt-cache policy chromium` would install, or undefined when it has none. */
function candidate(): string | undefined {
  const policy = execFileSync("apt-cache", ["policy", "chromium"], { encoding: "utf8" });
  const version = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  return version && version !== "(none)" ? version : undefined;
}

/**
 * Returns {@link CHROMIUM}, installing Debian's `chromium` package first when it is missing
 * (`apt-get update`, then `apt-get install -y --no-install-recommends chromium`), so the test runs
 * on a fresh CI machine. Immediate when it is installed. Throws, saying what to do, where it cannot
 * install (not Debian, or not root).
 */
export function ensureChromium(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (!existsSync("/usr/bin/apt-get")) {
    throw new Error(`the playground test needs Debian's chromium at ${CHROMIUM}, and this machine has no apt-get to install it`);
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`the playground test needs Debian's chromium at ${CHROMIUM}: install it as root with apt-get install -y chromium`);
  }
  // The package lists may be missing or old on a fresh machine: update before asking for a candidate.
  apt(["update", "-qq"], log);
  const version = candidate();
  if (!version) throw new Error("the playground test needs Debian's chromium, and apt-cache policy chromium has no candidate");
  apt(["install", "-y", "-qq", "--no-install-recommends", "chromium"], log);
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium ${version}, but ${CHROMIUM} is still missing`);
  log(`playground test setup: installed chromium ${version}`);
  return CHROMIUM;
}
