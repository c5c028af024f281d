/**
 * MVUE 2:4 on the GPU against `reference/mvue.ts` (SPEC §2.7, §9): values within `TOL_MVUE` of
 * `../float32_rules.ts` (four dependent WGSL divisions); kept positions exact, except that with
 * Philox uniforms at most 0.01% of groups may pick a neighbouring position (a uniform within
 * float32 noise of a cumulative boundary).
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertClose } from "../../reference/testing.ts";
import { matrix } from "../../reference/matrix.ts";
import { SPEC_MVUE } from "../../reference/cases.ts";
import { mvue24, mvue24Probabilities, mvue24WithUniforms } from "../../reference/mvue.ts";
import { mvueKept, TOL_MVUE } from "../float32_rules.ts";
import { gaussian, LARGE, mat, mixed, parityTest, random, SHAPES_4 } from "../testing.ts";

parityTest("mvue24WithUniforms reproduces SPEC §9 and the reference", async (gpu) => {
  const spec = await gpu.mvue24WithUniforms(
    matrix(1, 4, SPEC_MVUE.w),
    new Float32Array(SPEC_MVUE.uniforms),
  );
  assertClose(spec.data, SPEC_MVUE.sampled, { atol: 1e-5, rtol: 0 }, "SPEC §9 MVUE");
  const rand = random(9);
  for (const [r, c] of [...SHAPES_4, [64, 64]]) {
    const g = mat(r, c, mixed(rand, r * c, false, false));
    const u = Float32Array.from(
      { length: (r * c) / 2 },
      () => (Math.floor(rand() * 2 ** 24) + 0.5) * 2 ** -24,
    );
    assertClose(
      (await gpu.mvue24WithUniforms(g, u)).data,
      mvue24WithUniforms(g, u).data,
      TOL_MVUE,
      `mvue24WithUniforms [${r}, ${c}]`,
    );
  }
});

parityTest("mvue24 draws the reference's positions on ≥ 99.99% of groups", async (gpu) => {
  const rand = random(10);
  const cases: [number, number, number, number][] = [
    [1, 4, 0, 0],
    [12, 20, 7, 3],
    [37, 44, 2 ** 40 + 1, 0xffffffff],
    [LARGE[0], LARGE[1], 12345, 1],
  ];
  for (const [r, c, seed, stream] of cases) {
    const g = mat(r, c, r * c > 1e5 ? gaussian(rand, r * c) : mixed(rand, r * c, false, false));
    const want = mvue24(g, { seed, stream });
    const got = await gpu.mvue24(g, { seed, stream });
    // Compare kept positions group by group; values only where the positions agree.
    const groups = g.data.length / 4;
    const keptGot = mvueKept(got.data), keptWant = mvueKept(want.data);
    const mismatched: number[] = [];
    const a: number[] = [], b: number[] = [];
    for (let q = 0; q < groups; q++) {
      let same = true;
      for (let k = 4 * q; k < 4 * q + 4; k++) {
        if (keptGot[k] !== keptWant[k]) same = false;
      }
      if (!same) {
        mismatched.push(q);
        continue;
      }
      for (let k = 0; k < 4; k++) {
        a.push(got.data[4 * q + k]);
        b.push(want.data[4 * q + k]);
      }
    }
    console.log(
      `  mvue24 [${r}, ${c}] seed ${seed} stream ${stream}: ${mismatched.length} of ${groups} groups drew other positions`,
    );
    if (mismatched.length > 0) {
      // A mismatch is explained when a uniform lies within float32 rounding of a cumulative
      // boundary of the inclusion probabilities; print the evidence.
      const p = mvue24Probabilities(g);
      for (const q of mismatched.slice(0, 5)) {
        console.log(
          `    group ${q}: x = [${Array.from(g.data.subarray(4 * q, 4 * q + 4))}], p = [${
            Array.from(p.data.subarray(4 * q, 4 * q + 4))
          }], gpu [${Array.from(got.data.subarray(4 * q, 4 * q + 4))}], reference [${
            Array.from(want.data.subarray(4 * q, 4 * q + 4))
          }]`,
        );
      }
    }
    if (mismatched.length > 1e-4 * groups) {
      throw new Error(`mvue24: ${mismatched.length} of ${groups} groups differ (> 0.01%)`);
    }
    assertClose(a, b, TOL_MVUE, `mvue24 [${r}, ${c}] values`);
  }
});
