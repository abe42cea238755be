import { binaryen } from "@alloc/core";

/**
 * Executed Wasm instructions, counted per function: a deterministic measure of the code a run
 * executes, where `measureWork`'s unit (function entries and loop iterations) sees none of the
 * straight-line instructions in between.
 *
 * Every instruction counts 1 except the structural ones (`block`, `loop`, `nop`, and the `end`
 * and `else` that close them): an `if`, a `br_if`, a `local.get` and an `i32.load` count 1 each,
 * as in the binary format. The count is charged per straight-line region when the region is
 * entered (a function body, each child of a block, a loop body on every iteration, the arm of an
 * if that runs): the instructions of the region outside its nested blocks, loops and if arms.
 * A branch or return that leaves a region from an operand in the middle of an instruction (such
 * as a `br_if` as a call's first argument) still charges what follows it in that region; a
 * `br_if` standing alone as a block's child, the form compilers and Binaryen emit, is exact.
 *
 * Speed is not the count: two allocators' instructions compare loosely (dependent loads, calls
 * and code layout weigh differently), one allocator's instructions over two builds compare well.
 */
export const INSTRUCTION_UNIT = "executed Wasm instructions (every instruction but block, loop, nop, else and end counts 1)";

/** A module with counters, and the function each pair of counters belongs to. */
export interface InstrumentedModule {
  readonly binary: Uint8Array;
  /** Names of the instrumented (defined) functions: counter `i` of {@link counterExports} is `functions[i]`'s. */
  readonly functions: readonly string[];
}

/** The export names of function `i`'s counters (mutable i64 globals): instructions and calls. */
export function counterExports(i: number): { readonly instructions: string; readonly calls: string } {
  return { instructions: `alloc~instructions/${i}`, calls: `alloc~calls/${i}` };
}

/** binaryen.js's expression and function setters (at run time; its typings leave them out). */
const edit = binaryen as unknown as {
  Block: { setChildAt(block: number, index: number, child: number): void };
  Loop: { setBody(loop: number, body: number): void };
  If: { setIfTrue(e: number, arm: number): void; setIfFalse(e: number, arm: number): void };
  Function: { setBody(f: number, body: number): void };
};

/** Features of the C programs and of the swapped builds (bulk memory: calloc's fill, realloc's copy). */
const FEATURES =
  binaryen.Features.MutableGlobals | binaryen.Features.SignExt | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt | binaryen.Features.NontrappingFPToInt;

/** The operands of an instruction that are inside its region: all but the arms of an if and the contents of blocks and loops. */
function operands(e: number): number[] {
  const id = binaryen.getExpressionId(e);
  if (id === binaryen.BlockId || id === binaryen.LoopId || id === binaryen.NopId || id === binaryen.UnreachableId) return [];
  const info = binaryen.getExpressionInfo(e) as unknown as Record<string, unknown>;
  const pick = (...keys: string[]) => keys.map((k) => info[k] as number).filter((x) => x);
  switch (id) {
    case binaryen.IfId:
      return pick("condition");
    case binaryen.LocalGetId:
    case binaryen.GlobalGetId:
    case binaryen.ConstId:
    case binaryen.MemorySizeId:
      return [];
    case binaryen.LocalSetId:
    case binaryen.GlobalSetId:
    case binaryen.UnaryId:
    case binaryen.DropId:
    case binaryen.ReturnId:
      return pick("value");
    case binaryen.LoadId:
      return pick("ptr");
    case binaryen.StoreId:
      return pick("ptr", "value");
    case binaryen.BinaryId:
      return pick("left", "right");
    case binaryen.SelectId:
      return pick("ifTrue", "ifFalse", "condition");
    case binaryen.BreakId:
    case binaryen.SwitchId:
      return pick("value", "condition");
    case binaryen.CallId:
      return [...(info.operands as number[])];
    case binaryen.CallIndirectId:
      return [...(info.operands as number[]), info.target as number];
    case binaryen.MemoryGrowId:
      return pick("delta");
    case binaryen.MemoryFillId:
      return pick("dest", "value", "size");
    case binaryen.MemoryCopyId:
      return pick("dest", "source", "size");
    default:
      throw new RangeError(`instructions: expression kind ${id} is not supported (${binaryen.emitText(e).slice(0, 60).trim()}...)`);
  }
}

