/**
 * The CPU backend against the reference backend, op by op, on seeded inputs with awkward shapes
 * (1×1, 3×5, 17×33, batched products, K = 0) and sizes that split the work with the helper thread,
 * plus the memory rules, the caches and the fallback when the BLAS library is missing. The suite
 * prints the library and FAILS (never skips) when none loads. Over 600 lines: one test per
 * backend operation, the products on both GEMM engines.
 *
 * Tolerances (`|cpu − ref| ≤ atol + rtol·|ref|`, `u = 2^-24`). Both backends store float32 and do
 * every other operation in float64, rounding once per stored value; they differ only where the CPU
 * backend computes differently:
 * - exact (`atol = rtol = 0`): every operation performing the reference's float64 operations in
 *   the reference's order (data movement, `add`, `addScaled`, `mul`, `scale`, dropout, LayerNorm and
 *   its backward, softmax backward, embeddings and the scatter-add, sums, AdamW) and the ones that
 *   run the reference's own oracles or copies of their arithmetic (2:4 pruning, soft threshold,
 *   masks, MVUE, masked decay, flip counts, FP8, gated activations, `meanRows`).
 * - matmul: BLAS sums float32 products in an order of its own (blocked, FMA): Higham's bound for
 *   any order, `atol = γ_K · max_ij Σ_k |a_ik|·|b_kj|` from the data, `rtol = 0`.
 * - causal softmax uses `fastExp` or the SIMD `exp` (within `5e-15` of `Math.exp`,
 *   `core/cpu/exp_test.ts`, `core/cpu/exp_wasm_test.ts`, SPEC §10.6; `Math.exp` is within 1 ULP,
 *   `2.2e-16`, of `exp`), and float64 sums of at most 4,096 terms whose roundings differ between
 *   the backends by at most `2·γ_4096` of double precision (`2·4096·2^-53 ≈ 9.1e-13` of the summed
 *   magnitudes): the float64 values differ by `δ ≤ 1e-12` of the magnitudes involved. Each backend
 *   then rounds to float32 once: `|f32(y') − f32(y)| ≤ u|y'| + δ + u|y|`, so `rtol = 2u(1 + 2u)`
 *   and `atol = (1 + 2u)·δ`, `δ = 1e-12` (probabilities ≤ 1).
 * - GELU and its derivative: tabulated Taylor polynomials within `4e-15` (`Φ`) and `2e-14`
 *   (`Φ + x·φ`) of the reference's float64 values (`core/cpu/gelu_test.ts`, SPEC §10.6), inside the
 *   rounded-apart bounds with `δ = 1e-12·|x|` (GELU `x·Φ`) and `1.25e-12·|dy|` (the backward).
 * - the cross-entropy and its backward: float32 exponentials within `4.3u` (SPEC §10.6), bounds
 *   derived beside `assertCrossEntropyGrad`.
 *
 * @module
 */

import { assertClose, assertEqualArrays, assertThrows } from "../reference/testing.ts";
import { clippedAdamW, f, type Input, ints, runOn } from "./_backend_pair.ts";
import type { Backend, Tensor } from "../core/backend.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import {
  type CpuBackend,
  CpuBackendUnavailableError,
  createCpuBackend,
} from "../core/cpu/backend.ts";
import { gamma, U } from "../gpu/float32_rules.ts";
import { seededFloats } from "../reference/testing.ts";

type Tol = { atol: number; rtol: number };
const EXACT: Tol = { atol: 0, rtol: 0 };
/** The rounding of two float64 values `δ` apart to float32 (module notes). */
const roundedApart = (delta: number): Tol => ({
  atol: (1 + 2 * U) * delta,
  rtol: 2 * U * (1 + 2 * U),
});

let cpuPromise: Promise<CpuBackend> | undefined;
/** The shared CPU backend (its default GEMM engine); rejects (every test fails) when none loads. */
function cpu(): Promise<CpuBackend> {
  cpuPromise ??= createCpuBackend({ threads: 2 });
  return cpuPromise;
}
let openblasPromise: Promise<CpuBackend> | undefined;
/** A CPU backend on OpenBLAS (the fallback engine), for the products' tests. */
function cpuOpenblas(): Promise<CpuBackend> {
  openblasPromise ??= createCpuBackend({ threads: 2, gemm: "openblas" });
  return openblasPromise;
}
/** The GEMM engines the products are checked on: the default one and OpenBLAS. */
const GEMM_BACKENDS = [cpu, cpuOpenblas];
const ref = new ReferenceBackend();

const random = (n: number, seed: number, scale = 1) =>
  seededFloats(n, seed, (u) => (u * 2 - 1) * scale);

