/**
 * The statistics the experiments' tables and verdicts rest on: mean, sample standard deviation,
 * the two-sided Student-t confidence interval of a mean (the t quantile from the regularized
 * incomplete beta function), paired differences against a baseline run with the same seeds, the
 * verdict of a claim from an interval (SPEC §11.4), and the table cells and rows that report them.
 *
 * @module
 */

/** The arithmetic mean of `xs`; throws on an empty list. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) {
    throw new RangeError("Cannot take the mean: the list is empty, got 0 values");
  }
  let sum = 0;
  for (const x of xs) sum += x;
  return sum / xs.length;
}

/** The sample standard deviation (divisor n − 1); throws unless there are at least two values. */
export function sampleSd(xs: readonly number[]): number {
  if (xs.length < 2) {
    throw new RangeError(
      `Cannot take a sample standard deviation: it needs at least 2 values, got ${xs.length}`,
    );
  }
  const m = mean(xs);
  let ss = 0;
  for (const x of xs) ss += (x - m) ** 2;
  return Math.sqrt(ss / (xs.length - 1));
}

// Lanczos approximation (g = 7, n = 9), relative error below 1e-13 for x > 0.
const LANCZOS = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`Cannot take ln Γ(x): x must be positive, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1)/(a + b + 2). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - (a + b) * x / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    const even = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + even * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + even / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    const odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + odd * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + odd / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) return h;
  }
  throw new RangeError(`Cannot evaluate I_x(a, b): no convergence for x=${x}, a=${a}, b=${b}`);
}

/** The regularized incomplete beta function I_x(a, b) for x in [0, 1], a, b > 0. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0)) {
    throw new RangeError(`Cannot evaluate I_x(a, b): a and b must be positive, got ${a}, ${b}`);
  }
  if (!(x >= 0 && x <= 1)) {
    throw new RangeError(`Cannot evaluate I_x(a, b): x must be in [0, 1], got ${x}`);
  }
  if (x === 0 || x === 1) return x;
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x),
  );
  // The fraction converges fast on this side; the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) covers
  // the other.
  if (x < (a + 1) / (a + b + 2)) return front * betaContinuedFraction(x, a, b) / a;
  return 1 - front * betaContinuedFraction(1 - x, b, a) / b;
}

function assertDf(df: number): void {
  if (!(df > 0) || !Number.isFinite(df)) {
    throw new RangeError(
      `Cannot use Student's t: the degrees of freedom must be positive, got ${df}`,
    );
  }
}

/** The cumulative distribution function of Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  assertDf(df);
  if (Number.isNaN(t)) return NaN;
  if (t === 0) return 0.5;
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/**
 * The `p` quantile of Student's t with `df` degrees of freedom (inverts {@linkcode studentTCdf} by
 * bisection to double precision).
 *
 * @example
 * ```ts
 * import { studentTQuantile } from "./_stats.ts";
 * // The 95% two-sided critical value for three seeds (two degrees of freedom): 4.3027.
 * if (Math.abs(studentTQuantile(0.975, 2) - 4.302652729749462) > 1e-9) throw new Error("t");
 * ```
 */
