/**
 * P1's masked decay on the GPU against `reference/masked_decay.ts` (SPEC §2.3, §9), within
 * `TOL_DECAY`.
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertClose } from "../../reference/testing.ts";
import { matrix } from "../../reference/matrix.ts";
import { SPEC_MASKED_DECAY } from "../../reference/cases.ts";
import { maskedDecay } from "../../reference/masked_decay.ts";
import { LARGE, mat, mixed, parityTest, random } from "../testing.ts";

/**
 * Masked decay: `grad + f32(α)·w` in float32 (product and sum correctly rounded, or one FMA) vs one
 * rounding of the float64 value; a flushed subnormal moves a result by less than `2^-126 ≪ atol`.
 */
const TOL_DECAY = { atol: 1e-8, rtol: 2 ** -22 };

parityTest("maskedDecay reproduces SPEC §9 and the reference", async (gpu) => {
  const { grad, w: weights, mask: specMask, alpha: specAlpha, out } = SPEC_MASKED_DECAY;
  const spec = await gpu.maskedDecay(
    matrix(1, 4, grad),
    matrix(1, 4, weights),
    new Uint8Array(specMask),
    specAlpha,
  );
  assertClose(spec.data, out, TOL_DECAY, "SPEC §9 masked decay");
  const rand = random(11);
  for (const [r, c] of [[1, 1], [1, 5], [4, 4], [12, 20], [37, 43], LARGE]) {
    const grad = mat(r, c, mixed(rand, r * c, false));
    const w = mat(r, c, mixed(rand, r * c, false));
    const mask = Uint8Array.from({ length: r * c }, () => (rand() < 0.5 ? 1 : 0));
    for (const alpha of r * c > 1e5 ? [6e-5] : [0, 6e-5, 0.03]) {
      assertClose(
        (await gpu.maskedDecay(grad, w, mask, alpha)).data,
        maskedDecay(grad, w, mask, alpha).data,
        TOL_DECAY,
        `maskedDecay [${r}, ${c}] α=${alpha}`,
      );
    }
  }
});