/** Runs `op` on both backends with the same inputs; returns `[cpu outputs, reference outputs]`. */
async function both(
  inputs: Input[],
  op: (be: Backend, xs: Tensor[]) => Tensor | Tensor[],
  fast: Backend,
): Promise<[Float32Array[], Float32Array[]]> {
  return [await runOn(fast, inputs, op), await runOn(ref, inputs, op)];
}

async function compare(
  label: string,
  inputs: Input[],
  op: (be: Backend, xs: Tensor[]) => Tensor | Tensor[],
  tol: Tol | Tol[] = EXACT,
  fast?: Backend,
): Promise<void> {
  const [c, r] = await both(inputs, op, fast ?? await cpu());
  c.forEach((values, i) => {
    const t = Array.isArray(tol) ? tol[i] : tol;
    if (t.atol === 0 && t.rtol === 0) assertEqualArrays(values, r[i], `${label} (output ${i})`);
    else assertClose(values, r[i], t, `${label} (output ${i})`);
  });
}

const maxAbs = (v: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
};

// ---- library ------------------------------------------------------------------------------------

Deno.test("a BLAS library loads (this suite fails without one)", async () => {
  const be = await cpu();
  console.log(`CPU backend: ${be.device}\nproducts also on: ${(await cpuOpenblas()).device}`);
  if (be.name !== "cpu") throw new Error(`unexpected backend name ${be.name}`);
});

Deno.test("without oneDNN the default engine falls back to OpenBLAS and says why", async () => {
  const log = console.log, lines: string[] = [];
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    const be = await createCpuBackend({ threads: 2, onednnPaths: ["/nonexistent/libdnnl.so.2"] });
    if (!be.device.includes("OpenBLAS")) throw new Error(`fell back to ${be.device}`);
  } finally {
    console.log = log;
  }
  const said = lines.join("\n");
  for (const part of ["GEMMs through OpenBLAS", "/nonexistent/libdnnl.so.2", "libdnnl2"]) {
    if (!said.includes(part)) throw new Error(`the message lacks "${part}": ${said}`);
  }
});

Deno.test("oneDNN: a failed dnnl_sgemm is a RangeError naming the product and the status", async () => {
  const be = await cpu();
  if (!be.device.includes("oneDNN")) {
    throw new Error(`oneDNN did not load (apt-get install libdnnl2): ${be.device}`);
  }
  const x = new Float32Array(4);
  assertThrows(
    () => be.blas.sgemm(false, false, 2, 2, -1, 1, x, x, 0, x),
    RangeError,
    "Cannot run dnnl_sgemm on 2×2×-1 (transA false, transB false): oneDNN status 2",
  );
});

Deno.test("a missing BLAS library is reported, not thrown at import (the fallback's signal)", async () => {
  let error: unknown;
  try {
    await createCpuBackend({ paths: ["/nonexistent/libopenblas.so.0"] });
  } catch (e) {
    error = e;
  }
  if (!(error instanceof CpuBackendUnavailableError)) throw new Error(`got ${error}`);
  for (const part of ["/nonexistent/libopenblas.so.0", "apt-get install libopenblas0-pthread"]) {
    if (!error.message.includes(part)) throw new Error(`message lacks "${part}": ${error.message}`);
  }
});

// ---- linear algebra -----------------------------------------------------------------------------

/** Higham's bound for a float32 sum of K products in any order, from the data (module notes). */
function matmulTol(
  a: Float32Array,
  b: Float32Array,
  dims: { batch: number; m: number; n: number; k: number; transA: boolean; transB: boolean },
): Tol {
  const { batch, m, n, k, transA, transB } = dims;
  let worst = 0;
  const absRow = new Float64Array(n);
  for (let q = 0; q < batch; q++) {
    for (let i = 0; i < m; i++) {
      absRow.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const av = Math.abs(a[q * m * k + (transA ? kk * m + i : i * k + kk)]);
        for (let j = 0; j < n; j++) {
          absRow[j] += av * Math.abs(b[q * k * n + (transB ? j * k + kk : kk * n + j)]);
        }
      }
      for (let j = 0; j < n; j++) worst = Math.max(worst, absRow[j]);
    }
  }
  return { atol: gamma(k) * worst, rtol: 0 };
}

