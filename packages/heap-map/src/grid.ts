import { PAGE_BYTES, type HeapRecording } from "./record.ts";

/**
 * Size classes of live blocks, by requested size: what the map colours them by. (Which layer of
 * a composition holds a block is not visible from outside the module.)
 */
export const SIZE_CLASSES: readonly { readonly max: number; readonly label: string }[] = [
  { max: 16, label: "≤ 16 B" },
  { max: 64, label: "17–64 B" },
  { max: 256, label: "65–256 B" },
  { max: 1024, label: "257 B–1 KiB" },
  { max: 4096, label: "1–4 KiB" },
  { max: 65536, label: "4–64 KiB" },
  { max: Infinity, label: "> 64 KiB" },
];

/** Shades of a live cell: the share of the cell's bytes × operations that is live, in quarters. */
export const LIVE_LEVELS = 4;

/**
 * What a cell shows, as stored in {@link HeapGrid.cells}: `outside` (not memory yet), `untouched`
 * (memory below or above every block handed out so far), `free` (between them, not live), or a
 * live code from {@link liveCode}.
 */
export const CELL = { outside: 0, untouched: 1, free: 2 } as const;

/** The cell code of live blocks of size class `sizeClass` at shade `level` (0 lightest). */
export function liveCode(sizeClass: number, level: number): number {
  return 3 + sizeClass * LIVE_LEVELS + level;
}

/** The number of distinct cell codes. */
export const CELL_CODES = 3 + SIZE_CLASSES.length * LIVE_LEVELS;

/** The size class (index into {@link SIZE_CLASSES}) of a block of `size` requested bytes. */
export function sizeClassOf(size: number): number {
  let c = 0;
  while (size > SIZE_CLASSES[c]!.max) c++;
  return c;
}

export interface GridOptions {
  /** At most this many time columns (default 256). */
  readonly maxColumns?: number;
  /** At most this many address rows (default 160). */
  readonly maxRows?: number;
}

/** The address and time axes shared by every map of one picture. */
export interface GridScale {
  readonly operations: number;
  readonly columns: number;
  readonly rows: number;
  /** Row r covers addresses [addressLow + r * rowBytes, + rowBytes), below addressHigh. */
  readonly addressLow: number;
  readonly addressHigh: number;
  readonly rowBytes: number;
}

