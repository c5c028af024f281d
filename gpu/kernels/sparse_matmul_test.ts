/**
 * The compressed-operand sparse matmul on the GPU against a float64 loop over the decompressed
 * matrix, within `tolMatmul` (K products of terms in [−1, 1] per output).
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertClose } from "../../reference/testing.ts";
import { compress24 } from "../../reference/compress.ts";
import { prune24 } from "../../reference/prune.ts";
import { mat, parityTest, random, uniformSigned } from "../testing.ts";

/** Float32 matmul with `K` products of terms in [−1, 1] per output, vs a float64 loop. */
const tolMatmul = (k: number) => ({ atol: k * 2 ** -20, rtol: 1e-5 });

parityTest("sparseMatmul equals a float64 loop over the decompressed matrix", async (gpu) => {
  const rand = random(7);
  const shapes: [number, number, number][] = [
    [1, 1, 4],
    [3, 5, 12],
    [64, 64, 32],
    [70, 65, 36],
    [130, 67, 260],
    [17, 1024, 4096], // a 1024×4096 weight
  ];
  for (const [t, out, inDim] of shapes) {
    const a = prune24(mat(out, inDim, uniformSigned(rand, out * inDim))).pruned;
    const x = mat(t, inDim, uniformSigned(rand, t * inDim));
    const y = await gpu.sparseMatmul(x, compress24(a));
    const want = new Float64Array(t * out);
    for (let i = 0; i < t; i++) {
      for (let j = 0; j < out; j++) {
        let s = 0;
        for (let k = 0; k < inDim; k++) s += x.data[i * inDim + k] * a.data[j * inDim + k];
        want[i * out + j] = s;
      }
    }
    if (y.rows !== t || y.cols !== out) {
      throw new Error(`sparseMatmul shape [${y.rows}, ${y.cols}]`);
    }
    assertClose(y.data, want, tolMatmul(inDim / 2), `sparseMatmul T=${t} out=${out} in=${inDim}`);
  }
});

parityTest("dense matmul (the sparse baseline) equals a float64 loop", async (gpu) => {
  const rand = random(8);
  for (const [m, n, k] of [[1, 1, 1], [13, 7, 20], [65, 66, 67]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = mat(transA ? k : m, transA ? m : k, uniformSigned(rand, m * k));
        const b = mat(transB ? n : k, transB ? k : n, uniformSigned(rand, k * n));
        const got = await gpu.matmul(a, b, { transA, transB });
        const want = new Float64Array(m * n);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let l = 0; l < k; l++) {
              const av = transA ? a.data[l * m + i] : a.data[i * k + l];
              const bv = transB ? b.data[j * k + l] : b.data[l * n + j];
              s += av * bv;
            }
            want[i * n + j] = s;
          }
        }
        assertClose(got.data, want, tolMatmul(k), `matmul ${m}×${n}×${k} ${transA} ${transB}`);
      }
    }
  }
});
