/**
 * The wide dense matmul (`matmul_wide.ts`) and the 2:4 switch matmul (`matmul_sparse_switch.ts`)
 * against float64 products on the same inputs, every layout, shapes of several tiles. Both
 * accumulate each output in float32 in ascending k, so `|error| ≤ (K + 1)·2^-24·Σ_k |a||b|`.
 *
 * @module
 */

import { GpuRuntime } from "../runtime.ts";
import {
  encodeWideMatmul,
  matmulWideSpec,
  WIDE_128X64,
  wideParams,
  widePlan,
  wideSplitFor,
  type WideTiling,
} from "./matmul_wide.ts";
import {
  matmulSparseSwitchSpec,
  packSwitch24,
  packSwitchDense,
  type SparseSwitchTiling,
  switchTileA,
  switchTileR,
  switchTilingFits,
} from "./matmul_sparse_switch.ts";
import { assert, assertProductClose, seededFloats } from "../../reference/testing.ts";

const rt = await GpuRuntime.create(); // throws (fails every test) without an adapter
console.log(`matmul_speed_test: adapter "${rt.adapterName}" (fallback: ${rt.isFallbackAdapter})`);

const WIDE: WideTiling[] = [
  { tileM: 32, tileN: 64, tileK: 8, threadM: 4, threadN: 8 },
  { tileM: 64, tileN: 32, tileK: 8, threadM: 8, threadN: 4 },
  WIDE_128X64, // the whole-tile tiling of products 1,600 wide
];

Deno.test("wide plans: every GPT-2 FFN product (d = 768…1600, 8,192 tokens) runs whole tiles", () => {
  for (const d of [768, 1024, 1280, 1600]) {
    for (const [out, inp] of [[4 * d, d], [d, 4 * d]]) {
      // Forward X·Wᵀ, backward-data ∇Z·W, backward-weight ∇Zᵀ·X (experiments/_bench.ts).
      for (
        const [m, n, k, transA, transB] of [
          [8192, out, inp, false, true],
          [8192, inp, out, false, false],
          [out, inp, 8192, true, false],
        ] as const
      ) {
        const plan = widePlan({ batch: 1, m, n, k, transA, transB });
        if (plan.checked) {
          throw new Error(`d=${d}: ${m}×${n}×${k} takes the bounds-checked kernel`);
        }
      }
    }
  }
});

for (const tiling of WIDE) {
  for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]]) {
    Deno.test(`wide matmul ${JSON.stringify(tiling)} transA=${transA} transB=${transB}`, async () => {
      const batch = 2, m = 2 * tiling.tileM, n = 2 * tiling.tileN, k = 3 * tiling.tileK;
      const a = seededFloats(batch * m * k, 3 + m), b = seededFloats(batch * k * n, 5 + n);
      const [aBuf, bBuf, cBuf] = [rt.upload(a), rt.upload(b), rt.alloc(4 * batch * m * n)];
      rt.write(cBuf, new Float32Array(batch * m * n).fill(NaN)); // poison: every output written
      const dims = { batch, m, n, k, transA, transB };
      rt.dispatch(matmulWideSpec(transA, transB, tiling), [aBuf, bBuf, cBuf], [
        n / tiling.tileN,
        m / tiling.tileM,
        batch,
      ], wideParams(dims));
      const c = new Float32Array(await rt.read(cBuf, 4 * batch * m * n));
      for (const x of [aBuf, bBuf, cBuf]) rt.free(x);
      for (let q = 0; q < batch; q++) {
        assertProductClose(
          `batch ${q}`,
          c.subarray(q * m * n, (q + 1) * m * n),
          { rows: m, cols: n, k: k },
          (i, kk) => a[q * m * k + (transA ? kk * m + i : i * k + kk)],
          (j, kk) => b[q * k * n + (transB ? j * k + kk : kk * n + j)],
        );
      }
    });
  }
}

