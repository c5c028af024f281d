/**
 * The transposable 2:4 mask on the GPU against `reference/transposable.ts` (SPEC §1.4, §9): the
 * 90 patterns in order, masks and values exact.
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertEqualArrays } from "../../reference/testing.ts";
import { matrix } from "../../reference/matrix.ts";
import { SPEC_TRANSPOSABLE } from "../../reference/cases.ts";
import {
  transposableMask24,
  transposablePatternIndices,
  transposablePatterns,
} from "../../reference/transposable.ts";
import { gaussian, LARGE, mat, mixed, parityTest, pick, random, ties } from "../testing.ts";
import { gpuTransposablePatterns } from "./transposable.ts";

Deno.test("gpu parity: the transposable kernel's 90 patterns are the reference's, in order", () => {
  assertEqualArrays(gpuTransposablePatterns(), transposablePatterns(), "pattern words");
});

parityTest("transposableMask24 reproduces SPEC §9 and the reference exactly", async (gpu) => {
  // The SPEC §9 blocks side by side: row r of the 4×12 matrix is row r of each block in turn.
  const side = [0, 1, 2, 3].flatMap((r) => SPEC_TRANSPOSABLE.flatMap((c) => c.block[r]));
  const spec = await gpu.transposablePatternIndices(matrix(4, 4 * SPEC_TRANSPOSABLE.length, side));
  const patterns = SPEC_TRANSPOSABLE.map((c) => c.pattern);
  assertEqualArrays(spec, patterns, `SPEC §9 patterns (${SPEC_TRANSPOSABLE.map((c) => c.name)})`);

  const rand = random(5);
  // Values whose float64 pattern sums tie or round: 1 + 2^-53 rounds back to 1, so the float64
  // order (which the reference uses) differs from the exact one.
  const rounding = [0, 1, 1 + 2 ** -23, 2 ** -53, 3 * 2 ** -53, 2 ** -52, 2 ** -30, 2 ** -60];
  const generators: [string, (n: number) => Float32Array][] = [
    ["mixed", (n) => mixed(rand, n, true)],
    ["ties", (n) => ties(rand, n)],
    ["binary", (n) => Float32Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0))],
    ["float64 rounding", (n) => Float32Array.from({ length: n }, () => pick(rand, rounding))],
    [
      "subnormal",
      (n) => Float32Array.from({ length: n }, () => pick(rand, [0, 1e-45, 2e-45, 1e-39])),
    ],
    ["huge", (n) => Float32Array.from({ length: n }, () => 3.4e38 * rand())],
  ];
  for (const [name, gen] of generators) {
    for (const [r, c] of [[4, 4], [12, 20], [36, 44], [4, 1028]]) {
      const w = mat(r, c, gen(r * c));
      const label = `transposable ${name} [${r}, ${c}]`;
      assertEqualArrays(
        await gpu.transposablePatternIndices(w),
        transposablePatternIndices(w),
        `${label} indices`,
      );
      const want = transposableMask24(w);
      const got = await gpu.transposableMask24(w);
      assertEqualArrays(got.mask, want.mask, `${label} mask`);
      assertEqualArrays(got.pruned.data, want.pruned.data, `${label} values`);
    }
  }
  const w = mat(LARGE[0], LARGE[1], gaussian(rand, LARGE[0] * LARGE[1]));
  const want = transposableMask24(w);
  const got = await gpu.transposableMask24(w);
  assertEqualArrays(got.mask, want.mask, "transposable 1024×4096 mask");
  assertEqualArrays(got.pruned.data, want.pruned.data, "transposable 1024×4096 values");
});
