/**
 * Node module hooks that run the workspace's TypeScript sources directly, for the root scripts
 * (`pnpm start`, `pnpm alloc`, `pnpm soak`): only `.ts` files are transpiled (types stripped, by
 * esbuild); every other module, binaryen's 14 MB index.js among them, loads untouched. That is
 * the difference from `tsx`, whose loader handles every module and takes 15-50 s over binaryen's
 * file on each start; this starts in about a second.
 *
 * Registered by register-ts.mjs; workspace packages resolve to their sources through Node's
 * `--conditions=source`.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

/**
 * esbuild, from tsx's own dependency (tsx is a root devDependency); failing that, TypeScript's
 * transpileModule (a root devDependency too; about 2 s more to load).
 */
async function loadTransformer() {
  const fromRoot = createRequire(new URL("../../../package.json", import.meta.url));
  try {
    const fromTsx = createRequire(fromRoot.resolve("tsx/package.json"));
    const esbuild = await import(pathToFileURL(fromTsx.resolve("esbuild")).href);
    return (source, file) =>
      (esbuild.default ?? esbuild)
        .transform(source, { loader: "ts", format: "esm", target: "es2022", sourcemap: "inline", sourcefile: file })
        .then((r) => r.code);
  } catch {
    const ts = (await import(pathToFileURL(fromRoot.resolve("typescript")).href)).default;
    const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true, inlineSourceMap: true };
    return async (source, file) => ts.transpileModule(source, { fileName: file, compilerOptions }).outputText;
  }
}

let transformer;

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !/\.m?ts$/.test(new URL(url).pathname)) return nextLoad(url, context);
  const file = fileURLToPath(url);
  transformer ??= loadTransformer();
  const source = await (await transformer)(await readFile(file, "utf8"), file);
  return { format: "module", source, shortCircuit: true };
}
