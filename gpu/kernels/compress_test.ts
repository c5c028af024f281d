/**
 * Compressed 2:4 storage on the GPU against `reference/compress.ts` (SPEC §1.5, §9): values and
 * metadata exact (moved as bits).
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertEqualArrays } from "../../reference/testing.ts";
import { matrix } from "../../reference/matrix.ts";
import { SPEC_COMPRESS } from "../../reference/cases.ts";
import { compress24, decompress24 } from "../../reference/compress.ts";
import { prune24 } from "../../reference/prune.ts";
import { LARGE, mat, mixed, parityTest, random, SHAPES_4 } from "../testing.ts";

parityTest(
  "compress24 / decompress24 equal the reference (SPEC §9 codes 9, 12, 14, 4)",
  async (gpu) => {
    const row = matrix(1, 16, SPEC_COMPRESS.row);
    const c = await gpu.compress24((await gpu.prune24(row)).pruned);
    assertEqualArrays(c.values.data, SPEC_COMPRESS.values, "SPEC §9 compressed values");
    const meta = SPEC_COMPRESS.codes.reduce((word, code, g) => word | (code << (4 * g)), 0);
    assertEqualArrays(c.meta, [meta], "SPEC §9 codes");
    const rand = random(6);
    for (const [r, cols] of [...SHAPES_4, [5, 36], LARGE]) {
      const a = prune24(mat(r, cols, mixed(rand, r * cols, true))).pruned;
      a.data[0] = 0; // a group with fewer than two non-zeros
      const want = compress24(a);
      const got = await gpu.compress24(a);
      const label = `compress24 [${r}, ${cols}]`;
      assertEqualArrays(got.meta, want.meta, `${label} meta`);
      assertEqualArrays(got.values.data, want.values.data, `${label} values`);
      assertEqualArrays(
        (await gpu.decompress24(got)).data,
        decompress24(want).data,
        `${label} back`,
      );
    }
  },
);
