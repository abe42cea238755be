// Only types from the packages here: binaryen.js (13 MB) loads in the worker alone.
import type { ModuleReport, RunReport, TraceSource } from "./session.ts";
import { StateCodec, type Catalog, type CatalogEntry, type PlaygroundState } from "./state.ts";
import type { WorkerReady, WorkerRequest, WorkerResponse } from "./worker.ts";

/** Compositions offered in the strategy and backend fields (anything the CLI takes can be typed). */
const STACKS = ["free-list", "size-classes,free-list", "free-list(fit=first)", "bump", "size-classes,bump"];
const BACKENDS = ["grow", "grow(growth=exact,exclusive)", "static(start=64KiB,size=16MiB)"];

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
  $("#stacks").append(...STACKS.map((stack) => new Option(stack, stack)));
  $("#backends").append(...BACKENDS.map((backend) => new Option(backend, backend)));
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
  const help = (entries: readonly CatalogEntry[]) => entries.map((e) => `${e.name}: ${e.summary}`).join("\n");
  field("strategy").title = help(catalog.strategies);
  field("backend").title = help(catalog.backends);
}

function showWorkload(): void {
  const workload = codec.catalog.workloads.find((w) => w.name === field<HTMLSelectElement>("workload").value);
  $("#workload-description").textContent = workload?.description ?? "";
}

interface ShownPart {
  readonly name: string;
  readonly options: Readonly<Record<string, number | string | boolean>>;
}

/**
 * One small form per part (strategy or backend) with a field per option of its schema: empty
 * means the default. Editing a field rewrites that part in the `--strategy`/`--backend` text.
 */
function optionFields(kind: "strategy" | "backend", parts: readonly ShownPart[]): HTMLElement[] {
  const entries = kind === "strategy" ? codec.catalog.strategies : codec.catalog.backends;
  return parts.flatMap((part, index) => {
    const entry = entries.find((e) => e.name === part.name);
    if (!entry || entry.options.length === 0) return [];
    const set = document.createElement("fieldset");
    set.className = "part";
    set.dataset.index = String(index);
    const legend = document.createElement("legend");
    legend.textContent = `${part.name} options`;
    set.append(legend);
    for (const option of entry.options) {
      const label = document.createElement("label");
      label.title = option.doc;
      const given = part.options[option.name];
      let input: HTMLInputElement | HTMLSelectElement;
      if (option.kind === "enum" || option.kind === "bool") {
        input = document.createElement("select");
        const values = option.kind === "bool" ? ["true", "false"] : (option.values ?? []);
        input.append(new Option(`default (${option.defaultText})`, ""), ...values.map((v) => new Option(v, v)));
      } else {
        input = Object.assign(document.createElement("input"), { placeholder: `default: ${option.defaultText}`, spellcheck: false });
      }
      input.name = `${kind}.${part.name}.${option.name}`;
      input.dataset.option = option.name;
      input.value = given === undefined ? "" : String(given);
      label.append(option.name, input);
      set.append(label);
    }
    return [set];
  });
}

/** Puts the option fields of `kind` into its text: `name(option=value,...)` per part, as the CLI writes it. */
function applyOptionFields(kind: "strategy" | "backend"): void {
  if (!lastModule) return;
  const parts: readonly ShownPart[] = kind === "strategy" ? lastModule.stack : [lastModule.backend];
  field(kind).value = parts
    .map((part, index) => {
      const set = $(`#${kind}-options`).querySelector(`fieldset[data-index="${index}"]`);
      if (!set) return part.name;
      const items = [...set.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[data-option]")]
        .filter((input) => input.value.trim() !== "")
        .map((input) => (input.value === "true" ? input.dataset.option! : `${input.dataset.option}=${input.value.trim()}`));
      return items.length ? `${part.name}(${items.join(",")})` : part.name;
    })
    .join(",");
}

function writeForm(state: PlaygroundState): void {
  field("strategy").value = state.strategy;
  field("backend").value = state.backend;
  field<HTMLSelectElement>("memory").value = state.memory;
  for (const box of form.querySelectorAll<HTMLInputElement>('input[name="export"]')) box.checked = state.exports.includes(box.value);
  field("min-align").value = String(state.minAlign);
  field<HTMLSelectElement>("opt").value = state.opt;
  field("bulk-memory").checked = state.bulkMemory;
  field("debug").checked = state.debug;
  field("stats").checked = state.stats;
  field<HTMLSelectElement>("workload").value = state.workload;
  field("seed").value = String(state.seed);
  showWorkload();
}

/** The form as a state, through the link's own parser: the form and a link mean the same. */
function readForm(): PlaygroundState {
  return codec.parse(
    new URLSearchParams({
      strategy: field("strategy").value,
      backend: field("backend").value,
      memory: field<HTMLSelectElement>("memory").value,
      exports: [...form.querySelectorAll<HTMLInputElement>('input[name="export"]:checked')].map((box) => box.value).join(","),
      "min-align": field("min-align").value,
      opt: field<HTMLSelectElement>("opt").value,
      "bulk-memory": field("bulk-memory").checked ? "1" : "0",
      debug: field("debug").checked ? "1" : "0",
      stats: field("stats").checked ? "1" : "0",
      workload: field<HTMLSelectElement>("workload").value,
      seed: field("seed").value,
    }),
  );
}

function link(state: PlaygroundState): string {
  const query = codec.format(state).toString();
  return `${location.origin}${location.pathname}${query ? `?${query}` : ""}`;
}

// ---- the output ------------------------------------------------------------------------------

const bytes = (n: number) => `${n.toLocaleString("en-US")} B`;

/** Shows `text` in `#id`, with the exact value in `data-value` (what the end-to-end test reads). */
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
  $("#heap-map").hidden = true;
  $("#heap-stats").hidden = true;
  $("#replay-command-line").hidden = true;
}