export function studentTQuantile(p: number, df: number): number {
  assertDf(df);
  if (!(p > 0 && p < 1)) {
    throw new RangeError(`Cannot take a t quantile: p must be in (0, 1), got ${p}`);
  }
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/**
 * The 97.5% quantile of Student's t (the factor of a two-sided 95% interval).
 *
 * @param df Degrees of freedom, a positive integer.
 * @returns `t₀.₉₇₅(df)` ({@linkcode studentTQuantile}).
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
  return studentTQuantile(0.975, df);
}

/** A sample's mean with its two-sided Student-t interval. */
export interface MeanInterval {
  /** Number of values. */
  n: number;
  /** The mean. */
  mean: number;
  /** Sample standard deviation (n − 1 denominator; 0 for one value). */
  sd: number;
  /** Half-width `t_{(1+level)/2}(n−1)·sd/√n` (NaN for one value). */
  halfWidth: number;
  /** `mean − halfWidth`. */
  low: number;
  /** `mean + halfWidth`. */
  high: number;
}

/**
 * The mean of `values` with its two-sided Student-t confidence interval.
 *
 * @param values The per-seed values (at least one, all finite; one value gives no interval).
 * @param level Confidence level in (0, 1) (default 0.95).
 * @returns Mean, standard deviation and interval.
 * @throws {RangeError} If `values` is empty or holds a non-finite value, or on a bad level.
 * @example
 * ```ts
 * import { meanInterval } from "./_stats.ts";
 * const m = meanInterval([1, 2, 3]); // sd 1, half-width 4.3027/√3
 * if (m.mean !== 2 || Math.abs(m.halfWidth - 4.302652730 / Math.sqrt(3)) > 1e-9) throw new Error();
 * ```
 */
export function meanInterval(values: readonly number[], level = 0.95): MeanInterval {
  if (!(level > 0 && level < 1)) {
    throw new RangeError(
      `Cannot compute a confidence interval: level must be in (0, 1), got ${level}`,
    );
  }
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) {
    throw new RangeError(
      `Cannot compute a confidence interval: expected finite values, got [${values.join(", ")}]`,
    );
  }
  const n = values.length;
  const m = mean(values);
  const sd = n < 2 ? 0 : sampleSd(values);
  const halfWidth = n < 2 ? NaN : studentTQuantile((1 + level) / 2, n - 1) * sd / Math.sqrt(n);
  return { n, mean: m, sd, halfWidth, low: m - halfWidth, high: m + halfWidth };
}

/** How {@linkcode formatInterval} writes a mean and its interval. */
export interface IntervalFormat {
  /** Decimals (default 2). */
  digits?: number;
  /** `mean [low, high]` instead of `mean ± halfWidth`. */
  bracket?: boolean;
  /** A `+` before non-negative numbers (differences). */
  signed?: boolean;
}

/**
 * A table cell for a mean and its interval: `mean ± halfWidth` (or `mean [low, high]`); a single
 * value has no interval and prints as `mean (n = 1)`, never `± NaN`.
 *
 * @param m The mean and interval ({@linkcode meanInterval}).
 * @param format Decimals, bracket or ± form, sign.
 * @returns The cell's text.
 * @example
 * ```ts
 * import { formatInterval, meanInterval } from "./_stats.ts";
 * if (formatInterval(meanInterval([77.125])) !== "77.13 (n = 1)") throw new Error("one value");
 * if (formatInterval(meanInterval([1, 2, 3]), { digits: 1 }) !== "2.0 ± 2.5") throw new Error("±");
 * ```
 */