async function checkMatmul(batch: number, m: number, n: number, k: number): Promise<void> {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = random(batch * m * k, 11 + m + 3 * k), b = random(batch * k * n, 17 + n + 5 * k);
      const lead = batch === 1 ? [] : [batch];
      const aShape = [...lead, ...(transA ? [k, m] : [m, k])];
      const bShape = [...lead, ...(transB ? [n, k] : [k, n])];
      for (const engine of GEMM_BACKENDS) {
        const fast = await engine();
        await compare(
          `matmul B=${batch} ${m}×${n}×${k} transA=${transA} transB=${transB} (${fast.blas.path})`,
          [f(a, aShape), f(b, bShape)],
          (be, [x, y]) => be.matmul(x, y, { transA, transB }),
          matmulTol(a, b, { batch, m, n, k, transA, transB }),
          fast,
        );
      }
    }
  }
}

Deno.test("matmul: awkward 2-D shapes, all transposes", async () => {
  for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [17, 33, 9], [64, 1, 130]]) {
    await checkMatmul(1, m, n, k);
  }
});

Deno.test("matmul: batched 3-D (attention shapes and odd ones), all transposes", async () => {
  if (!(await cpu()).blas.sgemmBatched) throw new Error("the default engine has no batched call");
  for (const [batch, m, n, k] of [[3, 5, 7, 2], [8, 16, 16, 8], [3, 1, 1, 1], [3, 17, 1, 33]]) {
    await checkMatmul(batch, m, n, k);
  }
  for (const [m, n, k] of [[1, 17, 9], [64, 64, 32], [64, 32, 64]]) await checkMatmul(64, m, n, k);
});

Deno.test("matmul: the cpu preset's head product 256×512×128 and a long K = 1000", async () => {
  await checkMatmul(1, 256, 512, 128);
  await checkMatmul(1, 16, 24, 1000);
});

Deno.test("matmul: K = 0 gives zeros (also from a recycled buffer); shape errors", async () => {
  const be = await cpu();
  be.full([2, 3], 7);
  be.release(); // the product below recycles this buffer of 7s
  const z = be.matmul(
    be.tensor(new Float32Array(0), [2, 0]),
    be.tensor(new Float32Array(0), [0, 3]),
  );
  assertEqualArrays(await be.read(z), new Float32Array(6), "K = 0 product");
  be.full([3, 2, 3], 7);
  be.release();
  const empty = new Float32Array(0);
  const z3 = be.matmul(be.tensor(empty, [3, 2, 0]), be.tensor(empty, [3, 0, 3]));
  assertEqualArrays(await be.read(z3), new Float32Array(18), "batched K = 0 product");
  const a = be.tensor(random(6, 1), [2, 3]), b = be.tensor(random(8, 2), [4, 2]);
  assertThrows(() => be.matmul(a, b), RangeError, "inner dimensions differ (3 vs 4)");
  assertThrows(() => be.matmul(a, be.reshape(b, [2, 2, 2])), RangeError, "both 2-D or both 3-D");
  be.release();
});

Deno.test("transpose, permute0213, sliceCols, padCols: exact", async () => {
  const x = random(17 * 33, 3);
  await compare("transpose 17×33", [f(x, [17, 33])], (be, [t]) => be.transpose(t));
  await compare("transpose 1×1", [f(x.slice(0, 1), [1, 1])], (be, [t]) => be.transpose(t));
  const p = random(2 * 3 * 4 * 5, 4);
  await compare("permute0213", [f(p, [120])], (be, [t]) => be.permute0213(t, [2, 3, 4, 5]));
  await compare("sliceCols", [f(x, [17, 33])], (be, [t]) => be.sliceCols(t, 5, 11));
  await compare("padCols", [f(x, [17, 33])], (be, [t]) => be.padCols(t, 4, 40));
});

// ---- element-wise -------------------------------------------------------------------------------

Deno.test("add, addScaled, mul, scale, dropout: exact", async () => {
  const a = random(3 * 5, 5, 3), b = random(3 * 5, 6, 2);
  const pair = [f(a, [3, 5]), f(b, [3, 5])];
  await compare("add", pair, (be, [x, y]) => be.add(x, y));
  // Many SIMD pieces and a ragged end.
  const [u, w] = [random(70001, 41, 3), random(70001, 42, 1e-3)];
  await compare("add 70001", [f(u, [70001]), f(w, [70001])], (be, [x, y]) => be.add(x, y));
  await compare("addScaled", pair, (be, [x, y]) => be.addScaled(x, y, -0.37));
  await compare("mul", pair, (be, [x, y]) => be.mul(x, y));
  await compare("scale", [f(a, [15])], (be, [x]) => be.scale(x, 1 / 3));
  await compare(
    "sumSquaresMany",
    [f(a, [15]), f(a.slice(3), [12])],
    (be, xs) => be.sumSquaresMany(xs),
  );
  const d = random(1001, 7);
  for (const p of [0, 0.1, 0.5]) {
    await compare(`dropout p=${p}`, [f(d, [1001])], (be, [x]) => be.dropout(x, p, 12345, 7));
  }
});

