/**
 * `deno task bench`: the CPU cost of the 2:4 reference functions on one GPT-2 FFN weight
 * (768×3072), each against hard 2:4 pruning (`prune24`, the baseline: one pass, four comparisons
 * per group) in the same run; Deno prints the ratios. Bytes per call: `4N` read, `4N + N` written
 * (values, mask), `N = 768·3072`. The GPU kernels are timed by `bench_gpu.ts` (a GPU call needs
 * batching to hide the round trip, which `Deno.bench` does not do).
 *
 * @module
 */

import { compress24 } from "../reference/compress.ts";
import { mvue24 } from "../reference/mvue.ts";
import { prune24 } from "../reference/prune.ts";
import { softThreshold24, ssteScale } from "../reference/soft_threshold.ts";
import { transposableMask24 } from "../reference/transposable.ts";
import { matrix } from "../reference/matrix.ts";
import { seededFloats } from "../reference/testing.ts";

const ROWS = 768, COLS = 3072;
/** Weights in (−1, 1) from the project's seeded generator. */
const weights = matrix(ROWS, COLS, seededFloats(ROWS * COLS, 1, (u) => 2 * u - 1));
const pruned = prune24(weights).pruned;
const group = `2:4 on ${ROWS}×${COLS}`;

Deno.bench("prune24", { group, baseline: true }, () => {
  prune24(weights);
});
Deno.bench("softThreshold24", { group }, () => {
  softThreshold24(weights);
});
Deno.bench("ssteScale (mse)", { group }, () => {
  ssteScale(weights);
});
Deno.bench("transposableMask24", { group }, () => {
  transposableMask24(weights);
});
Deno.bench("mvue24", { group }, () => {
  mvue24(weights, { seed: 1 });
});
Deno.bench("compress24 (of the pruned matrix)", { group }, () => {
  compress24(pruned);
});
