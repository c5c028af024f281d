/**
 * Hard N:M pruning on the GPU against `reference/prune.ts` (SPEC §1.1, §9): masks and values
 * exact (values are moved as bits), on ties, zeros, ±Inf and subnormals and a 1024×4096 case.
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertEqualArrays } from "../../reference/testing.ts";
import { matrix } from "../../reference/matrix.ts";
import { SPEC_HARD_24 } from "../../reference/cases.ts";
import { prune24, pruneNM } from "../../reference/prune.ts";
import { LARGE, mat, mixed, parityTest, random, SHAPES_4, ties } from "../testing.ts";

parityTest("pruneNM (1:2, 2:4, 1:4, 2:8, 4:8, 3:5, 1:16) equals the reference", async (gpu) => {
  const rand = random(1);
  for (const [n, m] of [[1, 2], [2, 4], [1, 4], [2, 8], [4, 8], [3, 5], [1, 16]]) {
    for (const [rows, groups] of [[1, 1], [4, 1], [12, 5], [37, 67]]) {
      for (const data of [mixed, ties]) {
        const w = mat(rows, groups * m, data(rand, rows * groups * m, true));
        const want = pruneNM(w, { n, m });
        const got = await gpu.pruneNM(w, { n, m });
        const label = `pruneNM ${n}:${m} [${rows}, ${groups * m}] ${data.name}`;
        assertEqualArrays(got.mask, want.mask, `${label} mask`);
        assertEqualArrays(got.pruned.data, want.pruned.data, `${label} values`);
      }
    }
  }
});

parityTest("prune24 reproduces SPEC §9 and the reference, including 1024×4096", async (gpu) => {
  const spec = matrix(SPEC_HARD_24.length, 4, SPEC_HARD_24.flatMap((c) => c.w));
  const got = await gpu.prune24(spec);
  const kept = SPEC_HARD_24.flatMap((c) => [0, 1, 2, 3].map((i) => (c.kept.includes(i) ? 1 : 0)));
  assertEqualArrays(got.mask, kept, "SPEC §9 kept positions");
  const values = Float32Array.from(SPEC_HARD_24.flatMap((c) => c.out)); // the float32 inputs, kept
  assertEqualArrays(got.pruned.data, values, "SPEC §9 values");
  const rand = random(2);
  for (const [rows, cols] of [...SHAPES_4, LARGE]) {
    const w = mat(rows, cols, mixed(rand, rows * cols, true));
    const want = prune24(w);
    const out = await gpu.prune24(w);
    assertEqualArrays(out.mask, want.mask, `prune24 [${rows}, ${cols}] mask`);
    assertEqualArrays(out.pruned.data, want.pruned.data, `prune24 [${rows}, ${cols}] values`);
  }
});