Deno.test("GELU and its backward (tabulated polynomials): rounded-apart bounds, exact at ±Inf", async () => {
  const x = random(4096, 8, 9);
  x.set([0, -0, Infinity, -Infinity, 1e-30, -40, 40], 0);
  const dy = random(4096, 9, 2);
  await compare("gelu", [f(x, [4096])], (be, [t]) => be.gelu(t), roundedApart(1e-12 * 40));
  await compare(
    "geluBackward",
    [f(x, [4096]), f(dy, [4096])],
    (be, [t, g]) => be.geluBackward(t, g),
    roundedApart(1.25e-12 * maxAbs(dy)),
  );
  // Large enough to split with the helper thread (≥ 2^16 elements), forward then backward.
  const big = random(1 << 17, 35, 9), bigDy = random(1 << 17, 36, 2);
  await compare(
    "gelu then geluBackward, split between two threads",
    [f(big, [1 << 17]), f(bigDy, [1 << 17])],
    (be, [t, g]) => [be.gelu(t), be.geluBackward(t, g)],
    [roundedApart(1e-12 * 9), roundedApart(1.25e-12 * maxAbs(bigDy))],
  );
  if ((await cpu()).helperCalls === 0) throw new Error("the helper thread shared no work");
  // Forward then backward (each on its own: no values kept between them).
  await compare(
    "gelu then geluBackward",
    [f(x, [4096]), f(dy, [4096])],
    (be, [t, g]) => [be.gelu(t), be.geluBackward(t, g)],
    [roundedApart(1e-12 * 40), roundedApart(1.25e-12 * maxAbs(dy))],
  );
});

Deno.test("GELU backward after the input changes: the new input's derivative", async () => {
  const be = await cpu();
  const x = be.keep(be.tensor(random(64, 32, 3), [64])), dy = be.tensor(random(64, 33), [64]);
  be.gelu(x);
  be.assign(x, be.tensor(random(64, 34, 3), [64]));
  const got = await be.read(be.geluBackward(x, dy));
  const want = await ref.read(
    ref.geluBackward(ref.tensor(random(64, 34, 3), [64]), ref.tensor(random(64, 33), [64])),
  );
  assertClose(got, want, roundedApart(1.25e-12), "backward after assign");
  be.dispose(x);
  be.release();
  ref.release();
});

Deno.test("GEGLU, SwiGLU and their backward passes: exact (the reference's oracles)", async () => {
  const x = random(7 * 10, 10, 3), dy = random(7 * 5, 11);
  await compare("geglu", [f(x, [7, 10])], (be, [t]) => be.geglu(t));
  await compare("swiglu", [f(x, [7, 10])], (be, [t]) => be.swiglu(t));
  const pair = [f(x, [7, 10]), f(dy, [7, 5])];
  await compare("gegluBackward", pair, (be, [t, g]) => be.gegluBackward(t, g));
  await compare("swigluBackward", pair, (be, [t, g]) => be.swigluBackward(t, g));
});

// ---- normalisation, attention, embedding, loss --------------------------------------------------

Deno.test("LayerNorm and its backward: exact", async () => {
  // 601×128 splits its rows with the helper thread (≥ 2^16 values) at an odd row.
  for (const [n, d] of [[1, 1], [3, 5], [17, 128], [601, 128]]) {
    const x = random(n * d, 12 + d, 2),
      w = random(d, 13),
      b = random(d, 14),
      dy = random(n * d, 15);
    await compare(`layerNorm ${n}×${d}`, [f(x, [n, d]), f(w, [d]), f(b, [d])], (be, [t, s, h]) => {
      const r = be.layerNorm(t, s, h, 1e-5);
      return [r.y, r.mean, r.rstd];
    });
    await compare(
      `layerNormBackward ${n}×${d}`,
      [f(x, [n, d]), f(w, [d]), f(b, [d]), f(dy, [n, d])],
      (be, [t, s, h, g]) => {
        const r = be.layerNorm(t, s, h, 1e-5);
        const grads = be.layerNormBackward(t, s, r.mean, r.rstd, g);
        return [grads.dx, grads.dw, grads.db];
      },
    );
  }
});

