// Only types from the packages here: binaryen.js (13 MB) loads in the worker alone.
import type { ModuleReport, RunReport, TraceSource } from "./session.ts";
import { formatGrowth, StateCodec, type Catalog, type PlaygroundState } from "./state.ts";
import type { WorkerReady, WorkerRequest, WorkerResponse } from "./worker.ts";

/** Compositions offered in the strategy field (any other stack of known strategies can be typed). */
const PRESETS = ["free-list", "size-classes,free-list", "bump", "size-classes,bump"];

const $ = <T extends HTMLElement = HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector);
  if (!element) throw new Error(`playground: no element ${selector}`);
  return element;
};
const form = $<HTMLFormElement>("#form");
const field = <T extends HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement = HTMLInputElement>(name: string): T =>
  form.elements.namedItem(name) as T;

// ---- the worker ------------------------------------------------------------------------------

const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
let nextId = 0;
const pending = new Map<number, (response: WorkerResponse) => void>();
let ready: (catalog: Catalog) => void;
const catalogReady = new Promise<Catalog>((resolve) => (ready = resolve));
worker.onmessage = (event: MessageEvent<WorkerResponse | WorkerReady>) => {
  const message = event.data;
  if ("ready" in message) return ready(message.ready);
  pending.get(message.id)?.(message);
  pending.delete(message.id);
};
worker.onerror = (event) => showError(`the worker failed: ${event.message}`);

type Request = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, "id"> : never) : never;

function ask(request: Request): Promise<Extract<WorkerResponse, { ok: true }>> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, (response) => (response.ok ? resolve(response) : reject(new Error(response.error))));
    worker.postMessage({ ...request, id } as WorkerRequest);
  });
}

// ---- the form --------------------------------------------------------------------------------

function setUpForm(catalog: Catalog): void {
  $("#stacks").append(...PRESETS.map((stack) => new Option(stack.replace(",", " > "), stack)));
  field<HTMLSelectElement>("workload").append(...catalog.workloads.map((w) => new Option(`${w.name} (${w.kind})`, w.name)));
  $("#exports").append(
    ...catalog.functions.map((fn) => {
      const label = document.createElement("label");
      label.className = "check";
      const box = Object.assign(document.createElement("input"), { type: "checkbox", name: "export", value: fn });
      label.append(box, ` ${fn}`);
      return label;
    }),
  );
  field("strategy").title = catalog.strategies.map((s) => `${s.name}: ${s.summary}`).join("\n");
}

function showBackendFields(): void {
  const backend = field<HTMLSelectElement>("backend").value;
  for (const el of document.querySelectorAll<HTMLElement>(".grow-only")) el.hidden = backend !== "grow";
  for (const el of document.querySelectorAll<HTMLElement>(".static-only")) el.hidden = backend !== "static";
  const workload = codec.catalog.workloads.find((w) => w.name === field<HTMLSelectElement>("workload").value);
  $("#workload-description").textContent = workload?.description ?? "";
}

function writeForm(state: PlaygroundState): void {
  field("strategy").value = state.strategy.join(",");
  field<HTMLSelectElement>("backend").value = state.backend;
  field("growth").value = formatGrowth(state.growth);
  field("exclusive").checked = state.exclusive;
  field("static-start").value = String(state.staticStart);
  field("static-size").value = String(state.staticSize);
  field<HTMLSelectElement>("memory").value = state.memory;
  for (const box of form.querySelectorAll<HTMLInputElement>('input[name="export"]')) box.checked = state.exports.includes(box.value);
  field("min-align").value = String(state.minAlign);
  field<HTMLSelectElement>("opt").value = state.opt;
  field("bulk-memory").checked = state.bulkMemory;
  field("debug").checked = state.debug;
  field<HTMLSelectElement>("workload").value = state.workload;
  field("seed").value = String(state.seed);
  showBackendFields();
}

/** The form as a state, through the link's own parser: the form and a link mean the same. */
function readForm(): PlaygroundState {
  const query = new URLSearchParams({
    strategy: field("strategy").value,
    backend: field<HTMLSelectElement>("backend").value,
    memory: field<HTMLSelectElement>("memory").value,
    exports: [...form.querySelectorAll<HTMLInputElement>('input[name="export"]:checked')].map((box) => box.value).join(","),
    "min-align": field("min-align").value,
    opt: field<HTMLSelectElement>("opt").value,
    "bulk-memory": field("bulk-memory").checked ? "1" : "0",
    debug: field("debug").checked ? "1" : "0",
    workload: field<HTMLSelectElement>("workload").value,
    seed: field("seed").value,
  });
  if (query.get("backend") === "static") {
    query.set("static-start", field("static-start").value);
    query.set("static-size", field("static-size").value);
  } else {
    query.set("growth", field("growth").value || formatGrowth(codec.defaults.growth));
    query.set("exclusive", field("exclusive").checked ? "1" : "0");
  }
  return codec.parse(query);
}

function link(state: PlaygroundState): string {
  const query = codec.format(state).toString();
  return `${location.origin}${location.pathname}${query ? `?${query}` : ""}`;
}

// ---- the output ------------------------------------------------------------------------------

const bytes = (n: number) => `${n.toLocaleString("en-US")} B`;

/** Shows `value` in `#id`, with the exact number in `data-value` (what the end-to-end test reads). */
function show(id: string, text: string, value?: number | string): void {
  const el = $(`#${id}`);
  el.textContent = text;
  if (value === undefined) delete el.dataset.value;
  else el.dataset.value = String(value);
}

function status(text: string): void {
  $("#status").textContent = text;
}

