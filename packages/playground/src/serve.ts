import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build, preview, type PreviewServer } from "vite";

/** The package's folder: vite.config.ts and index.html. */
const root = dirname(dirname(fileURLToPath(import.meta.url)));

export interface Served {
  /** The page's address, e.g. http://127.0.0.1:4173/ */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Builds the page into dist/ (Vite) and serves it on 127.0.0.1 (Vite's static preview server).
 * `port` 0 takes a free one.
 */
export async function buildAndServe(port: number): Promise<Served> {
  await build({ root, logLevel: "warn" });
  const server: PreviewServer = await preview({ root, logLevel: "warn", preview: { host: "127.0.0.1", port, strictPort: true, open: false } });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error("playground: the preview server has no address");
  return { url, close: () => server.close() };
}