Deno.test("causal softmax (fast exp): rounded-apart bound; softmax backward: exact", async () => {
  // 16×64×64 splits its rows with the helper thread (≥ 2^16 values).
  for (const [batch, T] of [[1, 1], [3, 7], [4, 64], [16, 64]]) {
    const s = random(batch * T * T, 16 + T, 8), dp = random(batch * T * T, 17 + T);
    await compare(
      `causalSoftmax ${batch}×${T}×${T}`,
      [f(s, [batch, T, T])],
      (be, [t]) => be.causalSoftmax(t, 0.7),
      roundedApart(1e-12),
    );
    // The backward from the reference's probabilities on both backends: the same operands.
    const p = await ref.read(ref.causalSoftmax(ref.tensor(s, [batch, T, T]), 0.7));
    ref.release();
    await compare(
      `softmaxBackward ${batch}×${T}×${T}`,
      [f(p, [batch, T, T]), f(dp, [batch, T, T])],
      (be, [q, g]) => be.softmaxBackward(q, g),
    );
    // The scale of softmax(scale·s) applied as the reference does (a second float32 rounding).
    await compare(
      `softmaxBackward ${batch}×${T}×${T} scaled, causal`,
      [f(p, [batch, T, T]), f(dp, [batch, T, T])],
      (be, [q, g]) => be.softmaxBackward(q, g, { scale: 0.7, causal: true }),
    );
  }
});

Deno.test("causal softmax split between two threads: a non-finite row in the helper's half throws the reference's error", async () => {
  const [batch, T] = [16, 64], s = random(batch * T * T, 40, 8);
  s[(12 * T + 5) * T + 2] = Infinity; // batch 12, row 5: in the upper half
  const messages: string[] = [];
  for (const be of [await cpu(), ref]) {
    const calls = be === ref ? 0 : (await cpu()).helperCalls;
    try {
      be.causalSoftmax(be.tensor(s, [batch, T, T]), 0.7);
      messages.push("no error");
    } catch (e) {
      messages.push(`${(e as Error).name}: ${(e as Error).message}`);
    }
    be.release();
    if (be !== ref && (await cpu()).helperCalls !== calls) {
      throw new Error("a failed helper call was counted as shared work");
    }
  }
  if (messages[0] !== messages[1] || !messages[0].startsWith("RangeError")) {
    throw new Error(`errors differ: "${messages[0]}" vs "${messages[1]}"`);
  }
});

Deno.test("embedding and its scatter-add backward (repeated ids): exact", async () => {
  const table = random(11 * 6, 18), idx = Int32Array.from([3, 0, 3, 10, 3, 7, 0]);
  const dy = random(7 * 6, 19);
  await compare(
    "embedding",
    [f(table, [11, 6]), ints(idx, [7])],
    (be, [t, i]) => be.embedding(t, i),
  );
  await compare(
    "embeddingBackward",
    [ints(idx, [7]), f(dy, [7, 6])],
    (be, [i, g]) => be.embeddingBackward(i, g, 11),
  );
});

/**
 * The cross-entropy's float32 exponentials (SPEC §10.6): each within `EXP_F32` relative of
 * `e^(z − max)`, or flushed to 0 below `e^-87`; a row's sum adds a float32 rounding per pair and
 * float64 ones (`Σ ≥ 1`), so `lse` errs by `CE_SUM` absolute and each probability by `CE_P` relative.
 */
const EXP_F32 = 4.3 * U, EXP_F32_FLUSH = 1.7e-38;
const CE_SUM = (EXP_F32 + U) * (1 + 1e-6) + 1e-12, CE_P = EXP_F32 + CE_SUM + 1e-12;
/** The loss: a mean of the rows' `lse − z_t`, plus the float64 terms both backends share. */
const crossEntropyTol = (z: Float32Array) => roundedApart(CE_SUM + 1e-12 * (1 + maxAbs(z)));

/**
 * The backward `factor·(p − onehot)` (`factor = dLoss/N`): off the targets, `CE_P` relative (and
 * the flush); at a target the subtraction leaves `|factor|·p_t·CE_P` absolute (`p_t` from the reference's output).
 * Both backends then round to float32.
 */
function assertCrossEntropyGrad(
  got: Float32Array,
  want: Float32Array,
  data: { targets: Int32Array; c: number; factor: number },
  label: string,
): void {
  const { targets, c, factor } = data, isTarget = new Uint8Array(want.length);
  targets.forEach((t, r) => isTarget[r * c + t] = 1);
  const pick = (v: Float32Array, at: number) => v.filter((_, i) => isTarget[i] === at);
  const flush = Math.abs(factor) * (EXP_F32_FLUSH + 1e-12);
  assertClose(pick(got, 0), pick(want, 0), {
    atol: (1 + 2 * U) * flush,
    rtol: 2 * U + CE_P * (1 + U),
  }, `${label} (off the targets)`);
  const pt = Math.min(1, Math.max(...pick(want, 1).map((g) => 1 + g / factor)) + 2 * U);
  assertClose(pick(got, 1), pick(want, 1), {
    atol: (1 + 2 * U) * (Math.abs(factor) * CE_P * pt + flush),
    rtol: 2 * U * (1 + 2 * U),
  }, `${label} (targets)`);
}

