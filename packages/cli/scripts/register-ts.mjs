/**
 * `node --conditions=source --import ./packages/cli/scripts/register-ts.mjs file.ts`: runs a
 * TypeScript entry point of the workspace without a build (see ts-hooks.mjs).
 */
import { register } from "node:module";

register("./ts-hooks.mjs", import.meta.url);
