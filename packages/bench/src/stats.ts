/** Summary statistics of a set of samples. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Interquartile range relative to the median (0.05 = 5%). */
  readonly iqr: number;
  readonly samples: readonly number[];
}

/** The q-quantile of sorted values, interpolated linearly. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function spread(samples: readonly number[]): Spread {
  if (samples.length === 0) throw new RangeError("spread: no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  return {
    median,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    iqr: median > 0 ? (quantile(sorted, 0.75) - quantile(sorted, 0.25)) / median : 0,
    samples,
  };
}

/** The geometric mean of positive values (NaN for none). */
export function geomean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}
