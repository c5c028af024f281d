/**
 * The judgement of P1's warm-up α probes (SPEC 2.3, this project's operationalisation): each probe's
 * per-step transposable-mask flip rate against the same seed's dense run's transposable-mask flip
 * rate (the like-for-like bound), a level test and a trend test with a Student-t interval, and the
 * selection across seeds.
 *
 * @module
 */

import { mean, studentTQuantile } from "./_stats.ts";
import { type Curve, fmtAlpha } from "./_flip_rate_measures.ts";

/** An ordinary-least-squares slope with its two-sided Student-t interval (df = n − 2). */
export interface Slope {
  n: number;
  slope: number;
  lo: number;
  hi: number;
}

/**
 * The OLS slope of y on x and its 95% interval.
 *
 * @throws {RangeError} With fewer than 3 points or all x equal.
 */
export function olsSlope(points: readonly (readonly [number, number])[], level = 0.95): Slope {
  const n = points.length;
  if (n < 3) {
    throw new RangeError(`Cannot fit a slope: it needs at least 3 points, got ${n}`);
  }
  const mx = mean(points.map(([x]) => x)), my = mean(points.map(([, y]) => y));
  let sxx = 0, sxy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
  }
  if (sxx === 0) throw new RangeError(`Cannot fit a slope: every x is ${mx}`);
  const slope = sxy / sxx;
  let sse = 0;
  for (const [x, y] of points) sse += (y - my - slope * (x - mx)) ** 2;
  const se = Math.sqrt(sse / (n - 2) / sxx);
  const half = studentTQuantile((1 + level) / 2, n - 2) * se;
  return { n, slope, lo: slope - half, hi: slope + half };
}

/** One probe (one α, one seed) judged against its seed's dense bound. */
export interface ProbeJudgement {
  alpha: number;
  seed: number;
  /** Mean per-step transposable flip rate of the probe over the judged window. */
  flip_rate: number;
  /** The dense run's mean per-step transposable flip rate over the same steps. */
  bound: number;
  /** `flip_rate ≤ bound`. */
  below_bound: boolean;
  /** Slope per step of `probe / bound` over the window, with its 95% interval. */
  ratio_slope: Slope;
  /** The interval lies above 0: the probe's flip rate rises against dense training's. */
  rising: boolean;
  /** `below_bound` and not `rising`. */
  healthy: boolean;
}

/**
 * Judges one probe over the steps `x ≥ from` (the second half of the probe: the first steps at a
 * tiny learning rate measure the initialisation, not α). The level test: the probe's mean flip
 * rate over the window is at or below the dense run's over the same steps. The trend test: the
 * per-step ratio probe/dense, regressed on the step; **rising** when the slope's 95% interval lies
 * wholly above 0 (a flip rate that grows faster than dense training's during the warm-up — the
 * oscillation masked decay is meant to stop). Steps where the dense rate is 0 are left out of the
 * ratio.
 *
 * @throws {RangeError} When fewer than 3 steps of the window have both rates.
 */
export function judgeProbe(
  alpha: number,
  seed: number,
  probe: Curve,
  dense: Curve,
  from: number,
): ProbeJudgement {
  const denseAt = new Map(dense.filter(([x]) => x >= from));
  const paired = probe.filter(([x]) => x >= from && denseAt.has(x))
    .map(([x, y]) => [x, y, denseAt.get(x)!] as const);
  if (paired.length < 3) {
    throw new RangeError(
      `Cannot judge the probe α=${fmtAlpha(alpha)}: it needs 3 steps from step ${from} with both ` +
        `flip rates, got ${paired.length}`,
    );
  }
  const flipRate = mean(paired.map(([, p]) => p));
  const bound = mean(paired.map(([, , d]) => d));
  const ratio = paired.filter(([, , d]) => d > 0).map(([x, p, d]) => [x, p / d] as const);
  const slope = olsSlope(ratio);
  const below = flipRate <= bound;
  const rising = slope.lo > 0;
  return {
    alpha,
    seed,
    flip_rate: flipRate,
    bound,
    below_bound: below,
    ratio_slope: slope,
    rising,
    healthy: below && !rising,
  };
}

/**
 * The selected α: the smallest α of the grid whose probe is healthy in **every** seed (the
 * largest α of the grid when none is, and `healthy` says so), with the reason in words.
 */
export function selectAlpha(
  judgements: readonly ProbeJudgement[],
): { selected: number; healthy: boolean; reason: string } {
  const alphas = [...new Set(judgements.map((j) => j.alpha))].sort((a, b) => a - b);
  const seeds = [...new Set(judgements.map((j) => j.seed))].sort((a, b) => a - b);
  const of = (alpha: number) => judgements.filter((j) => j.alpha === alpha);
  const grid = `{${alphas.map(fmtAlpha).join(", ")}}`;
  const failures = (alpha: number) =>
    of(alpha).filter((j) => !j.healthy).map((j) =>
      `seed ${j.seed} ${
        [j.below_bound ? "" : "above the bound", j.rising ? "rising" : ""]
          .filter(Boolean).join(" and ")
      }`
    ).join(", ");
  const chosen = alphas.find((a) => of(a).length === seeds.length && of(a).every((j) => j.healthy));
  if (chosen === undefined) {
    const largest = alphas.at(-1)!;
    return {
      selected: largest,
      healthy: false,
      reason: `no α of ${grid} was healthy in every seed (${seeds.join(", ")}); the largest, ` +
        `α=${fmtAlpha(largest)}, is used`,
    };
  }
  const failed = alphas.filter((a) => a < chosen).map((a) => `α=${fmtAlpha(a)}: ${failures(a)}`);
  return {
    selected: chosen,
    healthy: true,
    reason: `α=${fmtAlpha(chosen)} is the smallest α of ${grid} whose transposable-mask flip ` +
      `rate stays at or below the dense run's transposable-mask flip rate and does not rise ` +
      `against it, in every seed (${seeds.join(", ")})` +
      (failed.length > 0 ? `; smaller α failed: ${failed.join("; ")}` : ""),
  };
}
