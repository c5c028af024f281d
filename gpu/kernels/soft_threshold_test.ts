/**
 * Soft-threshold 2:4 and β on the GPU against `reference/soft_threshold.ts` (SPEC §1.2, §1.3,
 * §9): masks exact; values under the flush rule of `../float32_rules.ts` (`|w| − τ` is one
 * correctly rounded subtraction); β within `TOL_BETA`.
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertClose, assertEqualArrays } from "../../reference/testing.ts";
import { type Matrix, matrix } from "../../reference/matrix.ts";
import { SPEC_BETA, SPEC_SOFT_24 } from "../../reference/cases.ts";
import { softThreshold24, ssteScale } from "../../reference/soft_threshold.ts";
import { assertEqualOrFlushed, isSubnormalF32 } from "../float32_rules.ts";
import { gaussian, LARGE, mat, mixed, parityTest, random, SHAPES_4, ties } from "../testing.ts";

/** β = ⟨W,S⟩/⟨S,S⟩ from float32 tree sums of up to 4M non-negative terms. */
const TOL_BETA = { atol: 0, rtol: 1e-5 };

parityTest("softThreshold24 reproduces SPEC §9 and the reference", async (gpu) => {
  const spec = matrix(SPEC_SOFT_24.length, 4, SPEC_SOFT_24.flatMap((c) => c.w));
  const got = await gpu.softThreshold24(spec);
  assertEqualOrFlushed(
    got.pruned.data,
    SPEC_SOFT_24.flatMap((c) => c.out),
    "SPEC §9 soft threshold",
  );
  assertEqualArrays(got.mask, SPEC_SOFT_24.flatMap((c) => c.mask), "SPEC §9 soft-threshold mask");
  const rand = random(3);
  let flushed = 0, subnormal = 0;
  for (const [r, c] of [...SHAPES_4, LARGE]) {
    for (const data of r * c > 1e5 ? [mixed] : [mixed, ties]) {
      const w = mat(r, c, data(rand, r * c, true));
      const want = softThreshold24(w);
      const out = await gpu.softThreshold24(w);
      const label = `softThreshold24 [${r}, ${c}] ${data.name}`;
      assertEqualArrays(out.mask, want.mask, `${label} mask`);
      flushed += assertEqualOrFlushed(
        out.pruned.data,
        want.pruned.data,
        `${label} values`,
        softThresholdFlushed(w, want.mask),
      );
      subnormal += want.pruned.data.filter(isSubnormalF32).length;
    }
  }
  console.log(
    `  softThreshold24: ${flushed} values flushed (${subnormal} subnormal reference results)`,
  );
});

/**
 * The soft-threshold values a device that flushes subnormal operands and results computes: each
 * kept `|w| − τ` (`mask` and τ as in SPEC §1.2, from the integer magnitudes the kernel compares)
 * with a subnormal `|w|` or `τ` read as 0 and a subnormal difference written as 0, signed like `w`.
 */
function softThresholdFlushed(w: Matrix, mask: Uint8Array): Float32Array {
  const flush = (v: number) => (isSubnormalF32(v) ? 0 : v);
  const out = new Float32Array(w.data.length);
  const d = w.data;
  for (let g = 0; g < d.length; g += 4) {
    const a0 = Math.abs(d[g]), a1 = Math.abs(d[g + 1]), a2 = Math.abs(d[g + 2]);
    const a3 = Math.abs(d[g + 3]);
    const tau = Math.min(
      Math.max(Math.min(a0, a1), Math.min(a2, a3)),
      Math.min(Math.max(a0, a1), Math.max(a2, a3)),
    );
    for (let k = g; k < g + 4; k++) {
      const a = Math.abs(d[k]);
      if (mask[k] === 0 || a === tau) continue;
      const diff = flush(Math.fround(flush(a) - flush(tau)));
      out[k] = d[k] < 0 || Object.is(d[k], -0) ? -diff : diff;
    }
  }
  return out;
}

parityTest("ssteScale equals the reference (mse, l1, none; SPEC §9 21/17)", async (gpu) => {
  const one = matrix(1, 4, SPEC_BETA.w);
  assertClose([await gpu.ssteScale(one)], [SPEC_BETA.beta], TOL_BETA, "SPEC §9 β");
  if ((await gpu.ssteScale(matrix(3, 8))) !== 1) throw new Error("all-zero S must give β = 1");
  if ((await gpu.ssteScale(matrix(2, 4, [1, 1, 1, 1, 2, 2, 2, 2]))) !== 1) {
    throw new Error("all-equal groups (S = 0) must give β = 1");
  }
  const rand = random(4);
  for (const [r, c] of [[1, 4], [12, 20], [37, 44], LARGE]) {
    const w = mat(r, c, mixed(rand, r * c, false));
    const recipes = r * c > 1e5 ? ["mse"] as const : ["mse", "l1", "none"] as const;
    for (const recipe of recipes) {
      assertClose(
        [await gpu.ssteScale(w, { recipe })],
        [ssteScale(w, { recipe })],
        TOL_BETA,
        `ssteScale ${recipe} [${r}, ${c}]`,
      );
    }
  }
  const g = mat(256, 1024, gaussian(rand, 256 * 1024));
  const beta = await gpu.ssteScale(g);
  if (!(Math.abs(beta - 1.48) < 0.02)) throw new Error(`Gaussian β ${beta}, expected ≈ 1.48`);
});