for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]]) {
  Deno.test(`wide matmul checked, shapes off the tiles, transA=${transA} transB=${transB}`, async () => {
    const tiling: WideTiling = { tileM: 32, tileN: 64, tileK: 8, threadM: 4, threadN: 8 };
    for (
      const [batch, m, n, k] of [[1, 1, 1, 1], [2, 37, 70, 13], [1, 65, 129, 17], [1, 5, 3, 0]]
    ) {
      const a = seededFloats(batch * m * k, 13 + m), b = seededFloats(batch * k * n, 17 + n);
      const aBuf = rt.upload(a.length ? a : new Float32Array(1));
      const bBuf = rt.upload(b.length ? b : new Float32Array(1));
      const cBuf = rt.alloc(4 * batch * m * n);
      rt.write(cBuf, new Float32Array(batch * m * n).fill(NaN)); // poison: every output written
      encodeWideMatmul(rt, aBuf, bBuf, cBuf, { batch, m, n, k, transA, transB }, { tiling });
      const c = new Float32Array(await rt.read(cBuf, 4 * batch * m * n));
      for (const x of [aBuf, bBuf, cBuf]) rt.free(x);
      for (let q = 0; q < batch; q++) {
        assertProductClose(
          `${batch}×${m}×${n}×${k} batch ${q}`,
          c.subarray(q * m * n, (q + 1) * m * n),
          { rows: m, cols: n, k: k },
          (i, kk) => a[q * m * k + (transA ? kk * m + i : i * k + kk)],
          (j, kk) => b[q * k * n + (transB ? j * k + kk : kk * n + j)],
        );
      }
    }
  });
}

for (
  const [transA, transB, whole] of [[true, false, true], [false, true, true], [false, false, false]]
) {
  Deno.test(`wide matmul split along K, transA=${transA} transB=${transB} ${whole ? "whole tiles" : "checked"}`, async () => {
    const tiling: WideTiling = { tileM: 32, tileN: 32, tileK: 8, threadM: 4, threadN: 4 };
    const dims = whole
      ? { batch: 2, m: 32, n: 64, k: 4096, transA, transB }
      : { batch: 1, m: 37, n: 20, k: 3001, transA, transB }; // K not a multiple of the slice
    const splits = wideSplitFor(dims, tiling);
    if (splits < 2) throw new Error(`expected a split plan, got ${splits}`);
    const { batch, m, n, k } = dims;
    const a = seededFloats(batch * m * k, 23), b = seededFloats(batch * k * n, 29);
    const [aBuf, bBuf] = [rt.upload(a), rt.upload(b)];
    const cBuf = rt.alloc(4 * batch * m * n);
    encodeWideMatmul(rt, aBuf, bBuf, cBuf, dims, { tiling });
    const c = new Float32Array(await rt.read(cBuf, 4 * batch * m * n));
    for (const x of [aBuf, bBuf, cBuf]) rt.free(x);
    for (let q = 0; q < batch; q++) {
      assertProductClose(
        `split ${splits} batch ${q}`,
        c.subarray(q * m * n, (q + 1) * m * n),
        { rows: m, cols: n, k: k },
        (i, kk) => a[q * m * k + (transA ? kk * m + i : i * k + kk)],
        (j, kk) => b[q * k * n + (transB ? j * k + kk : kk * n + j)],
      );
    }
  });
}

/** A 2:4 matrix with every pattern, zeros in some kept slots and a few all-zero groups. */
function sparse24(rows: number, k: number, seed: number): Float32Array {
  const w = seededFloats(rows * k, seed);
  const pick = seededFloats(rows * k / 4, seed + 1, (u) => Math.floor(u * 8));
  const pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]];
  for (let g = 0; g < rows * k / 4; g++) {
    const p = pick[g];
    for (let i = 0; i < 4; i++) {
      if (p >= 6 || !pairs[p].includes(i)) w[4 * g + i] = 0; // 6, 7: an all-zero group
    }
    if (g % 5 === 0) w[4 * g + (p < 6 ? pairs[p][0] : 0)] = 0; // a kept zero
  }
  return w;
}

const SWITCH: SparseSwitchTiling[] = [
  { threadM: 4, rows: 8, warpsR: 2, warpsA: 1, groups: 2 },
  { threadM: 8, rows: 8, warpsR: 1, warpsA: 2, groups: 1 },
];

