import { run } from "@alloc/cli";
import { generateWorkload, measureWork, replay } from "@alloc/trace";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS } from "./chromium.ts";
import { buildAndServe, type Served } from "./serve.ts";

/** Where the screenshot is kept (gitignored). */
const ARTIFACTS = join(dirname(dirname(fileURLToPath(import.meta.url))), "artifacts");

/** The composition and workload the test picks in the page, and gives the CLI. */
const STACK = "size-classes,free-list";
const WORKLOAD = "compiler";
const SEED = 3;

async function alloc(...argv: string[]): Promise<string> {
  let out = "";
  let err = "";
  const code = await run(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  if (code !== 0) throw new Error(`alloc ${argv.join(" ")} failed (${code}): ${err}`);
  return out;
}

function number(text: string, pattern: RegExp): number {
  const m = pattern.exec(text);
  if (!m) throw new Error(`${pattern} not found in: ${text}`);
  return Number(m[1]);
}

/** `data-value` of `#id`: the exact number (or text) the page shows there. */
const value = (page: Page, id: string) => page.locator(`#${id}`).getAttribute("data-value");

describe("the playground in headless chromium", () => {
  let served: Served | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    served = await buildAndServe(0);
    profile = mkdtempSync(join(tmpdir(), "alloc-playground-chromium-"));
    // A persistent context is how playwright takes a --user-data-dir: a fresh one per run.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1280, height: 900 },
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await served?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  test("builds a composition and runs a workload, with the numbers of the Node build", { timeout: 120_000 }, async () => {
    const page = context!.pages()[0] ?? (await context!.newPage());
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(message.text());
    });
    await page.goto(served!.url);
    // The default composition is built on load, once binaryen.js is loaded in the worker.
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 30_000 }).toMatch(/^Built free-list > grow/);

    // Build size-classes over the free list, then run the compiler workload on it.
    await page.fill('input[name="strategy"]', STACK);
    await page.click("#build");
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 30_000 }).toMatch(/^Built size-classes > free-list > grow/);
    await page.selectOption('select[name="workload"]', WORKLOAD);
    await page.fill('input[name="seed"]', String(SEED));
    await page.click("#run");
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 30_000 }).toMatch(/^Ran compiler/);
    expect(await page.locator("#error").isHidden()).toBe(true);

    const shown = {
      size: Number(await value(page, "size")),
      sha256: await value(page, "sha256"),
      exports: await value(page, "exports-out"),
      operations: Number(await value(page, "operations")),
      failed: Number(await value(page, "failed")),
      peakMemory: Number(await value(page, "peak-memory")),
      endMemory: Number(await value(page, "end-memory")),
      peakLive: Number(await value(page, "peak-live")),
      liveEnd: Number(await value(page, "live-end")),
      worstMalloc: Number(await page.locator('#work tr[data-call="malloc"]').getAttribute("data-worst")),
      totalWork: Number(await page.locator('#work tr[data-call="all"]').getAttribute("data-total")),
    };
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "playground.png"), fullPage: true });

    // The same composition from the CLI: the same module, byte for byte.
    const dir = mkdtempSync(join(tmpdir(), "alloc-playground-"));
    const file = join(dir, "alloc.wasm");
    const built = await alloc("build", "--strategy", STACK, "-o", file);
    const binary = new Uint8Array(readFileSync(file));
    rmSync(dir, { recursive: true, force: true });
    expect(shown.size).toBe(number(built, /size-classes > free-list > grow: (\d+) bytes/));
    expect(shown.size).toBe(binary.byteLength);
    expect(shown.sha256).toBe(createHash("sha256").update(binary).digest("hex"));
    expect(shown.exports).toBe(/^exports: (.*)$/m.exec(built)![1]!.split(", ").join(","));

    // The same run from the CLI: `alloc replay` prints operations, failures, peak memory and live bytes.
    const replayed = await alloc("replay", "--strategy", STACK, "--workload", WORKLOAD, "--seed", String(SEED));
    expect(shown.operations).toBe(number(replayed, /\): (\d+) ops in/));
    expect(shown.failed).toBe(number(replayed, /(\d+) failed/));
    expect(shown.peakMemory).toBe(number(replayed, /peak memory (\d+) B/));
    expect(shown.peakLive).toBe(number(replayed, /peak live (\d+) B/));
    expect(shown.operations).toBeGreaterThan(10_000);
    expect(shown.peakLive).toBeGreaterThan(1_000_000);

    // What the CLI does not print, from the CLI's module in Node: memory at the end, live bytes, work.
    const trace = generateWorkload(WORKLOAD, { seed: SEED });
    const { instance } = await WebAssembly.instantiate(binary);
    const memory = instance.exports.memory as WebAssembly.Memory;
    const r = replay({ instance, memory }, trace);
    expect(shown.endMemory).toBe(memory.buffer.byteLength);
    expect(shown.liveEnd).toBe(r.liveBytesAtEnd);
    const work = measureWork(binary, trace);
    expect(shown.worstMalloc).toBe(work.malloc.worst);
    expect(shown.totalWork).toBe(work.all.total);

    expect(pageErrors).toEqual([]);
  });

  test("a copied link opens the page with the same options and module", { timeout: 120_000 }, async () => {
    const page = context!.pages()[0]!;
    await page.selectOption('select[name="opt"]', "speed");
    await page.click("#copy-link");
    await expect.poll(() => page.locator("#status").textContent()).toMatch(/^Link/);
    const link = page.url();
    expect(new URL(link).search).toBe(`?strategy=${encodeURIComponent(STACK)}&opt=speed&workload=${WORKLOAD}&seed=${SEED}`);

    const other = await context!.newPage();
    try {
      await other.goto(link);
      await expect.poll(() => other.locator("#status").textContent(), { timeout: 30_000 }).toMatch(/^Built size-classes > free-list > grow/);
      expect(await other.inputValue('input[name="strategy"]')).toBe(STACK);
      expect(await other.inputValue('select[name="opt"]')).toBe("speed");
      expect(await other.inputValue('select[name="workload"]')).toBe(WORKLOAD);
      expect(await other.inputValue('input[name="seed"]')).toBe(String(SEED));
      const built = await alloc("build", "--strategy", STACK, "--opt", "speed");
      expect(Number(await value(other, "size"))).toBe(number(built, /grow: (\d+) bytes/));
    } finally {
      await other.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
