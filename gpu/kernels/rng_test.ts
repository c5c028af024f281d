/**
 * Philox uniforms on the GPU against `reference/rng.ts`: equal bit for bit (integer operations only).
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertEqualArrays } from "../../reference/testing.ts";
import { uniforms } from "../../reference/rng.ts";
import { parityTest } from "../testing.ts";

parityTest("WGSL Philox uniforms equal reference uniforms bit for bit", async (gpu) => {
  const cases: [number, number, number][] = [
    [0, 0, 1],
    [1, 2, 6],
    [42, 7, 4099],
    [2 ** 32 + 5, 0xffffffff, 1001],
    [Number.MAX_SAFE_INTEGER, 123456789, 257],
  ];
  for (const [seed, stream, count] of cases) {
    assertEqualArrays(
      await gpu.uniforms(seed, stream, count),
      uniforms(seed, stream, count),
      `uniforms(${seed}, ${stream}, ${count})`,
    );
  }
});
