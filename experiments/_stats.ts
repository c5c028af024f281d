/**
 * Seed statistics for the experiment tables: the mean with a two-sided 95% Student-t confidence
 * interval, and paired differences against a baseline run with the same seeds.
 *
 * @module
 */

/** Two-sided 97.5% quantiles of Student's t for 1…30 degrees of freedom. */
const T975 = [
  12.706204736,
  4.302652730,
  3.182446305,
  2.776445105,
  2.570581836,
  2.446911851,
  2.364624252,
  2.306004135,
  2.262157163,
  2.228138852,
  2.200985160,
  2.178812830,
  2.160368656,
  2.144786688,
  2.131449546,
  2.119905299,
  2.109815578,
  2.100922040,
  2.093024054,
  2.085963447,
  2.079613845,
  2.073873068,
  2.068657610,
  2.063898562,
  2.059538553,
  2.055529439,
  2.051830516,
  2.048407142,
  2.045229642,
  2.042272456,
];

/**
 * The 97.5% quantile of Student's t (the factor of a two-sided 95% interval).
 *
 * @param df Degrees of freedom, a positive integer (tabulated to 30; above, the Cornish–Fisher
 * expansion to 1/df², within 1e-4 of the exact value).
 * @returns `t₀.₉₇₅(df)`.
 * @throws {RangeError} If `df` is not a positive integer.
 * @example
 * ```ts
 * import { tQuantile975 } from "./_stats.ts";
 * if (Math.abs(tQuantile975(2) - 4.3027) > 1e-4) throw new Error("unexpected");
 * ```
 */
export function tQuantile975(df: number): number {
  if (!Number.isInteger(df) || df < 1) {
    throw new RangeError(`Cannot look up a t quantile: df must be a positive integer, got ${df}`);
  }
  if (df <= T975.length) return T975[df - 1];
  const z = 1.959963985;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

/** A sample's mean with its 95% t interval. */
export interface MeanInterval {
  /** Number of values. */
  n: number;
  /** The mean. */
  mean: number;
  /** Sample standard deviation (n − 1 denominator; 0 for one value). */
  sd: number;
  /** Half-width `t₀.₉₇₅(n−1)·sd/√n` (NaN for one value). */
  halfWidth: number;
  /** `mean − halfWidth`. */
  low: number;
  /** `mean + halfWidth`. */
  high: number;
}

/**
 * The mean of `values` with its two-sided 95% Student-t confidence interval.
 *
 * @param values The per-seed values (at least one, all finite).
 * @returns Mean, standard deviation and interval.
 * @throws {RangeError} If `values` is empty or holds a non-finite value.
 * @example
 * ```ts
 * import { meanInterval } from "./_stats.ts";
 * const m = meanInterval([1, 2, 3]); // sd 1, half-width 4.3027/√3
 * if (m.mean !== 2 || Math.abs(m.halfWidth - 4.302652730 / Math.sqrt(3)) > 1e-9) throw new Error();
 * ```
 */
export function meanInterval(values: readonly number[]): MeanInterval {
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) {
    throw new RangeError(
      `Cannot compute a confidence interval: expected finite values, got [${values.join(", ")}]`,
    );
  }
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const sd = n < 2 ? 0 : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const halfWidth = n < 2 ? NaN : tQuantile975(n - 1) * sd / Math.sqrt(n);
  return { n, mean, sd, halfWidth, low: mean - halfWidth, high: mean + halfWidth };
}

/**
 * The paired differences `values[i] − baseline[i]` (same seed `i`) with their 95% t interval.
 *
 * @param values The method's per-seed values.
 * @param baseline The baseline's values for the same seeds, in the same order.
 * @returns The interval of the differences.
 * @throws {RangeError} If the lengths differ, or from {@linkcode meanInterval}.
 */
export function pairedDifference(
  values: readonly number[],
  baseline: readonly number[],
): MeanInterval {
  if (values.length !== baseline.length) {
    throw new RangeError(
      `Cannot pair the runs: ${values.length} values against ${baseline.length} baseline values`,
    );
  }
  return meanInterval(values.map((v, i) => v - baseline[i]));
}

/** Where an interval lies relative to zero. */
export type IntervalSign = "above" | "below" | "contains";

/**
 * Whether a 95% interval lies entirely above zero, entirely below, or contains it.
 *
 * @param interval The interval (a NaN half-width counts as containing zero).
 * @returns `"above"`, `"below"` or `"contains"`.
 */
export function intervalSign(interval: MeanInterval): IntervalSign {
  if (interval.low > 0) return "above";
  if (interval.high < 0) return "below";
  return "contains";
}