/** Instructions of the region rooted at `e`: `e` and its operands, not what is in nested blocks, loops and if arms. */
function regionSize(e: number): number {
  const id = binaryen.getExpressionId(e);
  if (id === binaryen.BlockId || id === binaryen.LoopId || id === binaryen.NopId) return 0;
  return 1 + operands(e).reduce((sum, o) => sum + regionSize(o), 0);
}

/** The blocks, loops and ifs of the region rooted at `e` (whose own regions need counters). */
function nestedControl(e: number, out: number[]): number[] {
  const id = binaryen.getExpressionId(e);
  if (id === binaryen.BlockId || id === binaryen.LoopId || id === binaryen.IfId) out.push(e);
  if (id !== binaryen.BlockId && id !== binaryen.LoopId) for (const o of operands(e)) nestedControl(o, out);
  return out;
}

/**
 * `binary` with two counters per defined function (see {@link counterExports}), exported: the
 * instructions it executed ({@link INSTRUCTION_UNIT}) and the calls made to it. Everything else
 * is unchanged: same imports, exports, behaviour.
 */
export function instrumentInstructions(binary: Uint8Array): InstrumentedModule {
  const module = binaryen.readBinary(binary);
  try {
    module.setFeatures(FEATURES);
    const functions: string[] = [];
    const add = (counter: string, n: number) =>
      module.global.set(counter, module.i64.add(module.global.get(counter, binaryen.i64), module.i64.const(BigInt(n) as never)));
    for (let i = 0; i < module.getNumFunctions(); i++) {
      const ref = module.getFunctionByIndex(i);
      const info = binaryen.getFunctionInfo(ref);
      if (info.module) continue;
      const names = counterExports(functions.length);
      for (const name of [names.instructions, names.calls]) {
        module.addGlobal(name, binaryen.i64, true, module.i64.const(0n as never));
        module.addGlobalExport(name, name);
      }
      functions.push(info.name);
      /** Region `x`, charged on entry; the regions nested in it are instrumented first. */
      const counted = (x: number): number => {
        for (const c of nestedControl(x, [])) {
          const ci = binaryen.getExpressionInfo(c);
          if (ci.id === binaryen.BlockId) (ci as binaryen.BlockInfo).children.forEach((child, k) => edit.Block.setChildAt(c, k, counted(child)));
          else if (ci.id === binaryen.LoopId) edit.Loop.setBody(c, counted((ci as binaryen.LoopInfo).body));
          else {
            const arms = ci as binaryen.IfInfo;
            edit.If.setIfTrue(c, counted(arms.ifTrue));
            if (arms.ifFalse) edit.If.setIfFalse(c, counted(arms.ifFalse));
          }
        }
        const n = regionSize(x);
        return n ? module.block(null, [add(names.instructions, n), x], binaryen.getExpressionType(x)) : x;
      };
      const body = counted(info.body);
      edit.Function.setBody(ref, module.block(null, [add(names.calls, 1), body], binaryen.getExpressionType(body)));
    }
    if (!module.validate()) throw new Error("instructions: internal error: the instrumented module does not validate");
    return { binary: module.emitBinary(), functions };
  } finally {
    module.dispose();
  }
}

/** One function's counts. */
export interface FunctionCount {
  readonly name: string;
  readonly instructions: number;
  readonly calls: number;
}

/** The counts of an instance of an instrumented module: every function that ran, most instructions first. */
export function readInstructionCounts(instance: WebAssembly.Instance, instrumented: InstrumentedModule): FunctionCount[] {
  const read = (name: string) => Number((instance.exports[name] as WebAssembly.Global).value as bigint);
  return instrumented.functions
    .map((name, i) => ({ name, instructions: read(counterExports(i).instructions), calls: read(counterExports(i).calls) }))
    .filter((f) => f.calls > 0)
    .sort((a, b) => b.instructions - a.instructions || a.name.localeCompare(b.name));
}
