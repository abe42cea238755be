import { describe, expect, test } from "vitest";
import { catalog } from "./session.ts";
import { StateCodec, StateError } from "./state.ts";

const codec = new StateCodec(catalog());

describe("a link's query", () => {
  test("an empty query is the CLI's defaults, and the defaults make an empty query", () => {
    expect(codec.parse("")).toEqual(codec.defaults);
    expect(codec.defaults).toMatchObject({ strategy: "free-list", backend: "grow" });
    expect(codec.defaults.exports).toEqual(["malloc", "free", "calloc", "realloc", "aligned_alloc"]);
    expect(codec.format(codec.defaults).toString()).toBe("");
  });

  test("every option survives a round trip, under the CLI's flag names", () => {
    const query =
      "strategy=size-classes%28maxSmall%3D512%29%2Cbump&backend=grow%28growth%3Dexact%2Cexclusive%29&memory=import&exports=malloc%2Cfree&min-align=16&opt=speed&bulk-memory=0&debug=1&stats=1&workload=staircase&seed=7";
    const state = codec.parse(query);
    expect(state).toMatchObject({
      strategy: "size-classes(maxSmall=512),bump",
      backend: "grow(growth=exact,exclusive)",
      memory: "import",
      exports: ["malloc", "free"],
      minAlign: 16,
      opt: "speed",
      bulkMemory: false,
      debug: true,
      stats: true,
      workload: "staircase",
      seed: 7,
    });
    expect(codec.format(state).toString()).toBe(query);
  });

  test("the CLI's arguments for the same module and the same run", () => {
    const state = codec.parse("strategy=size-classes(maxSmall=512),free-list&backend=static(start=64KiB,size=1MiB)&bulk-memory=0&stats=1&exports=malloc,free&workload=compiler&seed=3");
    expect(codec.cliArguments(state, "build")).toEqual([
      "build", "--strategy", "size-classes(maxSmall=512),free-list", "--backend", "static(start=64KiB,size=1MiB)", "--exports", "malloc,free", "--no-bulk-memory", "--stats",
    ]);
    expect(codec.cliArguments(state, "replay")).toEqual([
      "replay", "--workload", "compiler", "--seed", "3", "--strategy", "size-classes(maxSmall=512),free-list", "--backend", "static(start=64KiB,size=1MiB)", "--no-bulk-memory", "--stats",
    ]);
  });

  test.each([
    ["strategy=", "strategy: needs at least one name"],
    ["backend=%20", "backend: needs at least one name"],
    ["min-align=-8", 'min-align: "-8" is not a whole number from 1 to 65536'],
    ["seed=1.5", 'seed: "1.5" is not a whole number'],
    ["growth=exact", 'unknown option "growth" in the link'],
    ["debug=yes", 'debug: "yes" is not one of 1, 0'],
    ["workload=everything", 'workload: "everything" is not one of small-churn'],
  ])("%s is refused, naming the option and the value", (query, message) => {
    expect(() => codec.parse(query)).toThrow(StateError);
    expect(() => codec.parse(query)).toThrow(message);
  });
});