function showError(message: string): void {
  const el = $("#error");
  el.textContent = message;
  el.hidden = false;
  status("Failed.");
}

function clearRun(): void {
  for (const id of ["trace-name", "operations", "failed", "peak-memory", "end-memory", "peak-live", "live-end", "time"]) show(id, "–");
  $("#work tbody").replaceChildren();
  $("#heap-stats").hidden = true;
  $("#replay-command-line").hidden = true;
}

function showModule(m: ModuleReport): void {
  show("composition", m.composition);
  show("size", bytes(m.size), m.size);
  show("exports-out", m.exports.join(", "), m.exports.join(","));
  show("imports", m.imports.length ? m.imports.join(", ") : "none");
  show("sha256", m.sha256, m.sha256);
  $("#build-command").textContent = m.command;
  $("#wat").textContent = m.wat;
}

function row(cells: readonly (string | number)[]): HTMLTableRowElement {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = typeof cell === "number" ? cell.toLocaleString("en-US") : cell;
    tr.append(td);
  }
  return tr;
}

function showRun(r: RunReport): void {
  show("trace-name", r.trace);
  show("operations", r.operations.toLocaleString("en-US"), r.operations);
  show("failed", r.failedAllocations.toLocaleString("en-US"), r.failedAllocations);
  show("peak-memory", bytes(r.peakMemoryBytes), r.peakMemoryBytes);
  show("end-memory", bytes(r.endMemoryBytes), r.endMemoryBytes);
  show("peak-live", bytes(r.peakLiveBytes), r.peakLiveBytes);
  show("live-end", bytes(r.liveBytesAtEnd), r.liveBytesAtEnd);
  show("time", `${r.elapsedMs.toFixed(2)} ms (${r.nsPerOp.toFixed(1)} ns/op, every block verified)`);
  $("#replay-command-line").hidden = r.command === undefined;
  $("#replay-command").textContent = r.command ?? "";
  $("#work tbody").replaceChildren(
    ...(["malloc", "free", "realloc", "all"] as const).map((call) => {
      const w = r.work[call];
      const tr = row([call, w.count, w.mean.toFixed(2), w.worst]);
      tr.dataset.call = call;
      tr.dataset.worst = String(w.worst);
      tr.dataset.total = String(w.total);
      return tr;
    }),
  );
  $("#heap-stats").hidden = !r.heap;
  if (r.heap) {
    $("#heap-stats tbody").replaceChildren(
      ...r.heap.layers.map((l) => row([l.layer, l.usedBlocks, l.usedBytes, l.freeBlocks, l.freeBytes, l.largestFree])),
    );
    $("#fragmentation").textContent = `free bytes ${r.heap.freeBytes.toLocaleString("en-US")}, largest free block ${r.heap.largestFree.toLocaleString("en-US")}, fragmentation ${(r.heap.fragmentation * 100).toFixed(1)} %`;
  }
}

// ---- actions ---------------------------------------------------------------------------------

/** The state of the module shown, or undefined when the form changed since (or nothing is built). */
let builtState: string | undefined;

async function build(): Promise<boolean> {
  $("#error").hidden = true;
  let state: PlaygroundState;
  try {
    state = readForm();
  } catch (error) {
    showError((error as Error).message);
    return false;
  }
  history.replaceState(null, "", link(state));
  status("Building…");
  builtState = undefined;
  clearRun();
  try {
    const { module } = await ask({ kind: "build", state });
    showModule(module!);
    builtState = codec.format(state).toString();
    status(`Built ${module!.composition} in ${module!.buildMs.toFixed(0)} ms.`);
    return true;
  } catch (error) {
    showError((error as Error).message);
    return false;
  }
}

async function run(): Promise<void> {
  if (builtState === undefined || builtState !== codec.format(readForm()).toString()) {
    if (!(await build())) return;
  }
  const state = readForm();
  history.replaceState(null, "", link(state));
  const textSource = (form.querySelector<HTMLInputElement>('input[name="source"]:checked')?.value ?? "workload") === "text";
  const source: TraceSource = textSource
    ? { kind: "text", name: $<HTMLInputElement>("#trace-file").files?.[0]?.name ?? "pasted trace", text: field<HTMLTextAreaElement>("trace").value }
    : { kind: "workload", name: state.workload, seed: state.seed };
  $("#error").hidden = true;
  status(`Running ${textSource ? source.name : state.workload}…`);
  clearRun();
  try {
    const { run: report } = await ask({ kind: "run", source });
    showRun(report!);
    status(`Ran ${report!.trace} on ${[...state.strategy, state.backend].join(" > ")}.`);
  } catch (error) {
    showError((error as Error).message);
  }
}

const codec = new StateCodec(await catalogReady);
setUpForm(codec.catalog);
try {
  writeForm(codec.parse(location.search));
} catch (error) {
  writeForm(codec.defaults);
  showError(`${(error as Error).message}: showing the defaults`);
}
form.addEventListener("change", showBackendFields);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  void build();
});
$("#run").addEventListener("click", () => void run());
$("#copy-link").addEventListener("click", async () => {
  let url: string;
  try {
    url = link(readForm());
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  history.replaceState(null, "", url);
  try {
    await navigator.clipboard.writeText(url);
    status("Link copied: it opens the page with these options.");
  } catch {
    status(`Link (copy it from the address bar): ${url}`);
  }
});
$<HTMLInputElement>("#trace-file").addEventListener("change", async (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (!file) return;
  field<HTMLTextAreaElement>("trace").value = await file.text();
  form.querySelector<HTMLInputElement>('input[name="source"][value="text"]')!.checked = true;
});
void build();
