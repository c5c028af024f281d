/**
 * Flip count and rate on the GPU against `reference/flip_rate.ts` (SPEC §2.4): exact.
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertEqualArrays } from "../../reference/testing.ts";
import { flipCount, flipRate } from "../../reference/flip_rate.ts";
import { LARGE, parityTest, random } from "../testing.ts";

parityTest("flipCount and flipRate equal the reference", async (gpu) => {
  const rand = random(12);
  for (const n of [0, 1, 3, 4, 5, 4095, 4097, 100003, LARGE[0] * LARGE[1]]) {
    const prev = Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0));
    const next = Uint8Array.from(prev, (v) => (rand() < 0.1 ? 1 - v : v));
    assertEqualArrays([await gpu.flipCount(prev, next)], [flipCount(prev, next)], `flipCount ${n}`);
    if (n > 0) {
      assertEqualArrays([await gpu.flipRate(prev, next)], [flipRate(prev, next)], `flipRate ${n}`);
    }
  }
  const all = new Uint8Array(4099).fill(1);
  assertEqualArrays([await gpu.flipCount(all, new Uint8Array(4099))], [4099], "all flipped");
});