/** A recording aggregated into cells: time columns × address rows. */
export interface HeapGrid extends GridScale {
  /** Column j covers operations [opStart[j], opStart[j + 1]). */
  readonly opStart: Uint32Array;
  /** Cell codes (see {@link CELL}), column-major: cells[j * rows + r]. */
  readonly cells: Uint8Array;
  /** The most live bytes during each column. */
  readonly liveBytes: Float64Array;
  /** Memory bytes at the end of each column. */
  readonly memoryBytes: Float64Array;
  /** Memory and live bytes before the first operation. */
  readonly initialMemoryBytes: number;
  /** The operations after which memory had grown, and the memory bytes after each. */
  readonly growOps: readonly number[];
  readonly growBytes: readonly number[];
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`heap map: ${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * The scale that fits every recording (all of one trace): from the page of the lowest block
 * handed out to the largest memory, in at most `maxRows` rows of a multiple of 16 bytes.
 */
export function gridScale(recordings: readonly HeapRecording[], options: GridOptions = {}): GridScale {
  const maxColumns = positiveInteger("maxColumns", options.maxColumns ?? 256);
  const maxRows = positiveInteger("maxRows", options.maxRows ?? 160);
  if (recordings.length === 0) throw new RangeError("heap map: needs at least one recording");
  const operations = recordings[0]!.operations;
  if (recordings.some((r) => r.operations !== operations)) {
    throw new RangeError(`heap map: recordings to compare must have the same operations (${recordings.map((r) => r.operations).join(" vs ")})`);
  }
  let low = Infinity, high = 0;
  for (const r of recordings) {
    high = Math.max(high, r.initialPages * PAGE_BYTES);
    for (let i = 0; i < r.operations; i++) {
      const a = r.address[i]!;
      if (a && a < low) low = a;
      high = Math.max(high, r.pages[i]! * PAGE_BYTES);
    }
  }
  low = low === Infinity ? 0 : Math.floor(low / PAGE_BYTES) * PAGE_BYTES;
  if (high <= low) high = low + PAGE_BYTES;
  const rowBytes = Math.max(16, Math.ceil((high - low) / maxRows / 16) * 16);
  return {
    operations,
    columns: Math.max(1, Math.min(maxColumns, operations)),
    rows: Math.ceil((high - low) / rowBytes),
    addressLow: low,
    addressHigh: high,
    rowBytes,
  };
}

/**
 * Aggregates a recording into cells. Each cell integrates its address range over its operations
 * (bytes × operations, the state after each operation): live bytes per size class, bytes between
 * the lowest block start and the highest block end so far ("touched"), and bytes of memory. A cell with live bytes shows its
 * dominant size class, shaded by the live share; otherwise the larger of free and untouched, or
 * nothing when most of it is not memory yet.
 */
export function buildGrid(recording: HeapRecording, scale: GridScale = gridScale([recording])): HeapGrid {
  const { columns, rows, addressLow: low, addressHigh: high, rowBytes } = scale;
  const n = recording.operations;
  if (n !== scale.operations) throw new RangeError(`heap map: the scale is for ${scale.operations} operations, the recording has ${n}`);
  const K = SIZE_CLASSES.length;
  const TOUCHED = K, MEMORY = K + 1, CHANNELS = K + 2;
  const value = new Float64Array(rows * CHANNELS), since = new Float64Array(rows * CHANNELS), acc = new Float64Array(rows * CHANNELS);

  /** Adds `sign` × the bytes of [from, to) to `channel` of the rows it overlaps, from operation t on. */
  const add = (channel: number, from: number, to: number, sign: number, t: number) => {
    from = Math.max(from, low);
    to = Math.min(to, high);
    if (to <= from) return;
    const last = Math.floor((to - 1 - low) / rowBytes);
    for (let r = Math.floor((from - low) / rowBytes); r <= last; r++) {
      const start = low + r * rowBytes;
      const bytes = Math.min(to, start + rowBytes) - Math.max(from, start);
      const x = r * CHANNELS + channel;
      acc[x]! += value[x]! * (t - since[x]!);
      since[x] = t;
      value[x]! += sign * bytes;
    }
  };

  const opStart = new Uint32Array(columns + 1);
  for (let j = 0; j <= columns; j++) opStart[j] = Math.floor((j * n) / columns);
  const cells = new Uint8Array(columns * rows);
  const liveBytes = new Float64Array(columns), memoryBytes = new Float64Array(columns);
  const growOps: number[] = [], growBytes: number[] = [];

  let memory = recording.initialPages * PAGE_BYTES;
  // The span blocks have covered so far: [touchedLow, touchedHigh) (empty before the first).
  let touchedLow = Infinity, touchedHigh = -Infinity;
  let live = 0;
  add(MEMORY, low, memory, 1, 0);
  for (let j = 0; j < columns; j++) {
    const begin = opStart[j]!, end = opStart[j + 1]!;
    let peak = live;
    for (let i = begin; i < end; i++) {
      const gone = recording.released[i]!;
      if (gone) {
        const s = recording.releasedSize[i]!;
        add(sizeClassOf(s), gone, gone + s, -1, i);
        live -= s;
      }
      const p = recording.address[i]!;
      if (p) {
        const s = recording.size[i]!;
        add(sizeClassOf(s), p, p + s, 1, i);
        live += s;
        if (touchedLow === Infinity) touchedLow = touchedHigh = p;
        if (p < touchedLow) {
          add(TOUCHED, p, touchedLow, 1, i);
          touchedLow = p;
        }
        if (p + s > touchedHigh) {
          add(TOUCHED, touchedHigh, p + s, 1, i);
          touchedHigh = p + s;
        }
      }
      const now = recording.pages[i]! * PAGE_BYTES;
      if (now > memory) {
        add(MEMORY, memory, now, 1, i);
        memory = now;
        growOps.push(i);
        growBytes.push(now);
      }
      if (live > peak) peak = live;
    }
    liveBytes[j] = peak;
    memoryBytes[j] = memory;
    const span = end - begin;
    for (let r = 0; r < rows; r++) {
      let liveSum = 0, top = 0, topClass = 0;
      for (let c = 0; c < CHANNELS; c++) {
        const x = r * CHANNELS + c;
        acc[x]! += value[x]! * (end - since[x]!);
        since[x] = end;
      }
      for (let c = 0; c < K; c++) {
        const v = acc[r * CHANNELS + c]!;
        liveSum += v;
        if (v > top) (top = v), (topClass = c);
      }
      const t = acc[r * CHANNELS + TOUCHED]!, m = acc[r * CHANNELS + MEMORY]!;
      const area = (Math.min(high, low + (r + 1) * rowBytes) - (low + r * rowBytes)) * span;
      let code: number;
      if (liveSum > 0) code = liveCode(topClass, Math.min(LIVE_LEVELS - 1, Math.floor((liveSum / area) * LIVE_LEVELS)));
      else if (m === 0 || m * 2 < area) code = CELL.outside;
      else code = t * 2 >= m ? CELL.free : CELL.untouched;
      cells[j * rows + r] = code;
      acc.fill(0, r * CHANNELS, (r + 1) * CHANNELS);
    }
  }
  return { ...scale, opStart, cells, liveBytes, memoryBytes, initialMemoryBytes: recording.initialPages * PAGE_BYTES, growOps, growBytes };
}
