/** Seed statistics: t quantiles, intervals and paired differences against hand-computed values. */

import {
  intervalSign,
  logGamma,
  mean,
  meanInterval,
  pairedDifference,
  pairedDifferences,
  regularizedIncompleteBeta,
  sampleSd,
  studentTCdf,
  studentTQuantile,
  tQuantile975,
  verdict,
} from "./_stats.ts";
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

const close = (got: number, want: number, tol: number, what: string) =>
  assert(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);

Deno.test("mean and sample sd of known lists; too few values rejected", () => {
  close(mean([2, 4, 4, 4, 5, 5, 7, 9]), 5, 0, "mean");
  close(sampleSd([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7), 1e-15, "sd (n − 1)");
  close(sampleSd([1, 1]), 0, 0, "sd of equal values");
  assertThrows(() => mean([]), RangeError, "empty");
  assertThrows(() => sampleSd([3]), RangeError, "at least 2", "got 1");
});

Deno.test("logGamma and the regularized incomplete beta against SciPy", () => {
  close(logGamma(0.5), 0.5723649429247, 1e-12, "lnΓ(1/2) = ln√π");
  close(logGamma(10.5), 13.940625219403763, 1e-13, "lnΓ(10.5)");
  close(logGamma(6), Math.log(120), 1e-13, "lnΓ(6) = ln 5!");
  close(regularizedIncompleteBeta(0.3, 2.5, 0.5), 0.018927124071945658, 1e-12, "I(0.3; 2.5, .5)");
  close(regularizedIncompleteBeta(0.7, 10, 3), 0.25281534785499993, 1e-12, "I(0.7; 10, 3)");
  close(regularizedIncompleteBeta(0.01, 0.5, 0.5), 0.06376856085851985, 1e-12, "I(.01; .5, .5)");
  close(regularizedIncompleteBeta(0.5, 3, 3), 0.5, 1e-14, "symmetric");
  assertThrows(() => regularizedIncompleteBeta(1.5, 1, 1), RangeError, "[0, 1]", "1.5");
  assertThrows(() => logGamma(0), RangeError, "positive", "got 0");
});

Deno.test("Student-t quantiles match SciPy's t.ppf for df 1–1000", () => {
  // scipy.stats.t.ppf(p, df) for p = 0.975, 0.95, 0.995.
  const table: [number, number, number, number][] = [
    [1, 12.706204736174694, 6.313751514675037, 63.656741162871526],
    [2, 4.302652729749462, 2.9199855803537242, 9.924843200918287],
    [3, 3.1824463052837078, 2.3533634348018233, 5.840909309733355],
    [4, 2.7764451051977934, 2.1318467863266495, 4.604094871349992],
    [5, 2.5705818356363146, 2.0150483733330233, 4.032142983555228],
    [7, 2.364624251592784, 1.8945786050900062, 3.4994832973504924],
    [10, 2.228138851986274, 1.8124611228116756, 3.16927267261695],
    [30, 2.0422724563012378, 1.697260886593957, 2.7499956535672254],
    [31, 2.039513446396408, 1.6955187825458649, 2.744041919294269],
    [60, 2.0002978220142604, 1.6706488649046363, 2.6602830288550368],
    [120, 1.9799304050824402, 1.6576508993552352, 2.6174211451068654],
    [1000, 1.9623390808264083, 1.6463788172854643, 2.580754698065951],
  ];
  for (const [df, q975, q95, q995] of table) {
    close(studentTQuantile(0.975, df), q975, 1e-10, `t(0.975, ${df})`);
    close(studentTQuantile(0.95, df), q95, 1e-10, `t(0.95, ${df})`);
    close(studentTQuantile(0.995, df), q995, 1e-10, `t(0.995, ${df})`);
    close(studentTQuantile(0.025, df), -q975, 1e-10, `t(0.025, ${df}) by symmetry`);
    close(studentTCdf(q975, df), 0.975, 1e-12, `cdf at t(0.975, ${df})`);
  }
  // Large df tends to the normal quantile 1.959963984540054.
  close(studentTQuantile(0.975, 1e7), 1.959963984540054, 1e-6, "df → ∞");
  close(studentTCdf(0, 3), 0.5, 0, "cdf(0)");
  close(studentTCdf(1, 1), 0.75, 1e-14, "Cauchy cdf(1) = 3/4");
  assertThrows(() => studentTQuantile(1, 3), RangeError, "(0, 1)", "got 1");
  assertThrows(() => studentTQuantile(0.9, 0), RangeError, "degrees of freedom", "got 0");
});

Deno.test("meanInterval: mean ± t·sd/√n at the requested level", () => {
  const ci = meanInterval([1, 2, 3]);
  const half = 4.302652729749462 / Math.sqrt(3);
  close(ci.mean, 2, 0, "mean");
  close(ci.sd, 1, 1e-15, "sd");
  close(ci.low, 2 - half, 1e-12, "low");
  close(ci.high, 2 + half, 1e-12, "high");
  assert(ci.n === 3, "n");
  const ci90 = meanInterval([1, 2, 3], 0.9);
  close(ci90.halfWidth, 2.9199855803537242 / Math.sqrt(3), 1e-12, "90% half-width");
  assertThrows(() => meanInterval([1, 2], 1), RangeError, "level", "got 1");
});

Deno.test("pairedDifferences pairs by seed, in seed order, and ignores unpaired seeds", () => {
  const diffs = pairedDifferences(
    [{ seed: 3, value: 5 }, { seed: 1, value: 4 }, { seed: 9, value: 0 }],
    [{ seed: 1, value: 1 }, { seed: 2, value: 7 }, { seed: 3, value: 2 }],
  );
  assert(
    JSON.stringify(diffs) === '[{"seed":1,"difference":3},{"seed":3,"difference":3}]',
    "pairs",
  );
  assertThrows(
    () => pairedDifferences([{ seed: 1, value: 0 }, { seed: 1, value: 1 }], []),
    RangeError,
    "seed 1 occurs twice",
  );
});

Deno.test("verdict: agrees / disagrees / inconclusive from the interval alone", () => {
  const iv = (low: number, high: number) => ({
    n: 3,
    mean: (low + high) / 2,
    sd: 1,
    halfWidth: (high - low) / 2,
    low,
    high,
  });
  assert(verdict(iv(-0.3, -0.1), { kind: "below" }) === "agrees", "below, all negative");
  assert(verdict(iv(0.1, 0.3), { kind: "below" }) === "disagrees", "below, all positive");
  assert(verdict(iv(-0.1, 0.1), { kind: "below" }) === "inconclusive", "below, straddles 0");
  assert(verdict(iv(0.1, 0.3), { kind: "above", bound: 0.05 }) === "agrees", "above a bound");
  assert(
    verdict(iv(0.0, 0.3), { kind: "above", bound: 0.05 }) === "inconclusive",
    "above, straddles",
  );
  assert(verdict(iv(-0.04, 0.02), { kind: "within", margin: 0.05 }) === "agrees", "within");
  assert(verdict(iv(0.06, 0.2), { kind: "within", margin: 0.05 }) === "disagrees", "beyond +m");
  assert(verdict(iv(-0.2, -0.06), { kind: "within", margin: 0.05 }) === "disagrees", "beyond −m");
  assert(verdict(iv(0.0, 0.2), { kind: "within", margin: 0.05 }) === "inconclusive", "overlaps m");
  assert(verdict(null, { kind: "below" }) === "inconclusive", "no interval");
  assert(verdict(meanInterval([3]), { kind: "below" }) === "inconclusive", "one run");
  assert(verdict(meanInterval([3]), { kind: "below" }) === "inconclusive", "one run");
  assertThrows(() => verdict(iv(0, 1), { kind: "within", margin: -1 }), RangeError, "margin");
});
