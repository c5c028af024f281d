/**
 * GEGLU/SwiGLU forward and backward on the GPU against `reference/gated.ts` (SPEC §3), in both
 * layouts, within `TOL_GATED`.
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertClose } from "../../reference/testing.ts";
import { type Matrix, matrix } from "../../reference/matrix.ts";
import { SPEC_GEGLU } from "../../reference/cases.ts";
import { geglu, gegluBackward, swiglu, swigluBackward } from "../../reference/gated.ts";
import { gaussian, mat, parityTest, pick, random, transpose } from "../testing.ts";

/**
 * Gated activations on inputs of magnitude ≤ 8: float32 with WGSL's `exp` (error 3 + 2|x| ULP)
 * and the sigmoid's division (2.5 ULP) vs float64 rounded once; where the error relative to the
 * output grows past `rtol` (large negative gates) the outputs are far below `atol`; the GELU
 * derivative cancels near its root, hence the absolute term too.
 */
const TOL_GATED = { atol: 1e-5, rtol: 1e-5 };

parityTest("GEGLU/SwiGLU forward and backward equal the reference in both layouts", async (gpu) => {
  const x = matrix(1, 6, SPEC_GEGLU.input);
  const ones = matrix(1, 3, [1, 1, 1]);
  assertClose((await gpu.geglu(x)).data, SPEC_GEGLU.out, TOL_GATED, "SPEC §9 GEGLU");
  assertClose(
    (await gpu.gegluBackward(x, ones)).data,
    [...SPEC_GEGLU.dx, ...SPEC_GEGLU.dgate],
    TOL_GATED,
    "SPEC §9 GEGLU backward",
  );
  const rand = random(15);
  for (const [t, h] of [[1, 1], [1, 3], [4, 2], [12, 10], [37, 53], [300, 200]]) {
    const input = mat(t, 2 * h, gaussian(rand, 2 * t * h, 2.5));
    input.data[0] = pick(rand, [0, -0, 1e-40, 8, -8]);
    const dy = mat(t, h, gaussian(rand, t * h));
    const cases = [
      ["geglu", geglu(input), (m: Matrix, o: object) => gpu.geglu(m, o)],
      ["swiglu", swiglu(input), (m: Matrix, o: object) => gpu.swiglu(m, o)],
    ] as const;
    for (const [name, want, run] of cases) {
      assertClose((await run(input, {})).data, want.data, TOL_GATED, `${name} [${t}, ${h}]`);
      const col = await run(transpose(input), { layout: "column-major" });
      assertClose(transpose(col).data, want.data, TOL_GATED, `${name} column-major [${t}, ${h}]`);
    }
    const backward = [
      ["gegluBackward", gegluBackward(input, dy), gpu.gegluBackward.bind(gpu)],
      ["swigluBackward", swigluBackward(input, dy), gpu.swigluBackward.bind(gpu)],
    ] as const;
    for (const [name, want, run] of backward) {
      assertClose((await run(input, dy)).data, want.data, TOL_GATED, `${name} [${t}, ${h}]`);
      const col = await run(transpose(input), transpose(dy), { layout: "column-major" });
      assertClose(transpose(col).data, want.data, TOL_GATED, `${name} column-major [${t}, ${h}]`);
    }
  }
  // Huge finite inputs: saturation without NaN, overflow to ±Inf like the reference.
  const huge = matrix(1, 8, [1e30, -1e30, 3, 2, 1e30, -1e30, 1e25, -1e25]);
  const hugeDy = matrix(1, 4, [1, 1, 1, 1]);
  for (
    const [name, fwd, bwd, rf, rb] of [
      ["geglu", gpu.geglu.bind(gpu), gpu.gegluBackward.bind(gpu), geglu, gegluBackward],
      ["swiglu", gpu.swiglu.bind(gpu), gpu.swigluBackward.bind(gpu), swiglu, swigluBackward],
    ] as const
  ) {
    assertClose((await fwd(huge)).data, rf(huge).data, TOL_GATED, `${name} huge inputs`);
    assertClose(
      (await bwd(huge, hugeDy)).data,
      rb(huge, hugeDy).data,
      TOL_GATED,
      `${name} huge backward`,
    );
  }
});
