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

/** The composition (with options set in the page's option fields) and workload the test picks, and gives the CLI. */
const STACK = "size-classes(maxSmall=512),free-list";
const BACKEND = "grow(growth=exact)";
const COMPOSITION = "size-classes(maxSmall=512) > free-list > grow(growth=exact)";
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
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await served?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** Waits until the page's status line matches. */
  const settled = (page: Page, pattern: RegExp) => expect.poll(() => page.locator("#status").textContent(), { timeout: 120_000 }).toMatch(pattern);
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

  test("builds a composition and runs a workload, with the numbers of the Node build", { timeout: 300_000 }, async () => {
    const page = context!.pages()[0] ?? (await context!.newPage());
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(message.text());
    });
    await page.goto(served!.url);
    // The default composition is built on load, once binaryen.js is loaded in the worker.
    await settled(page, /^Built free-list > grow in/);

    // Size-classes over the free list; then options in the fields its build shows (each change
    // rebuilds); then the compiler workload.
    await page.fill('input[name="strategy"]', "size-classes,free-list");
    await page.click("#build");
    await settled(page, /^Built size-classes > free-list > grow in/);
    await page.fill('input[name="strategy.size-classes.maxSmall"]', "512");
    await page.press('input[name="strategy.size-classes.maxSmall"]', "Tab");
    await settled(page, /^Built size-classes\(maxSmall=512\) > free-list > grow in/);
    await page.fill('input[name="backend.grow.growth"]', "exact");
    await page.press('input[name="backend.grow.growth"]', "Tab");
    await settled(page, new RegExp(`^Built ${escape(COMPOSITION)} in`));
    expect(await page.inputValue('input[name="strategy"]')).toBe(STACK);
    expect(await page.inputValue('input[name="backend"]')).toBe(BACKEND);
    await page.selectOption('select[name="workload"]', WORKLOAD);
    await page.fill('input[name="seed"]', String(SEED));
    await page.click("#run");
    await settled(page, /^Ran compiler/);
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
      heapMap: decodeURIComponent((await page.locator("#heap-map").getAttribute("src"))!.replace(/^data:image\/svg\+xml;charset=utf-8,/, "")),
    };
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "playground.png"), fullPage: true });

    // The same composition from the CLI: the same module, byte for byte.
    const dir = mkdtempSync(join(tmpdir(), "alloc-playground-"));
    const file = join(dir, "alloc.wasm");
    const facts = JSON.parse(await alloc("build", "--strategy", STACK, "--backend", BACKEND, "--json", "-o", file)) as {
      bytes: number;
      exports: { name: string }[];
    };
    const binary = new Uint8Array(readFileSync(file));
    expect(shown.size).toBe(facts.bytes);
    expect(shown.size).toBe(binary.byteLength);
    expect(shown.sha256).toBe(createHash("sha256").update(binary).digest("hex"));
    expect(shown.exports!.split(",").sort()).toEqual(facts.exports.map((e) => e.name).sort());

    // The same run from the CLI: `alloc replay` prints operations, failures, peak memory and live
    // bytes, and draws the same heap map.
    const map = join(dir, "map.svg");
    const replayed = await alloc("replay", "--strategy", STACK, "--backend", BACKEND, "--workload", WORKLOAD, "--seed", String(SEED), "--map", map);
    expect(shown.heapMap).toMatch(/^<svg /);
    expect(shown.heapMap).toBe(readFileSync(map, "utf8"));
    rmSync(dir, { recursive: true, force: true });
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

  test("a copied link opens the page with the same options and module", { timeout: 300_000 }, async () => {
    const page = context!.pages()[0]!;
    await page.selectOption('select[name="opt"]', "speed");
    await settled(page, /^Built .* in/);
    await page.click("#copy-link");
    await settled(page, /^Link/);
    const link = page.url();
    expect(Object.fromEntries(new URL(link).searchParams)).toEqual({ strategy: STACK, backend: BACKEND, opt: "speed", workload: WORKLOAD, seed: String(SEED) });

    const other = await context!.newPage();
    try {
      await other.goto(link);
      await settled(other, new RegExp(`^Built ${escape(COMPOSITION)} in`));
      expect(await other.inputValue('input[name="strategy"]')).toBe(STACK);
      expect(await other.inputValue('input[name="strategy.size-classes.maxSmall"]')).toBe("512");
      expect(await other.inputValue('input[name="backend.grow.growth"]')).toBe("exact");
      expect(await other.inputValue('select[name="opt"]')).toBe("speed");
      expect(await other.inputValue('select[name="workload"]')).toBe(WORKLOAD);
      expect(await other.inputValue('input[name="seed"]')).toBe(String(SEED));
      const facts = JSON.parse(await alloc("build", "--strategy", STACK, "--backend", BACKEND, "--opt", "speed", "--json")) as { bytes: number };
      expect(Number(await value(other, "size"))).toBe(facts.bytes);
    } finally {
      await other.close();
    }
    expect(pageErrors).toEqual([]);
  });

  test("an uploaded trace on a debug build, and a workload on a stats build, show the heap walker's report", { timeout: 300_000 }, async () => {
    const page = context!.pages()[0]!;
    await page.check('input[name="debug"]');
    await settled(page, /^Built .* in/);
    // An uploaded trace file goes into the text box and is run under its name.
    const trace = "Alloc(16),\nAlloc(100),\nRealloc(0,4000),\nFree(1),\nAlloc(24),\n";
    await page.setInputFiles("#trace-file", { name: "five.trace", mimeType: "text/plain", buffer: Buffer.from(trace) });
    await expect.poll(() => page.inputValue('textarea[name="trace"]')).toBe(trace);
    expect(await page.isChecked('input[name="source"][value="text"]')).toBe(true);
    await page.click("#run");
    await settled(page, /^Ran five\.trace/);
    expect(Number(await value(page, "operations"))).toBe(5);
    expect(Number(await value(page, "peak-live"))).toBe(4100);
    expect(Number(await value(page, "live-end"))).toBe(4024);
    expect(await page.locator("#heap-stats").isVisible()).toBe(true);
    const layers = await page.locator("#heap-stats tbody tr td:first-child").allTextContents();
    expect(layers).toEqual(["size-classes", "free-list"]);
    await page.screenshot({ path: join(ARTIFACTS, "playground-debug.png"), fullPage: true });

    // A release build with heap_stats, on the workload: the table says what `alloc replay --stats` prints.
    await page.uncheck('input[name="debug"]');
    await settled(page, /^Built .* in/);
    await page.check('input[name="stats"]');
    await settled(page, /^Built .* in/);
    await page.check('input[name="source"][value="workload"]');
    await page.click("#run");
    await settled(page, /^Ran compiler/);
    const cells = await page.locator("#heap-stats tbody tr").evaluateAll((rows) =>
      rows.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent!.replaceAll(",", ""))),
    );
    const line = cells.map(([layer, ub, u, fb, f, lf]) => `${layer}: ${ub} used blocks (${u} B), ${fb} free (${f} B, largest ${lf} B)`).join("; ");
    const replayed = await alloc("replay", "--strategy", STACK, "--backend", BACKEND, "--opt", "speed", "--stats", "--workload", WORKLOAD, "--seed", String(SEED));
    expect(replayed).toContain(`  heap stats: ${line}; fragmentation`);
    expect(cells.map((row) => row[0])).toEqual(["size-classes", "free-list"]);
    expect(pageErrors).toEqual([]);
  });
});