Deno.test("cross-entropy and its backward (float32 exps; the forward's gradient for dLoss = 1): bounds", async () => {
  for (const [n, c] of [[1, 1], [3, 5], [64, 4096]]) {
    const z = random(n * c, 20 + c, 12);
    const t = Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % c);
    await compare(
      `crossEntropy ${n}×${c}`,
      [f(z, [n, c]), ints(t, [n])],
      (be, [x, y]) => be.crossEntropy(x, y),
      crossEntropyTol(z),
    );
    // dLoss = 1 hands over the forward's gradient; 0.75 computes it. Forward then backward (twice:
    // the second cannot reuse the handed-over gradient), and the backward alone.
    for (const dLoss of [1, 0.75]) {
      const inputs = [f(z, [n, c]), ints(t, [n]), f(Float32Array.of(dLoss), [1])];
      const grad = { targets: t, c, factor: dLoss / n }, label = `${n}×${c}, dLoss ${dLoss}`;
      const [cpuOut, refOut] = await both(inputs, (be, [x, y, l]) => {
        const loss = be.crossEntropy(x, y), first = be.crossEntropyBackward(x, y, l);
        return [loss, first, be.crossEntropyBackward(x, y, l)];
      }, await cpu());
      assertClose(cpuOut[0], refOut[0], crossEntropyTol(z), `crossEntropy then backward ${label}`);
      assertCrossEntropyGrad(cpuOut[1], refOut[1], grad, `backward after forward ${label}`);
      assertCrossEntropyGrad(cpuOut[2], refOut[2], grad, `second backward ${label}`);
      const [alone, refAlone] = await both(
        inputs,
        (be, [x, y, l]) => be.crossEntropyBackward(x, y, l),
        await cpu(),
      );
      assertCrossEntropyGrad(alone[0], refAlone[0], grad, `crossEntropyBackward ${label}`);
    }
  }
});

Deno.test("cross-entropy: the kept gradient is not reused for other targets", async () => {
  const be = await cpu(), z = random(3 * 5, 30, 4);
  const [t1, t2] = [Int32Array.of(1, 4, 0), Int32Array.of(2, 4, 1)];
  const logits = be.tensor(z, [3, 5]), one = be.tensor(Float32Array.of(1), [1]);
  be.crossEntropy(logits, be.indices(t1, [3]));
  const got = await be.read(be.crossEntropyBackward(logits, be.indices(t2, [3]), one));
  const want = await ref.read(
    ref.crossEntropyBackward(
      ref.tensor(z, [3, 5]),
      ref.indices(t2, [3]),
      ref.tensor(Float32Array.of(1), [1]),
    ),
  );
  assertCrossEntropyGrad(got, want, { targets: t2, c: 5, factor: 1 / 3 }, "other targets");
  be.release();
  ref.release();
});

Deno.test("cross-entropy: the kept gradient is not reused after the logits change", async () => {
  const be = await cpu();
  const z = be.keep(be.tensor(random(3 * 5, 30, 4), [3, 5]));
  const t = be.indices(Int32Array.of(1, 4, 0), [3]), l = be.tensor(Float32Array.of(1), [1]);
  be.crossEntropy(z, t);
  be.assign(z, be.tensor(random(3 * 5, 31, 4), [3, 5]));
  const got = await be.read(be.crossEntropyBackward(z, t, l));
  const want = await ref.read(
    ref.crossEntropyBackward(
      ref.tensor(random(3 * 5, 31, 4), [3, 5]),
      ref.indices(Int32Array.of(1, 4, 0), [3]),
      ref.tensor(Float32Array.of(1), [1]),
    ),
  );
  const targets = Int32Array.of(1, 4, 0);
  assertCrossEntropyGrad(got, want, { targets, c: 5, factor: 1 / 3 }, "backward after assign");
  be.dispose(z);
  be.release();
  ref.release();
});

// ---- reductions, sparsity, optimizer ------------------------------------------------------------

Deno.test("meanRows, sumSquares, dot: exact", async () => {
  const x = random(17 * 33, 21);
  await compare("meanRows", [f(x, [17, 33])], (be, [t]) => be.meanRows(t));
  await compare("sumSquares", [f(x, [17, 33])], (be, [t]) => be.sumSquares(t));
  await compare(
    "dot",
    [f(x, [17, 33]), f(x.map((v) => v * 0.5 + 0.1), [17, 33])],
    (be, [a, b]) => be.dot(a, b),
  );
});

