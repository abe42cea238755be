import { ensureChromium } from "./chromium.ts";

/** vitest's global setup: the end-to-end test needs Debian's chromium (installed when missing). */
export default function setup(): void {
  ensureChromium();
}
