import { describe, expect, test } from "vitest";
import { catalog } from "./session.ts";
import { StateCodec, StateError } from "./state.ts";

const codec = new StateCodec(catalog());

describe("a link's query", () => {
  test("an empty query is the CLI's defaults, and the defaults make an empty query", () => {
    expect(codec.parse("")).toEqual(codec.defaults);
    expect(codec.defaults.strategy).toEqual(["free-list"]);
    expect(codec.defaults.exports).toEqual(["malloc", "free", "calloc", "realloc", "aligned_alloc"]);
    expect(codec.format(codec.defaults).toString()).toBe("");
  });

  test("every option survives a round trip, under the CLI's flag names", () => {
    const query =
      "strategy=size-classes%2Cbump&growth=exact&exclusive=1&memory=import&exports=malloc%2Cfree&min-align=16&opt=speed&bulk-memory=0&debug=1&workload=staircase&seed=7";
    const state = codec.parse(query);
    expect(state).toMatchObject({ strategy: ["size-classes", "bump"], growth: "exact", exclusive: true, memory: "import", minAlign: 16, bulkMemory: false, debug: true, seed: 7 });
    expect(codec.format(state).toString()).toBe(query);
    const fixed = codec.parse("backend=static&static-start=131072&static-size=1048576&growth=1/4");
    expect(fixed).toMatchObject({ backend: "static", staticStart: 131072, staticSize: 1048576 });
    // The growth of a static composition means nothing: the link leaves it out.
    expect(codec.format(fixed).toString()).toBe("backend=static&static-start=131072&static-size=1048576");
  });

  test("the CLI's arguments for the same module and the same run", () => {
    const state = codec.parse("strategy=size-classes,free-list&exclusive=1&bulk-memory=0&exports=malloc,free&workload=compiler&seed=3");
    expect(codec.cliArguments(state, "build")).toEqual([
      "build", "--strategy", "size-classes,free-list", "--exclusive", "--exports", "malloc,free", "--no-bulk-memory",
    ]);
    expect(codec.cliArguments(state, "replay")).toEqual([
      "replay", "--workload", "compiler", "--seed", "3", "--strategy", "size-classes,free-list", "--exclusive", "--no-bulk-memory",
    ]);
  });

  test.each([
    ["strategy=size-classes,nope", 'strategy: "nope" is not one of bump, free-list, size-classes'],
    ["strategy=", "strategy: needs at least one strategy"],
    ["backend=mmap", 'backend: "mmap" is not one of grow, static'],
    ["min-align=-8", 'min-align: "-8" is not a whole number from 1 to 65536'],
    ["seed=1.5", 'seed: "1.5" is not a whole number'],
    ["growth=fast", 'growth: "fast" is not "exact" or a fraction such as 1/8'],
    ["debug=yes", 'debug: "yes" is not one of 1, 0'],
    ["workload=everything", 'workload: "everything" is not one of small-churn'],
    ["colour=blue", 'unknown option "colour" in the link'],
  ])("%s is refused, naming the option and the value", (query, message) => {
    expect(() => codec.parse(query)).toThrow(StateError);
    expect(() => codec.parse(query)).toThrow(message);
  });
});
