/**
 * Node 20 and 22 run memory64 modules (the 64-bit builds' tests) only behind
 * `--experimental-wasm-memory64`. Set here in every test process, before any test runs, rather than
 * in `execArgv`: worker threads (the thread-safe builds' tests) inherit the process's execArgv and
 * refuse V8 flags there, while a flag set at run time is the whole process's. Engines that ship
 * memory64 need nothing (and may not know the flag): the smallest module with a memory64 memory
 * tells which this Node is.
 */
import { setFlagsFromString } from "node:v8";

const memory64Module = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 4, 0]);
if (!WebAssembly.validate(memory64Module)) setFlagsFromString("--experimental-wasm-memory64");
