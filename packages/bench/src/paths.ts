import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** This package's folder. */
export const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
/** Sources of the peers (committed). */
export const PEERS_SRC_DIR = join(PACKAGE_DIR, "peers-src");
/** Where `setup` builds the peers (git-ignored). */
export const PEERS_DIR = join(PACKAGE_DIR, "peers");
/** Where `bench` writes its JSON and SVG by default. */
export const RESULTS_DIR = join(PACKAGE_DIR, "results");
