/**
 * oneDNN's batched products (`_onednn_matmul.ts`, `Blas.sgemmBatched` of `onednn.ts`) against the
 * float64 product within `assertProductClose`'s float32 bound, the primitive cache, the loop
 * fallback and `close()`. Fails (never skips) when oneDNN does not load.
 *
 * @module
 */

import { assertProductClose, assertThrows, seededFloats } from "../../reference/testing.ts";
import { loadOnednn } from "./onednn.ts";
import { OnednnMatmul } from "./_onednn_matmul.ts";
import type { BatchedProduct, Blas } from "./blas.ts";

function onednn(): Blas {
  const dnnl = loadOnednn({ threads: 2 });
  if (!("sgemm" in dnnl)) throw new Error(`oneDNN did not load: ${dnnl.message}`);
  return dnnl;
}

type Run = (...product: BatchedProduct) => unknown;

/** Runs one batched product on fresh seeded operands and checks every matrix of it. */
function checkBatch(run: Run, batch: number, M: number, N: number, K: number, seed: number) {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const A = seededFloats(batch * M * K, seed), B = seededFloats(batch * K * N, seed + 1);
      const C = new Float32Array(batch * M * N).fill(NaN);
      run(transA, transB, batch, M, N, K, A, B, C);
      for (let q = 0; q < batch; q++) {
        const [a, b] = [q * M * K, q * K * N];
        assertProductClose(
          `${batch}×${M}×${N}×${K} transA=${transA} transB=${transB}, matrix ${q}`,
          C.subarray(q * M * N, (q + 1) * M * N),
          { rows: M, cols: N, k: K },
          (i, k) => A[a + (transA ? k * M + i : i * K + k)],
          (j, k) => B[b + (transB ? j * K + k : k * N + j)],
        );
      }
    }
  }
}

/** `[batch, M, N, K]`: single matrices, sizes 1, odd sizes, attention's products. */
const SHAPES = [
  [1, 3, 5, 7],
  [3, 1, 1, 1],
  [3, 5, 7, 2],
  [3, 17, 1, 33],
  [64, 1, 17, 9],
  [64, 64, 64, 32],
  [64, 64, 32, 64],
];

Deno.test("sgemmBatched: NN, NT, TN, TT on awkward sizes (batch 1/3/64, sizes 1 and odd)", () => {
  const blas = onednn();
  try {
    if (!blas.sgemmBatched) throw new Error(`${blas.version} has no matmul primitive`);
    for (const [i, [batch, M, N, K]] of SHAPES.entries()) {
      checkBatch(blas.sgemmBatched, batch, M, N, K, 10 * i + 1);
    }
    // K = 0: zeros over whatever C held; M = 0 writes nothing.
    const C = new Float32Array(6).fill(7);
    blas.sgemmBatched(false, false, 2, 1, 3, 0, new Float32Array(0), new Float32Array(0), C);
    if (C.some((v) => v !== 0)) throw new Error(`K = 0 gave ${C}`);
  } finally {
    blas.close();
  }
});

Deno.test("matmul primitive: one per shape, cached; handles set per call; close() frees", () => {
  const blas = onednn();
  const matmul = OnednnMatmul.open(blas.path);
  blas.close();
  if (!matmul) throw new Error("the matmul primitive did not open");
  const run: Run = (...args) => {
    if (!matmul.run(...args)) throw new Error(`no primitive for ${args.slice(0, 6)}`);
  };
  const expectCached = (n: number, when: string) => {
    if (matmul.cached !== n) {
      throw new Error(`${when}: expected ${n} primitives, got ${matmul.cached}`);
    }
  };
  checkBatch(run, 8, 16, 16, 8, 1);
  expectCached(4, "four transposes");
  checkBatch(run, 8, 16, 16, 8, 3);
  expectCached(4, "the same shapes on new arrays");
  checkBatch(run, 3, 5, 7, 2, 5);
  expectCached(8, "four more shapes");
  matmul.close();
  matmul.close(); // twice is harmless
  expectCached(0, "after close()");
  const x = new Float32Array(8);
  assertThrows(
    () => matmul.run(false, false, 2, 2, 2, 1, x, x, x),
    RangeError,
    "Cannot run oneDNN's matmul on 2×2×2×1 (transA false, transB false): the runner is closed",
  );
});

Deno.test("matmul primitive: a refused shape is remembered and left to the sgemm loop", () => {
  const blas = onednn();
  const matmul = OnednnMatmul.open(blas.path);
  try {
    if (!matmul) throw new Error("the matmul primitive did not open");
    const x = new Float32Array(8).fill(3);
    for (let i = 0; i < 2; i++) {
      if (matmul.run(false, false, 2, 2, 2, -1, x, x, x)) throw new Error("ran K = -1");
      if (matmul.cached !== 1) throw new Error(`expected 1 cached failure, got ${matmul.cached}`);
    }
    if (x.some((v) => v !== 3)) throw new Error(`a refused shape wrote ${x}`);
    // Through the Blas, the same shape falls back to dnnl_sgemm, which reports the bad size.
    assertThrows(
      () => blas.sgemmBatched!(false, false, 2, 2, 2, -1, x, x, x),
      RangeError,
      "Cannot run dnnl_sgemm on 2×2×-1",
    );
  } finally {
    matmul?.close();
    blas.close();
  }
});

Deno.test("matmul primitive: a library that does not open gives no runner (the loop stays)", () => {
  const matmul = OnednnMatmul.open("/nonexistent/libdnnl.so.2");
  if (matmul !== null) throw new Error("opened a runner on a missing library");
});
