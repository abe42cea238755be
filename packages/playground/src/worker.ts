/// <reference lib="webworker" />
import { catalog, Session, type ModuleReport, type RunReport, type TraceSource } from "./session.ts";
import type { Catalog, PlaygroundState } from "./state.ts";

/** What the page asks the worker: build a composition, or run a trace on the last one built. */
export type WorkerRequest =
  | { readonly id: number; readonly kind: "build"; readonly state: PlaygroundState }
  | { readonly id: number; readonly kind: "run"; readonly source: TraceSource };

/** The worker's first message, once binaryen.js and the packages are loaded. */
export interface WorkerReady {
  readonly ready: Catalog;
}

export type WorkerResponse =
  | { readonly id: number; readonly ok: true; readonly module?: ModuleReport; readonly run?: RunReport }
  | { readonly id: number; readonly ok: false; readonly error: string };

// Binaryen and the replays run here, off the page's thread: the page stays responsive, and
// WebAssembly modules of any size compile synchronously (the main thread refuses large ones).
let session: Session | undefined;
// One request at a time, in order: a build awaits (hashing), and the next must not overtake it.
let queue = Promise.resolve();

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  queue = queue.then(() => handle(event.data));
};

async function handle(request: WorkerRequest): Promise<void> {
  let response: WorkerResponse;
  try {
    if (request.kind === "build") {
      session = undefined;
      session = await Session.build(request.state);
      response = { id: request.id, ok: true, module: session.report };
    } else {
      if (!session) throw new Error("build a composition first");
      response = { id: request.id, ok: true, run: await session.run(request.source) };
    }
  } catch (error) {
    response = { id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(response);
}

self.postMessage({ ready: catalog() } satisfies WorkerReady);
