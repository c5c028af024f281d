/** Seed statistics: t quantiles, intervals and paired differences against hand-computed values. */

import { intervalSign, meanInterval, pairedDifference, tQuantile975 } from "./_stats.ts";
import { assert, assertThrows } from "../reference/testing.ts";

const near = (a: number, b: number, tol: number, label: string) =>
  assert(Math.abs(a - b) <= tol, `${label}: expected ${b}, got ${a}`);

Deno.test("tQuantile975: table values and the large-df expansion", () => {
  near(tQuantile975(1), 12.7062, 1e-4, "df 1");
  near(tQuantile975(4), 2.7764, 1e-4, "df 4");
  // Exact values: t(40) = 2.021075, t(120) = 1.979930.
  near(tQuantile975(40), 2.021075, 1e-4, "df 40");
  near(tQuantile975(120), 1.979930, 1e-4, "df 120");
  assertThrows(() => tQuantile975(0), RangeError, "positive integer");
});

Deno.test("meanInterval: three values by hand", () => {
  // mean 4, deviations −2 0 2 → sd = √(8/2) = 2, half-width = 4.302653·2/√3 = 4.968275.
  const m = meanInterval([2, 4, 6]);
  near(m.mean, 4, 1e-12, "mean");
  near(m.sd, 2, 1e-12, "sd");
  near(m.halfWidth, 4.968275, 1e-6, "half-width");
  near(m.low, 4 - 4.968275, 1e-6, "low");
  assert(intervalSign(m) === "contains", "contains 0");
  assert(Number.isNaN(meanInterval([3]).halfWidth), "one value: no interval");
  assertThrows(() => meanInterval([]), RangeError, "finite values");
  assertThrows(() => meanInterval([1, NaN]), RangeError, "finite values");
});

Deno.test("pairedDifference: seed-paired differences cancel a shared seed effect", () => {
  // Differences 1, 1.2, 0.8: mean 1, sd 0.2, half-width 4.302653·0.2/√3 = 0.496828 → above 0,
  // although the unpaired values overlap widely.
  const d = pairedDifference([11, 21.2, 30.8], [10, 20, 30]);
  near(d.mean, 1, 1e-12, "mean");
  near(d.halfWidth, 0.496828, 1e-6, "half-width");
  assert(intervalSign(d) === "above", "above 0");
  assert(intervalSign(pairedDifference([9, 19], [10, 20.01])) === "below", "below 0");
  assertThrows(() => pairedDifference([1], [1, 2]), RangeError, "1 values against 2");
});