Deno.test("2:4 operations (prune, soft threshold, transposable mask, masked decay, flip count): exact", async () => {
  const w = random(8 * 12, 22, 2);
  // Ties (two, three and four equal magnitudes), zeros of both signs.
  w.set([0.5, -0.5, 0.5, -0.5, 0, -0, 0, -0, 3, 3, -3, 1, 1, 2, -2, 2], 0);
  const W = [f(w, [8, 12])];
  // Infinities too (where |w| = τ = ∞), for the pruning operations that accept them.
  const withInf = w.slice();
  withInf.set([Infinity, -Infinity, 1, 2, Infinity, Infinity, -Infinity, 1, 7, -1, 7, 0], 16);
  for (const [name, input] of [["", w], [" with ±Inf", withInf]] as const) {
    await compare(`pruneNM 2:4${name}`, [f(input, [8, 12])], (be, [t]) => {
      const r = be.pruneNM(t, 2, 4);
      return [r.pruned, r.mask];
    });
    await compare(`softThreshold24${name}`, [f(input, [8, 12])], (be, [t]) => {
      const r = be.softThreshold24(t);
      return [r.pruned, r.mask];
    });
  }
  await compare("pruneNM 1:3", [f(w, [8, 12])], (be, [t]) => {
    const r = be.pruneNM(t, 1, 3);
    return [r.pruned, r.mask];
  });
  await compare("transposableMask24", W, (be, [t]) => be.transposableMask24(t));
  const g = random(8 * 12, 23);
  await compare("maskedDecay and flipCount", [f(g, [8, 12]), f(w, [8, 12])], (be, [gt, wt]) => {
    const mask = be.pruneNM(wt, 2, 4).mask, other = be.transposableMask24(wt);
    return [be.maskedDecay(gt, wt, mask, 0.25), be.flipCount(mask, other)];
  });
});

Deno.test("FP8 and MVUE (the CPU's own copies of the oracles' arithmetic): exact, edge cases; errors as the reference's", async () => {
  // FP8: random values, exact grid midpoints (ties to even), ±0, a float32 subnormal, values that
  // scale to the format's max and past a binade boundary.
  for (const format of ["e4m3", "e5m2"] as const) {
    const x = random(4096, 24, 50);
    x.set([0, -0, 1e-40, -1e-40, 448, -448, 1.0625, 1.1875, -1.1875, 0.0009765625, 3.75e-5], 0);
    await compare(
      `quantizeFp8 ${format}`,
      [f(x, [2, 32, 64])],
      (be, [t]) => be.quantizeFp8(t, format),
    );
    await compare(
      `quantizeFp8 ${format} zeros`,
      [f(new Float32Array(8), [8])],
      (be, [t]) => be.quantizeFp8(t, format),
    );
  }
  // MVUE: a gradient-sized matrix with zero groups and one dominant entry per group.
  const g = random(64 * 512, 27, 3);
  g.fill(0, 0, 8);
  g.set([1e-3, 5, 1e-3, 1e-3], 8);
  for (const [seed, stream] of [[1, 0], [99, 3], [2 ** 40 + 7, 2 ** 31]]) {
    await compare(
      `mvue24 seed ${seed}`,
      [f(g, [64, 512])],
      (be, [t]) => be.mvue24(t, seed, stream),
    );
  }
  // Errors as the reference words them (a NaN input; a NaN mask entry).
  const message = (be: Backend, op: (be: Backend, t: Tensor) => Tensor) => {
    try {
      op(be, be.tensor(Float32Array.of(1, NaN, 0, 0), [1, 4]));
    } catch (e) {
      return String(e);
    } finally {
      be.release();
    }
    return "nothing thrown";
  };
  const ops: ((be: Backend, t: Tensor) => Tensor)[] = [
    (be, t) => be.quantizeFp8(t, "e4m3"),
    (be, t) => be.mvue24(t, 1, 0),
    (be, t) => be.flipCount(be.full([1, 4]), t),
    (be, t) => be.maskedDecay(be.full([1, 4]), be.full([1, 4]), t, 0.1),
    (be, t) => be.pruneNM(t, 2, 4).mask,
  ];
  for (const op of ops) {
    const mine = message(await cpu(), op), theirs = message(ref, op);
    if (!mine.startsWith("RangeError") || mine !== theirs) {
      throw new Error(`errors differ: "${mine}" vs "${theirs}"`);
    }
  }
});

Deno.test("AdamW, four steps in place (a fused gradient scale at 3, the variance frozen after 2): exact", async () => {
  for (const n of [37, 1 << 15]) await adamwExact(n); // 2^15 (weight 4) splits with the helper
});