export function formatInterval(m: MeanInterval, format: IntervalFormat = {}): string {
  const { digits = 2, bracket = false, signed = false } = format;
  const num = (x: number) => `${signed && x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
  if (Number.isNaN(m.halfWidth)) return `${num(m.mean)} (n = ${m.n})`;
  return bracket
    ? `${num(m.mean)} [${num(m.low)}, ${num(m.high)}]`
    : `${num(m.mean)} ± ${m.halfWidth.toFixed(digits)}`;
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

/** One run's value of a metric, by seed. */
export interface SeededValue {
  /** The run's seed (pairs a method's run with the baseline's run of the same seed). */
  seed: number;
  /** The metric. */
  value: number;
}

/**
 * Paired differences `value − baseline` for every seed both lists have, in seed order (a method
 * and the baseline with the same seed share initial weights and data order, so pairing removes
 * that part of the run-to-run variance).
 *
 * @throws {RangeError} If a seed occurs twice in either list.
 */
export function pairedDifferences(
  values: readonly SeededValue[],
  baseline: readonly SeededValue[],
): { seed: number; difference: number }[] {
  const bySeed = (list: readonly SeededValue[], what: string) => {
    const map = new Map<number, number>();
    for (const { seed, value } of list) {
      if (map.has(seed)) {
        throw new RangeError(`Cannot pair differences: seed ${seed} occurs twice in the ${what}`);
      }
      map.set(seed, value);
    }
    return map;
  };
  const base = bySeed(baseline, "baseline");
  return [...bySeed(values, "values")]
    .filter(([seed]) => base.has(seed))
    .sort(([a], [b]) => a - b)
    .map(([seed, value]) => ({ seed, difference: value - base.get(seed)! }));
}

/**
 * A claim about a true difference (or mean): `below` / `above` a bound (default 0), or `within`
 * ±`margin` of zero (equivalence: "comparable").
 */
export type Claim =
  | { kind: "below"; bound?: number }
  | { kind: "above"; bound?: number }
  | { kind: "within"; margin: number };

/** The verdict of a claim from a confidence interval. */
export type Verdict = "agrees" | "disagrees" | "inconclusive";

/**
 * Judges a claim from an interval: `agrees` when the whole interval satisfies it, `disagrees` when
 * the whole interval contradicts it, else `inconclusive` (also with no interval: null, or fewer
 * than two runs).
 *
 * @example
 * ```ts
 * import { verdict } from "./_stats.ts";
 * const diff = { n: 3, mean: -0.02, sd: 0.004, halfWidth: 0.01, low: -0.03, high: -0.01 };
 * if (verdict(diff, { kind: "below" }) !== "agrees") throw new Error("verdict");
 * if (verdict(diff, { kind: "within", margin: 0.005 }) !== "disagrees") throw new Error("verdict");
 * ```
 */
export function verdict(interval: MeanInterval | null, claim: Claim): Verdict {
  if (interval === null || Number.isNaN(interval.halfWidth)) return "inconclusive";
  const { low: lo, high: hi } = interval;
  switch (claim.kind) {
    case "below": {
      const bound = claim.bound ?? 0;
      return hi < bound ? "agrees" : lo > bound ? "disagrees" : "inconclusive";
    }
    case "above": {
      const bound = claim.bound ?? 0;
      return lo > bound ? "agrees" : hi < bound ? "disagrees" : "inconclusive";
    }
    case "within": {
      if (!(claim.margin >= 0)) {
        throw new RangeError(
          `Cannot judge a 'within' claim: the margin must be ≥ 0, got ${claim.margin}`,
        );
      }
      const m = claim.margin;
      if (lo >= -m && hi <= m) return "agrees";
      return lo > m || hi < -m ? "disagrees" : "inconclusive";
    }
  }
}

// ---- reporting ----------------------------------------------------------------------------------

/** A claim judged from the paired differences `values − baseline` by seed. */
export interface PairedClaim {
  claim: string;
  difference: string;
  differences: { seed: number; difference: number }[];
  interval: MeanInterval;
  verdict: Verdict;
}

/** Judges `claim` on the 95% t interval of the paired differences `values − baseline`. */
export function pairedClaim(
  values: readonly SeededValue[],
  baseline: readonly SeededValue[],
  claim: Claim,
  text: { claim: string; difference: string },
): PairedClaim {
  const differences = pairedDifferences(values, baseline);
  const interval = meanInterval(differences.map((d) => d.difference));
  return { ...text, differences, interval, verdict: verdict(interval, claim) };
}

/** `mean [lo, hi]` of the 95% t interval of `xs·scale`, `digits` decimals (a table cell). */
export function ciCell(xs: readonly number[], digits: number, scale = 1): string {
  const i = meanInterval(xs.map((x) => x * scale));
  return `${i.mean.toFixed(digits)} [${i.low.toFixed(digits)}, ${i.high.toFixed(digits)}]`;
}

/** The Markdown rows `| claim | difference | mean [95% CI] | verdict |` of judged claims. */
export function claimRows(claims: readonly PairedClaim[], format: (v: number) => string): string[] {
  return [
    `| claim (paired by seed) | difference | mean [95% CI] | verdict |`,
    `|---|---|---|---|`,
    ...claims.map((c) =>
      `| ${c.claim} | ${c.difference} | ${format(c.interval.mean)} [${format(c.interval.low)}, ${
        format(c.interval.high)
      }] | **${c.verdict}** |`
    ),
  ];
}
