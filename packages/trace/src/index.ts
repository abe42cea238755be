/**
 * @alloc/trace: allocation traces (wee_alloc's format plus `Realloc`), seeded workloads, and a
 * replay driver that runs a whole trace inside Wasm against any allocator, verifying every block.
 */
export { formatOp, formatTrace, describeOp, TraceBuilder, MAX_ALLOCATIONS, MAX_SIZE } from "./trace.ts";
export type { Trace, TraceOp } from "./trace.ts";
export { parseTrace, TraceParseError } from "./parse.ts";
export { generateWorkload, WORKLOADS } from "./workloads.ts";
export type { Workload, WorkloadKind, WorkloadName, WorkloadOptions } from "./workloads.ts";
export { createReplayer, replay, Replayer, ReplayError } from "./replay.ts";
export type { ReplayOptions, ReplayResult, ReplayTarget, RunOptions } from "./replay.ts";
export { buildDriver, STATUS } from "./driver.ts";
export type { Status } from "./driver.ts";
export { Random } from "./random.ts";
export { instrumentWork, measureWork, WORK_EXPORT, WORK_UNIT } from "./work.ts";
export type { OpWork, WorkOptions, WorkResult } from "./work.ts";