async function adamwExact(n: number): Promise<void> {
  const p0 = random(n, 25), g = random(n, 26);
  const run = async (be: Backend) => {
    const p = be.keep(be.tensor(p0, [n])), m = be.keep(be.full([n])), v = be.keep(be.full([n]));
    for (let step = 1; step <= 4; step++) {
      const grad = be.tensor(g.map((x) => x * step), [n]);
      be.adamw(p, grad, m, v, {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.1,
        step,
        ...(step === 3 ? { gradScale: 0.3 } : {}),
        varianceFrozenAt: step > 2 ? 2 : undefined,
      });
      be.release();
    }
    const out = await be.readMany([p, m, v]);
    [p, m, v].forEach((t) => be.dispose(t));
    return out;
  };
  const [c, r] = [await run(await cpu()), await run(ref)];
  c.forEach((values, i) => assertEqualArrays(values, r[i], `adamw output ${i} (n = ${n})`));
}

Deno.test("adamwMany: one pass over several tensors split with the helper across their boundaries; a failing update throws after the earlier ones, as the reference", async () => {
  const sizes = [37, 1 << 14, 5000, 1 << 15];
  const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
  const run = async (be: Backend, failing: boolean) => {
    const state = sizes.map((n, k) => ({
      param: be.tensor(random(n, 60 + k), [n]),
      grad: be.tensor(random(n, 70 + k), [n]),
      m: be.full([n]),
      v: be.full([n]),
      hp,
    }));
    // A gradient of the wrong shape in the third update when `failing`.
    if (failing) state[2].grad = be.full([3]);
    let error = "none";
    try {
      be.adamwMany(state);
    } catch (e) {
      error = String(e);
    }
    const out = await be.readMany(state.flatMap((u) => [u.param, u.m, u.v]));
    be.release();
    return { error, out };
  };
  for (const failing of [false, true]) {
    const [c, r] = [await run(await cpu(), failing), await run(ref, failing)];
    if (c.error !== r.error) throw new Error(`errors differ: "${c.error}" vs "${r.error}"`);
    c.out.forEach((v, i) => assertEqualArrays(v, r.out[i], `adamwMany output ${i}`));
  }
});

Deno.test("AdamW and scaleClipped with a GradClip: exact (SPEC §4)", async () => {
  await compare("clipped adamw", [f(random(41, 27), [41]), f(random(41, 28), [41])], clippedAdamW);
});

// ---- memory -------------------------------------------------------------------------------------

Deno.test("memory: released and foreign tensors throw; kept ones survive; views share", async () => {
  const be = await cpu();
  const kept = be.keep(be.tensor(Float32Array.of(1, 2, 3, 4), [2, 2]));
  const temp = be.full([2, 2], 5), view = be.reshape(temp, [4]);
  be.release();
  assertEqualArrays(await be.read(kept), Float32Array.of(1, 2, 3, 4), "kept tensor");
  assertThrows(() => be.add(temp, kept), Error, "Cannot use a released tensor");
  assertThrows(() => be.scale(view, 2), Error, "Cannot use a released tensor");
  const foreign = ref.tensor(Float32Array.of(1), [1]);
  assertThrows(() => be.scale(foreign, 2), TypeError, "expected a tensor of a CpuBackend");
  be.dispose(kept);
  assertThrows(() => be.scale(kept, 2), Error, "Cannot use a released tensor");
  if (be.temporaryCount !== 0) throw new Error(`${be.temporaryCount} temporaries left`);
  ref.release();
});

// ---- fallback -----------------------------------------------------------------------------------

Deno.test("--backend=auto without the BLAS library falls back and says why; --backend=cpu fails", async () => {
  const { selectBackend } = await import("../experiments/lm.ts");
  const saved = Deno.env.get("TWOFOUR_BLAS");
  const log = console.log, lines: string[] = [];
  Deno.env.set("TWOFOUR_BLAS", "/nonexistent/libopenblas.so.0");
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    const be = await selectBackend("auto");
    if (be.name === "cpu") throw new Error("auto chose the CPU backend without its library");
    (be as { destroy?: () => void }).destroy?.();
    const said = lines.join("\n");
    for (const part of [`auto chose ${be.name}`, "cpu: no BLAS library found", "/nonexistent"]) {
      if (!said.includes(part)) throw new Error(`the message lacks "${part}": ${said}`);
    }
    let error: unknown;
    await selectBackend("cpu").catch((e) => error = e);
    if (!(error instanceof CpuBackendUnavailableError)) throw new Error(`got ${error}`);
  } finally {
    console.log = log;
    if (saved === undefined) Deno.env.delete("TWOFOUR_BLAS");
    else Deno.env.set("TWOFOUR_BLAS", saved);
  }
});