function showModule(m: ModuleReport): void {
  show("composition", m.composition);
  $("#layers").replaceChildren(
    ...m.layers.map((layer) => {
      const line = document.createElement("div");
      const options = Object.entries(layer.options).map(([k, v]) => `${k}=${v}`);
      line.textContent = `${layer.name}: ${options.length ? options.join(", ") : "no options"}`;
      return line;
    }),
  );
  show("size", bytes(m.size), m.size);
  show("exports-out", m.exports.join(", "), m.exports.join(","));
  show("imports", m.imports.length ? m.imports.join(", ") : "none");
  show("sha256", m.sha256, m.sha256);
  $("#build-command").textContent = m.command;
  $("#wat").textContent = m.wat;
  $("#strategy-options").replaceChildren(...optionFields("strategy", m.stack));
  $("#backend-options").replaceChildren(...optionFields("backend", [m.backend]));
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
  // An image, not inline markup: the picture is shown, never run.
  const map = $<HTMLImageElement>("#heap-map");
  map.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(r.heapMap)}`;
  map.hidden = false;
  $("#heap-stats").hidden = !r.heap;
  $("#work-debug").hidden = !r.checked;
  $("#heap-kind").textContent = r.checked ? "(debug build: every invariant checked)" : "(heap_stats)";
  if (r.heap) {
    $("#heap-stats tbody").replaceChildren(
      ...r.heap.layers.map((l) => row([l.layer, l.usedBlocks, l.usedBytes, l.freeBlocks, l.freeBytes, l.largestFree])),
    );
    $("#fragmentation").textContent = `free bytes ${r.heap.freeBytes.toLocaleString("en-US")}, largest free block ${r.heap.largestFree.toLocaleString("en-US")}, fragmentation ${(r.heap.fragmentation * 100).toFixed(1)} %`;
  }
}

// ---- actions ---------------------------------------------------------------------------------

/** The module shown and the state it was built from (undefined while a build is under way or failed). */
let lastModule: ModuleReport | undefined;
let builtQuery: string | undefined;
/** Only the latest build's answer is shown. */
let buildGeneration = 0;

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
  const generation = ++buildGeneration;
  status("Building…");
  builtQuery = undefined;
  clearRun();
  try {
    const { module } = await ask({ kind: "build", state });
    if (generation !== buildGeneration) return false;
    lastModule = module!;
    builtQuery = codec.format(state).toString();
    showModule(module!);
    status(`Built ${module!.composition} in ${module!.buildMs.toFixed(0)} ms.`);
    return true;
  } catch (error) {
    if (generation === buildGeneration) showError((error as Error).message);
    return false;
  }
}

async function run(): Promise<void> {
  let state: PlaygroundState;
  try {
    state = readForm();
  } catch (error) {
    showError((error as Error).message);
    return;
  }
  if (builtQuery !== codec.format(state).toString() && !(await build())) return;
  history.replaceState(null, "", link(state));
  const textSource = (form.querySelector<HTMLInputElement>('input[name="source"]:checked')?.value ?? "workload") === "text";
  const source: TraceSource = textSource
    ? { kind: "text", name: $<HTMLInputElement>("#trace-file").files?.[0]?.name ?? "pasted trace", text: field<HTMLTextAreaElement>("trace").value }
    : { kind: "workload", name: state.workload, seed: state.seed };
  $("#error").hidden = true;
  status(`Running ${source.name}…`);
  clearRun();
  try {
    const { run: report } = await ask({ kind: "run", source });
    showRun(report!);
    status(`Ran ${report!.trace} on ${lastModule?.composition ?? "the module"}.`);
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
// A change to the composition rebuilds it; so does a change of its options.
form.addEventListener("change", (event) => {
  const target = event.target as HTMLInputElement;
  if (target.name === "workload") return showWorkload();
  if (target.name === "seed" || target.name === "source" || target.name === "trace" || target.id === "trace-file") return;
  const part = /^(strategy|backend)\./.exec(target.name)?.[1] as "strategy" | "backend" | undefined;
  if (part) applyOptionFields(part);
  void build();
});
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
// An edited trace is no longer the file's: it runs as "pasted trace".
field<HTMLTextAreaElement>("trace").addEventListener("input", () => {
  $<HTMLInputElement>("#trace-file").value = "";
  form.querySelector<HTMLInputElement>('input[name="source"][value="text"]')!.checked = true;
});
void build();