for (const tiling of SWITCH) {
  for (const mode of ["switch", "select", "gather", "dense"] as const) {
    for (const xKMajor of [false, true]) {
      Deno.test(`2:4 switch matmul ${mode} ${JSON.stringify(tiling)} xKMajor=${xKMajor}`, async () => {
        const A = 2 * switchTileA(tiling), R = 2 * switchTileR(tiling), K = 3 * 4 * tiling.groups;
        const x = seededFloats(A * K, 7 + A), w = sparse24(R, K, 11 + R);
        const xAt = (a: number, kk: number) => xKMajor ? x[kk * A + a] : x[a * K + kk];
        const xStored = new Float32Array(A * K);
        for (let a = 0; a < A; a++) {
          for (let kk = 0; kk < K; kk++) xStored[xKMajor ? kk * A + a : a * K + kk] = xAt(a, kk);
        }
        let bufs: GPUBuffer[];
        if (mode !== "dense") {
          const { wv, wc } = packSwitch24(w, R, K);
          bufs = [rt.upload(x), rt.upload(wv), rt.upload(wc)];
        } else {
          bufs = [rt.upload(x), rt.upload(packSwitchDense(w, R, K))];
        }
        const out = rt.alloc(4 * R * A);
        rt.write(out, new Float32Array(R * A).fill(NaN));
        rt.dispatch(
          matmulSparseSwitchSpec(tiling, xKMajor, mode),
          [...bufs, out],
          [A / switchTileA(tiling), R / switchTileR(tiling)],
          new Uint32Array([A, R, K, 0]),
        );
        const got = new Float32Array(await rt.read(out, 4 * R * A));
        for (const b of [...bufs, out]) rt.free(b);
        assertProductClose("Cᵀ", got, { rows: R, cols: A, k: K }, (j, kk) => w[j * K + kk], xAt);
      });
    }
  }
}

Deno.test("switchTilingFits asks for whole tiles along A, R and K", () => {
  const t = SWITCH[0]; // 128 tokens × 16 rows × k slice 8
  assert(switchTilingFits(t, { A: 256, R: 32, K: 24 }), "256×32×24 fills whole tiles");
  for (
    const dims of [{ A: 192, R: 32, K: 24 }, { A: 256, R: 24, K: 24 }, { A: 256, R: 32, K: 20 }]
  ) {
    assert(!switchTilingFits(t, dims), `${JSON.stringify(dims)} leaves a partial tile`);
  }
});

/** `m` by `m` per batch, zero above (`"lower"`) or below (`"upper"`) the diagonal. */
function triangle(batch: number, m: number, which: "lower" | "upper", seed: number): Float32Array {
  const x = seededFloats(batch * m * m, seed);
  for (let q = 0; q < batch; q++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        if (which === "lower" ? j > i : j < i) x[(q * m + i) * m + j] = 0;
      }
    }
  }
  return x;
}

for (const triangular of ["lower-out", "lower-a", "upper-a"] as const) {
  for (const aligned of [true, false]) {
    Deno.test(`wide matmul ${triangular} (${aligned ? "whole tiles" : "checked"})`, async () => {
      const tiling: WideTiling = { tileM: 32, tileN: 32, tileK: 8, threadM: 4, threadN: 4 };
      const batch = 2, m = aligned ? 96 : 75, n = triangular === "lower-out" ? m : 40;
      const k = triangular === "lower-out" ? 24 : m;
      // lower-out: C = A·Bᵀ of any A, B (only j ≤ i compared); lower-a/upper-a: A is m×m
      // triangular, stored transposed for upper-a (op(A) = Aᵀ of a lower A).
      const transA = triangular === "upper-a", transB = triangular === "lower-out";
      const a = triangular === "lower-out"
        ? seededFloats(batch * m * k, 31)
        : triangle(batch, m, "lower", 37); // upper-a: op(A) = (lower)ᵀ is upper
      const b = seededFloats(batch * k * n, 41);
      const [aBuf, bBuf] = [rt.upload(a), rt.upload(b)];
      const dims = { batch, m, n, k, transA, transB };
      const cBuf = rt.alloc(4 * batch * m * n);
      rt.write(cBuf, new Float32Array(batch * m * n).fill(NaN)); // skipped tiles must be written too
      encodeWideMatmul(rt, aBuf, bBuf, cBuf, dims, { tiling, triangular });
      const c = new Float32Array(await rt.read(cBuf, 4 * batch * m * n));
      for (const x of [aBuf, bBuf, cBuf]) rt.free(x);
      for (let q = 0; q < batch; q++) {
        const got = c.subarray(q * m * n, (q + 1) * m * n);
        assertProductClose(
          `${triangular} batch ${q}`,
          got,
          { rows: m, cols: n, k: k },
          (i, kk) => a[q * m * k + (transA ? kk * m + i : i * k + kk)],
          (j, kk) => b[q * k * n + (transB ? j * k + kk : kk * n + j)],
          { compared: (i, j) => triangular !== "lower-out" || j <= i }, // above: not promised
        );
        if (triangular === "lower-out" && got.some((v) => !Number.isFinite(v))) {
          throw new Error(`${triangular}: a non-finite entry above the diagonal`);
        }
      }
    });
  }
}
