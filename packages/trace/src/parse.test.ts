import { describe, expect, test } from "vitest";
import { formatTrace, parseTrace, TraceParseError } from "./index.ts";

describe("parseTrace", () => {
  test("reads wee_alloc's format: allocations are numbered by Alloc lines from 0", () => {
    const trace = parseTrace("Alloc(552),\nAlloc(120),\nFree(1),\nAlloc(5),\nFree(0),\n", "t.trace");
    expect(trace.name).toBe("t.trace");
    expect(trace.allocations).toBe(3);
    expect(trace.ops).toEqual([
      { op: "alloc", index: 0, size: 552 },
      { op: "alloc", index: 1, size: 120 },
      { op: "free", index: 1 },
      { op: "alloc", index: 2, size: 5 },
      { op: "free", index: 0 },
    ]);
    expect(trace.lines).toEqual([1, 2, 3, 4, 5]);
  });

  test("reads the Realloc(k,N) extension, blank lines, CRLF, spaces and a missing comma", () => {
    const trace = parseTrace("Alloc(8),\r\n\r\n  Realloc( 0 , 64 ),\nFree(0)\n\n", "x");
    expect(trace.ops).toEqual([
      { op: "alloc", index: 0, size: 8 },
      { op: "realloc", index: 0, size: 64 },
      { op: "free", index: 0 },
    ]);
    expect(trace.lines).toEqual([1, 3, 4]);
  });

  test("formatTrace is its inverse", () => {
    const text = "Alloc(1),\nAlloc(4294967295),\nRealloc(1,0),\nFree(1),\nFree(1),\n";
    expect(formatTrace(parseTrace(text))).toBe(text);
  });

  test.each([
    ["an unknown operation", "Alloc(8),\nMalloc(8),\n", 2, /expected Alloc\(size\)/],
    ["a negative size", "Alloc(-1),\n", 1, /expected/],
    ["a size beyond 32 bits", "Alloc(1),\n\nAlloc(4294967296),\n", 3, /size must be an integer from 0 to 4294967295/],
    ["a free of an allocation that does not exist yet", "Alloc(8),\nFree(1),\n", 2, /allocation 1 does not exist yet \(1 allocation so far\)/],
    ["a realloc of an allocation that does not exist yet", "Realloc(0,8),\n", 1, /allocation 0 does not exist yet/],
    ["a missing argument", "Alloc(8),\nRealloc(0),\n", 2, /expected/],
    ["trailing garbage", "Alloc(8), Free(0),\n", 1, /expected/],
  ])("a malformed line throws naming the file and line: %s", (_what, text, line, message) => {
    let error: unknown;
    try {
      parseTrace(text, "bad.trace");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TraceParseError);
    const e = error as TraceParseError;
    expect(e.file).toBe("bad.trace");
    expect(e.line).toBe(line);
    expect(e.message).toMatch(new RegExp(`^bad\\.trace:${line}: `));
    expect(e.message).toMatch(message);
  });
});
