import { TraceBuilder, type Trace } from "./trace.ts";

/** A trace file that is not well formed: names the file and the 1-based line. */
export class TraceParseError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = "TraceParseError";
  }
}

const NUMBER = String.raw`\s*(\d+)\s*`;
const LINE = new RegExp(String.raw`^\s*(?:(Alloc|Free)\(${NUMBER}\)|Realloc\(${NUMBER},${NUMBER}\))\s*,?\s*$`);

/**
 * Parses wee_alloc's trace format, one operation per line: `Alloc(N),` (allocation number k,
 * counting Alloc lines from 0), `Free(k),`, and this project's extension `Realloc(k,N),`.
 * Blank lines are allowed; the trailing comma is optional. Throws a {@link TraceParseError}
 * naming the file and line for anything else, and for a Free or Realloc of an allocation that
 * does not exist yet.
 */
export function parseTrace(text: string, name = "trace"): Trace {
  const builder = new TraceBuilder();
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = i + 1;
    if (raw.trim() === "") continue;
    const m = LINE.exec(raw);
    if (!m) {
      throw new TraceParseError(name, line, `expected Alloc(size), Free(k) or Realloc(k,size), got ${JSON.stringify(clip(raw))}`);
    }
    try {
      if (m[1] === "Alloc") builder.alloc(Number(m[2]), line);
      else if (m[1] === "Free") builder.free(Number(m[2]), line);
      else builder.realloc(Number(m[3]), Number(m[4]), line);
    } catch (error) {
      throw new TraceParseError(name, line, `${(error as Error).message} in ${JSON.stringify(clip(raw.trim()))}`);
    }
  }
  return builder.build(name);
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
