/**
 * GPU-vs-reference parity: every sparse WebGPU kernel (through `GpuKernels`) against its
 * `reference/` oracle on the same inputs — awkward shapes (single rows, 4×4, 12×20, sizes that are
 * not multiples of any workgroup tile), ties, zeros, ±0, ±Inf and subnormals where the reference
 * accepts them, the SPEC §9 hand-derived cases, and one 1024×4096 case per kernel.
 *
 * Comparison rules (the WGSL accuracy facts behind them are in `tests/_float32_rules.ts`;
 * `u = 2^-24`):
 * - exact: masks, pattern indices, compressed metadata, flip counts and rates, Philox uniforms
 *   (integer operations), and every value a kernel only moves — pruned, transposable-masked,
 *   compressed and decompressed values are copied as bits (`u32`), so subnormals pass unchanged.
 * - flush rule (`assertEqualOrFlushed`): exact, except that a GPU `±0` where the reference result
 *   is a float32 subnormal counts as equal, and so does the reference's result with its subnormal
 *   operands read as 0 (WGSL lets a device flush subnormal operands and results; an H100 run
 *   flushed an FP8 result). Used wherever a computed value can be or can come from a subnormal:
 *   the soft threshold `|w| − τ` (one correctly rounded subtraction; magnitudes compared as
 *   integers, so the mask stays exact) and the FP8 dequantised values (`x·s` correctly rounded,
 *   then integer encoding and an exact table division: no WGSL division). The FP8 codes follow
 *   the same rule: exact, or the code of the flushed operand (the zero code) where the operand is
 *   subnormal. Each test prints how many values needed a flush.
 * - MVUE values (`TOL_MVUE`): four dependent WGSL divisions (2.5 ULP each) and possible FMAs:
 *   `rtol = 2e-6`; a flushed subnormal input gives 0 instead of `x/p ≤ 4e-30` (`atol`). Kept
 *   positions are compared exactly (values within `atol` of 0 count as not kept); with Philox
 *   uniforms at most 0.01% of groups may pick a neighbouring position, since a uniform within
 *   float32 noise of a cumulative boundary can go either way once division is inexact.
 * - masked decay (`TOL_DECAY`), gated activations (`TOL_GATED`), the matmuls (`tolMatmul`) and β
 *   (`TOL_BETA`): see each constant. Their `atol`s exceed `2^-126` by far, and β is a ratio of sums
 *   of many normal terms, so a flushed subnormal never decides them.
 *
 * The suite prints the adapter it runs on. With no WebGPU adapter every test fails with the
 * `WebGpuUnavailableError` message (never a skip).
 */

import { assertClose, assertEqualArrays } from "../core/grad_check.ts";
import { type Matrix, matrix } from "../reference/matrix.ts";
import { GpuKernels } from "../gpu/gpu_kernels.ts";
import { gpuTransposablePatterns } from "../gpu/kernels/transposable.ts";
import { GpuRuntime } from "../gpu/runtime.ts";
import { compress24, decompress24 } from "../reference/compress.ts";
import { flipCount, flipRate } from "../reference/flip_rate.ts";
import { decodeFp8, encodeFp8, quantizeFp8 } from "../reference/fp8.ts";
import { geglu, gegluBackward, swiglu, swigluBackward } from "../reference/gated.ts";
import { maskedDecay } from "../reference/masked_decay.ts";
import { mvue24, mvue24Probabilities, mvue24WithUniforms } from "../reference/mvue.ts";
import { prune24, pruneNM } from "../reference/prune.ts";
import { uniforms } from "../reference/rng.ts";
import { softThreshold24, ssteScale } from "../reference/soft_threshold.ts";
import {
  transposableMask24,
  transposablePatternIndices,
  transposablePatterns,
} from "../reference/transposable.ts";
import { assertEqualOrFlushed, isSubnormalF32, mvueKept, TOL_MVUE } from "./_float32_rules.ts";

// ---- tolerances ---------------------------------------------------------------------------------
/**
 * Masked decay: `grad + f32(α)·w` in float32 (product and sum correctly rounded, or one FMA) vs one
 * rounding of the float64 value; a flushed subnormal moves a result by less than `2^-126 ≪ atol`.
 */
const TOL_DECAY = { atol: 1e-8, rtol: 2 ** -22 };
/** β = ⟨W,S⟩/⟨S,S⟩ from float32 tree sums of up to 4M non-negative terms. */
const TOL_BETA = { atol: 0, rtol: 1e-5 };
/**
 * Gated activations on inputs of magnitude ≤ 8: float32 with WGSL's `exp` (error 3 + 2|x| ULP)
 * and the sigmoid's division (2.5 ULP) vs float64 rounded once; where the error relative to the
 * output grows past `rtol` (large negative gates) the outputs are far below `atol`; the GELU
 * derivative cancels near its root, hence the absolute term too.
 */
const TOL_GATED = { atol: 1e-5, rtol: 1e-5 };
/** Float32 matmul with `K` products of terms in [−1, 1] per output, vs a float64 loop. */
const tolMatmul = (k: number) => ({ atol: k * 2 ** -20, rtol: 1e-5 });
// FP8 dequantised values and codes, soft-threshold values: the flush rule (see the module notes).

// ---- runtime ------------------------------------------------------------------------------------
let gpu: GpuKernels | undefined;
let unavailable: unknown;
try {
  gpu = new GpuKernels(await GpuRuntime.create());
  console.log(`gpu_parity: adapter "${gpu.runtime.adapterName}"`);
} catch (e) {
  unavailable = e;
  console.log(`gpu_parity: no WebGPU adapter (${(e as Error).message})`);
}

function gpuTest(name: string, fn: (gpu: GpuKernels) => Promise<void>): void {
  Deno.test(`gpu parity: ${name}`, async () => {
    if (!gpu) throw unavailable;
    await fn(gpu);
  });
}

// ---- inputs -------------------------------------------------------------------------------------
/** Deterministic uniform [0, 1) stream (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rand(), v = rand();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

const SPECIAL_FINITE = [0, -0, 1, -1, 0.5, -0.5, 2, 1e-45, -1e-45, 3e-42, 1e-39, -2.5e-39];
const SPECIAL_INF = [Infinity, -Infinity, 3.4e38, -3.4e38];

/**
 * Half Gaussian values, half drawn from a palette of ties, zeros, subnormals, 1e30 (unless
 * `huge` is false) and ±Inf (if `withInf`).
 */
function mixed(rand: () => number, n: number, withInf: boolean, huge = true): Float32Array {
  const palette = [...SPECIAL_FINITE, ...(huge ? [1e30] : []), ...(withInf ? SPECIAL_INF : [])];
  const g = gaussian(rand, n);
  for (let i = 0; i < n; i++) {
    if (rand() < 0.5) g[i] = palette[Math.floor(rand() * palette.length)];
  }
  return g;
}

/** Small integers: many exact ties. */
function ties(rand: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.floor(rand() * 5) - 2);
}

function mat(rows: number, cols: number, data: Float32Array): Matrix {
  return { rows, cols, data };
}

/** Awkward shapes for row-grouped kernels with group size 4 (none a multiple of a 256 tile). */
const SHAPES_4: [number, number][] = [[1, 4], [1, 12], [4, 4], [12, 20], [37, 44], [3, 1028]];
const LARGE: [number, number] = [1024, 4096];

function transpose(m: Matrix): Matrix {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.cols; c++) out[c * m.rows + r] = m.data[r * m.cols + c];
  }
  return mat(m.cols, m.rows, out);
}

/** Runs both, expects both to throw the same error type and message. */
async function assertSameError(
  label: string,
  reference: () => unknown,
  device: () => Promise<unknown>,
): Promise<void> {
  let refError: Error | undefined, gpuError: Error | undefined;
  try {
    reference();
  } catch (e) {
    refError = e as Error;
  }
  try {
    await device();
  } catch (e) {
    gpuError = e as Error;
  }
  if (!refError) throw new Error(`${label}: the reference did not throw`);
  if (!gpuError) throw new Error(`${label}: the GPU path did not throw (reference: ${refError})`);
  if (gpuError.constructor !== refError.constructor || gpuError.message !== refError.message) {
    throw new Error(`${label}: GPU threw ${gpuError}, reference threw ${refError}`);
  }
}

// ---- RNG ----------------------------------------------------------------------------------------
gpuTest("WGSL Philox uniforms equal reference uniforms bit for bit", async (gpu) => {
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

// ---- hard N:M -----------------------------------------------------------------------------------
gpuTest("pruneNM (1:2, 2:4, 1:4, 2:8, 4:8, 3:5, 1:16) equals the reference", async (gpu) => {
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

const SPEC_HARD_ROWS = [
  [0.1, -3, 2, 0.5],
  [1, 1, 1, 1],
  [0, 0, 0, 0],
  [1, -1, 0.5, 0.5],
  [2, 1, 1, 0],
  [3, -3, 3, -3],
  [1, 2, 3, 4],
  [-1, 2, -3, 4],
  [0.3, -0.3, 300, 1e-3],
];

gpuTest("prune24 reproduces SPEC §9 and the reference, including 1024×4096", async (gpu) => {
  const spec = matrix(SPEC_HARD_ROWS.length, 4, SPEC_HARD_ROWS.flat());
  const got = await gpu.prune24(spec);
  assertEqualArrays(
    got.mask,
    [
      0,
      1,
      1,
      0,
      0,
      0,
      1,
      1,
      0,
      0,
      1,
      1,
      1,
      1,
      0,
      0,
      1,
      0,
      1,
      0,
      0,
      0,
      1,
      1,
      0,
      0,
      1,
      1,
      0,
      0,
      1,
      1,
      0,
      1,
      1,
      0,
    ],
    "SPEC §9 kept positions",
  );
  assertEqualArrays(got.pruned.data, prune24(spec).pruned.data, "SPEC §9 values");
  const rand = random(2);
  for (const [rows, cols] of [...SHAPES_4, LARGE]) {
    const w = mat(rows, cols, mixed(rand, rows * cols, true));
    const want = prune24(w);
    const out = await gpu.prune24(w);
    assertEqualArrays(out.mask, want.mask, `prune24 [${rows}, ${cols}] mask`);
    assertEqualArrays(out.pruned.data, want.pruned.data, `prune24 [${rows}, ${cols}] values`);
  }
});

// ---- soft threshold and β -----------------------------------------------------------------------
gpuTest("softThreshold24 reproduces SPEC §9 and the reference", async (gpu) => {
  const rows = [...SPEC_HARD_ROWS.slice(0, 8), [0, 0, 0, 5]];
  const spec = matrix(rows.length, 4, rows.flat());
  const got = await gpu.softThreshold24(spec);
  assertEqualOrFlushed(
    got.pruned.data,
    [
      0,
      -2.5,
      1.5,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0.5,
      -0.5,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      1,
      2,
      0,
      0,
      -1,
      2,
      0,
      0,
      0,
      5,
    ],
    "SPEC §9 soft threshold",
  );
  assertEqualArrays(got.mask, softThreshold24(spec).mask, "SPEC §9 soft-threshold mask");
  const rand = random(3);
  let flushed = 0, subnormal = 0;
  for (const [r, c] of [...SHAPES_4, LARGE]) {
    for (const data of r * c > 1e5 ? [mixed] : [mixed, ties]) {
      const w = mat(r, c, data(rand, r * c, true));
      const want = softThreshold24(w);
      const out = await gpu.softThreshold24(w);
      const label = `softThreshold24 [${r}, ${c}] ${data.name}`;
      assertEqualArrays(out.mask, want.mask, `${label} mask`);
      flushed += assertEqualOrFlushed(
        out.pruned.data,
        want.pruned.data,
        `${label} values`,
        softThresholdFlushed(w, want.mask),
      );
      subnormal += want.pruned.data.filter(isSubnormalF32).length;
    }
  }
  console.log(
    `  softThreshold24: ${flushed} values flushed (${subnormal} subnormal reference results)`,
  );
});

/**
 * The soft-threshold values a device that flushes subnormal operands and results computes: each
 * kept `|w| − τ` (`mask` and τ as in SPEC §1.2, from the integer magnitudes the kernel compares)
 * with a subnormal `|w|` or `τ` read as 0 and a subnormal difference written as 0, signed like `w`.
 */
function softThresholdFlushed(w: Matrix, mask: Uint8Array): Float32Array {
  const flush = (v: number) => (isSubnormalF32(v) ? 0 : v);
  const out = new Float32Array(w.data.length);
  const d = w.data;
  for (let g = 0; g < d.length; g += 4) {
    const a0 = Math.abs(d[g]), a1 = Math.abs(d[g + 1]), a2 = Math.abs(d[g + 2]);
    const a3 = Math.abs(d[g + 3]);
    const tau = Math.min(
      Math.max(Math.min(a0, a1), Math.min(a2, a3)),
      Math.min(Math.max(a0, a1), Math.max(a2, a3)),
    );
    for (let k = g; k < g + 4; k++) {
      const a = Math.abs(d[k]);
      if (mask[k] === 0 || a === tau) continue;
      const diff = flush(Math.fround(flush(a) - flush(tau)));
      out[k] = d[k] < 0 || Object.is(d[k], -0) ? -diff : diff;
    }
  }
  return out;
}

gpuTest("ssteScale equals the reference (mse, l1, none; SPEC §9 21/17)", async (gpu) => {
  const one = matrix(1, 4, [0.1, -3, 2, 0.5]);
  assertClose([await gpu.ssteScale(one)], [21 / 17], TOL_BETA, "SPEC §9 β");
  if ((await gpu.ssteScale(matrix(3, 8))) !== 1) throw new Error("all-zero S must give β = 1");
  if ((await gpu.ssteScale(matrix(2, 4, [1, 1, 1, 1, 2, 2, 2, 2]))) !== 1) {
    throw new Error("all-equal groups (S = 0) must give β = 1");
  }
  const rand = random(4);
  for (const [r, c] of [[1, 4], [12, 20], [37, 44], LARGE]) {
    const w = mat(r, c, mixed(rand, r * c, false));
    const recipes = r * c > 1e5 ? ["mse"] as const : ["mse", "l1", "none"] as const;
    for (const recipe of recipes) {
      assertClose(
        [await gpu.ssteScale(w, { recipe })],
        [ssteScale(w, { recipe })],
        TOL_BETA,
        `ssteScale ${recipe} [${r}, ${c}]`,
      );
    }
  }
  const g = mat(256, 1024, gaussian(rand, 256 * 1024));
  const beta = await gpu.ssteScale(g);
  if (!(Math.abs(beta - 1.48) < 0.02)) throw new Error(`Gaussian β ${beta}, expected ≈ 1.48`);
});

// ---- transposable -------------------------------------------------------------------------------
Deno.test("gpu parity: the transposable kernel's 90 patterns are the reference's, in order", () => {
  assertEqualArrays(gpuTransposablePatterns(), transposablePatterns(), "pattern words");
});

gpuTest("transposableMask24 reproduces SPEC §9 and the reference exactly", async (gpu) => {
  const block = matrix(4, 4, [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2]);
  const arange = matrix(4, 4, Array.from({ length: 16 }, (_, i) => i + 1));
  // Three blocks side by side: row r of the 4×12 matrix is row r of each block in turn.
  const side = [0, 1, 2, 3].flatMap((r) =>
    [block, arange, matrix(4, 4)].flatMap((b) => Array.from(b.data.subarray(4 * r, 4 * r + 4)))
  );
  const spec = await gpu.transposablePatternIndices(matrix(4, 12, side));
  assertEqualArrays(spec, [54, 0, 0], "SPEC §9 patterns (#54, arange → #0, zeros → #0)");

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

function pick<T>(rand: () => number, values: readonly T[]): T {
  return values[Math.floor(rand() * values.length)];
}

// ---- compressed storage and the sparse matmul ---------------------------------------------------
gpuTest(
  "compress24 / decompress24 equal the reference (SPEC §9 codes 9, 12, 14, 4)",
  async (gpu) => {
    const row = matrix(1, 16, [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2]);
    const c = await gpu.compress24((await gpu.prune24(row)).pruned);
    assertEqualArrays(c.values.data, [-3, 2, 4, 1, -2, 3, -1, 2], "SPEC §9 compressed values");
    assertEqualArrays(c.meta, [9 | (12 << 4) | (14 << 8) | (4 << 12)], "SPEC §9 codes");
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

gpuTest("sparseMatmul equals a float64 loop over the decompressed matrix", async (gpu) => {
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

gpuTest("dense matmul (the sparse baseline) equals a float64 loop", async (gpu) => {
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

function uniformSigned(rand: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * rand() - 1);
}

// ---- MVUE ---------------------------------------------------------------------------------------
gpuTest("mvue24WithUniforms reproduces SPEC §9 and the reference", async (gpu) => {
  const spec = await gpu.mvue24WithUniforms(
    matrix(1, 4, [0.1, -3, 2, 0.5]),
    new Float32Array([0.5, 0.5]),
  );
  assertClose(spec.data, [0, -3.34973, 2.466887, 0], { atol: 1e-5, rtol: 0 }, "SPEC §9 MVUE");
  const rand = random(9);
  for (const [r, c] of [...SHAPES_4, [64, 64]]) {
    const g = mat(r, c, mixed(rand, r * c, false, false));
    const u = Float32Array.from(
      { length: (r * c) / 2 },
      () => (Math.floor(rand() * 2 ** 24) + 0.5) * 2 ** -24,
    );
    assertClose(
      (await gpu.mvue24WithUniforms(g, u)).data,
      mvue24WithUniforms(g, u).data,
      TOL_MVUE,
      `mvue24WithUniforms [${r}, ${c}]`,
    );
  }
});

gpuTest("mvue24 draws the reference's positions on ≥ 99.99% of groups", async (gpu) => {
  const rand = random(10);
  const cases: [number, number, number, number][] = [
    [1, 4, 0, 0],
    [12, 20, 7, 3],
    [37, 44, 2 ** 40 + 1, 0xffffffff],
    [LARGE[0], LARGE[1], 12345, 1],
  ];
  for (const [r, c, seed, stream] of cases) {
    const g = mat(r, c, r * c > 1e5 ? gaussian(rand, r * c) : mixed(rand, r * c, false, false));
    const want = mvue24(g, { seed, stream });
    const got = await gpu.mvue24(g, { seed, stream });
    // Compare kept positions group by group; values only where the positions agree.
    const groups = g.data.length / 4;
    const keptGot = mvueKept(got.data), keptWant = mvueKept(want.data);
    const mismatched: number[] = [];
    const a: number[] = [], b: number[] = [];
    for (let q = 0; q < groups; q++) {
      let same = true;
      for (let k = 4 * q; k < 4 * q + 4; k++) {
        if (keptGot[k] !== keptWant[k]) same = false;
      }
      if (!same) {
        mismatched.push(q);
        continue;
      }
      for (let k = 0; k < 4; k++) {
        a.push(got.data[4 * q + k]);
        b.push(want.data[4 * q + k]);
      }
    }
    console.log(
      `  mvue24 [${r}, ${c}] seed ${seed} stream ${stream}: ${mismatched.length} of ${groups} groups drew other positions`,
    );
    if (mismatched.length > 0) {
      // A mismatch is explained when a uniform lies within float32 rounding of a cumulative
      // boundary of the inclusion probabilities; print the evidence.
      const p = mvue24Probabilities(g);
      for (const q of mismatched.slice(0, 5)) {
        console.log(
          `    group ${q}: x = [${Array.from(g.data.subarray(4 * q, 4 * q + 4))}], p = [${
            Array.from(p.data.subarray(4 * q, 4 * q + 4))
          }], gpu [${Array.from(got.data.subarray(4 * q, 4 * q + 4))}], reference [${
            Array.from(want.data.subarray(4 * q, 4 * q + 4))
          }]`,
        );
      }
    }
    if (mismatched.length > 1e-4 * groups) {
      throw new Error(`mvue24: ${mismatched.length} of ${groups} groups differ (> 0.01%)`);
    }
    assertClose(a, b, TOL_MVUE, `mvue24 [${r}, ${c}] values`);
  }
});

// ---- masked decay, flips ------------------------------------------------------------------------
gpuTest("maskedDecay reproduces SPEC §9 and the reference", async (gpu) => {
  const spec = await gpu.maskedDecay(
    matrix(1, 4, [1, 1, 1, 1]),
    matrix(1, 4, [1, 2, 3, 4]),
    new Uint8Array([1, 0, 1, 0]),
    0.03,
  );
  assertClose(spec.data, [1, 1.06, 1, 1.12], TOL_DECAY, "SPEC §9 masked decay");
  const rand = random(11);
  for (const [r, c] of [[1, 1], [1, 5], [4, 4], [12, 20], [37, 43], LARGE]) {
    const grad = mat(r, c, mixed(rand, r * c, false));
    const w = mat(r, c, mixed(rand, r * c, false));
    const mask = Uint8Array.from({ length: r * c }, () => (rand() < 0.5 ? 1 : 0));
    for (const alpha of r * c > 1e5 ? [6e-5] : [0, 6e-5, 0.03]) {
      assertClose(
        (await gpu.maskedDecay(grad, w, mask, alpha)).data,
        maskedDecay(grad, w, mask, alpha).data,
        TOL_DECAY,
        `maskedDecay [${r}, ${c}] α=${alpha}`,
      );
    }
  }
});

gpuTest("flipCount and flipRate equal the reference", async (gpu) => {
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

// ---- FP8 ----------------------------------------------------------------------------------------
function unpackCodes(words: Uint32Array, n: number): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, n).slice();
}

/** What needed the flush rule so far in the FP8 test (printed at its end). */
type Fp8Flushes = { values: number; codes: number; subnormalResults: number };

/**
 * Quantises `x` on both sides and compares the scale (exact), the dequantised values and the codes
 * (the flush rule, against the reference and against the reference with subnormal entries of `x`
 * read as 0, under the same scale: the device computes the scale from the integer bits).
 */
async function checkFp8(
  gpu: GpuKernels,
  x: Matrix,
  format: "e4m3" | "e5m2",
  label: string,
  flushes: Fp8Flushes,
) {
  const want = quantizeFp8(x, { format });
  const got = await gpu.quantizeFp8(x, { format });
  assertEqualArrays([got.scale], [want.scale], `${label} scale`);
  // The reference on a device that reads subnormal entries of x as 0: only those entries change.
  const flushedValues = Float32Array.from(want.dequantized.data);
  const flushedCodes = new Map<number, number>();
  x.data.forEach((v, i) => {
    if (!isSubnormalF32(v)) return;
    const code = encodeFp8(Math.fround(0 * want.scale), format);
    flushedCodes.set(i, code);
    flushedValues[i] = decodeFp8(code, format) / want.scale;
  });
  flushes.values += assertEqualOrFlushed(
    got.dequantized.data,
    want.dequantized.data,
    `${label} dequantized`,
    flushedValues,
  );
  flushes.subnormalResults += want.dequantized.data.filter(isSubnormalF32).length;
  const { codes, scale } = await gpu.quantizeFp8Codes(x, { format });
  assertEqualArrays([scale], [want.scale], `${label} codes scale`);
  const wantCodes = Array.from(x.data, (v) => encodeFp8(Math.fround(v * want.scale), format));
  // A flushed operand's code is the zero code, of either sign.
  const gotCodes = unpackCodes(codes, x.data.length);
  for (const [i, code] of flushedCodes) {
    if (gotCodes[i] !== wantCodes[i] && (gotCodes[i] & 0x7f) === 0 && (code & 0x7f) === 0) {
      gotCodes[i] = wantCodes[i];
      flushes.codes++;
    }
  }
  assertEqualArrays(gotCodes, wantCodes, `${label} codes`);
}

gpuTest(
  "quantizeFp8: all 256 codes round-trip, values and codes equal the reference",
  async (gpu) => {
    const flushes: Fp8Flushes = { values: 0, codes: 0, subnormalResults: 0 };
    for (const format of ["e4m3", "e5m2"] as const) {
      // Every finite code's value; amax = FMT_MAX, so s = 1 and each value must keep its code.
      const codes = Array.from({ length: 256 }, (_, c) => c).filter((c) =>
        Number.isFinite(decodeFp8(c, format))
      );
      const x = matrix(1, codes.length, codes.map((c) => decodeFp8(c, format)));
      const got = await gpu.quantizeFp8Codes(x, { format });
      if (got.scale !== 1) throw new Error(`${format}: scale ${got.scale}, expected 1`);
      assertEqualArrays(unpackCodes(got.codes, codes.length), codes, `${format} code round trip`);
      // SPEC §9 with s = 1: E4M3 2.7→2.75, 300→288, −0.3→−0.3125; E5M2 2.7→2.5, 300→320.
      const spec = await gpu.quantizeFp8(matrix(1, 4, [2.7, 300, -0.3, FP8_MAXES[format]]), {
        format,
      });
      const expected = format === "e4m3" ? [2.75, 288, -0.3125, 448] : [2.5, 320, -0.3125, 57344];
      assertEqualArrays(spec.dequantized.data, expected, `${format} SPEC §9`);

      const rand = random(format === "e4m3" ? 13 : 14);
      // 1024×4096 for E4M3; E5M2 runs the same kernel text with other constants.
      const big: [number, number] = format === "e4m3" ? LARGE : [256, 1024];
      for (const [r, c] of [[1, 1], [1, 3], [4, 4], [12, 20], [37, 43], big]) {
        for (const scale of r * c > 1e5 ? [0.37] : [1e-3, 1, 1e4]) {
          const x = mat(r, c, gaussian(rand, r * c, scale));
          for (let i = 0; i < Math.min(8, x.data.length); i++) {
            x.data[Math.floor(rand() * x.data.length)] = pick(rand, [0, -0, 1e-40, -3e-42]);
          }
          await checkFp8(gpu, x, format, `${format} [${r}, ${c}] ×${scale}`, flushes);
        }
      }
      await checkFp8(gpu, matrix(2, 3), format, `${format} all zeros (s = 1)`, flushes);
      // amax so small that FMT_MAX / amax overflows: s clamps to the largest float32; the results
      // are subnormal-heavy, which a flushing device may round to zero.
      const tiny = matrix(1, 4, [1e-37, -2e-38, 1e-40, 0]);
      await checkFp8(gpu, tiny, format, `${format} tiny amax`, flushes);
    }
    console.log(
      `  quantizeFp8: ${flushes.values} dequantized values and ${flushes.codes} codes flushed ` +
        `(${flushes.subnormalResults} subnormal reference values)`,
    );
  },
);

const FP8_MAXES = { e4m3: 448, e5m2: 57344 } as const;

// ---- gated activations --------------------------------------------------------------------------
gpuTest("GEGLU/SwiGLU forward and backward equal the reference in both layouts", async (gpu) => {
  const x = matrix(1, 6, [0.5, -1, 2, 0, 1, -2]);
  const ones = matrix(1, 3, [1, 1, 1]);
  assertClose((await gpu.geglu(x)).data, [0, -0.841192, -0.090804], TOL_GATED, "SPEC §9 GEGLU");
  assertClose(
    (await gpu.gegluBackward(x, ones)).data,
    [0, 0.841192, -0.045402, 0.25, -1.082964, -0.172198],
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

// ---- validation ---------------------------------------------------------------------------------
gpuTest("invalid inputs raise the reference's errors", async (gpu) => {
  const nan = matrix(1, 4, [1, NaN, 0, 0]);
  const inf = matrix(1, 4, [1, Infinity, 0, 0]);
  const w = matrix(4, 4, Array.from({ length: 16 }, (_, i) => i - 8));
  const odd = matrix(1, 10);
  const m44 = matrix(1, 4, [1, 2, 3, 0]);
  const cases: [string, () => unknown, () => Promise<unknown>][] = [
    ["prune24 cols", () => prune24(odd), () => gpu.prune24(odd)],
    ["prune24 NaN", () => prune24(nan), () => gpu.prune24(nan)],
    ["pruneNM n > m", () => pruneNM(w, { n: 3, m: 2 }), () => gpu.pruneNM(w, { n: 3, m: 2 })],
    ["pruneNM n = 0", () => pruneNM(w, { n: 0, m: 4 }), () => gpu.pruneNM(w, { n: 0, m: 4 })],
    [
      "pruneNM options",
      () => pruneNM(w, null as unknown as { n: number; m: number }),
      () => gpu.pruneNM(w, null as unknown as { n: number; m: number }),
    ],
    ["softThreshold24 NaN", () => softThreshold24(nan), () => gpu.softThreshold24(nan)],
    ["ssteScale Inf", () => ssteScale(inf), () => gpu.ssteScale(inf)],
    [
      "ssteScale recipe",
      () => ssteScale(w, { recipe: "bogus" as "mse" }),
      () => gpu.ssteScale(w, { recipe: "bogus" as "mse" }),
    ],
    ["transposable rows", () => transposableMask24(odd), () => gpu.transposableMask24(odd)],
    [
      "transposable cols",
      () => transposableMask24(matrix(4, 6)),
      () => gpu.transposableMask24(matrix(4, 6)),
    ],
    ["compress24 three non-zeros", () => compress24(m44), () => gpu.compress24(m44)],
    [
      "decompress24 invalid code",
      () => decompress24({ values: matrix(1, 2), meta: Uint32Array.of(3) }),
      () => gpu.decompress24({ values: matrix(1, 2), meta: Uint32Array.of(3) }),
    ],
    [
      "decompress24 meta length",
      () => decompress24({ values: matrix(1, 2), meta: new Uint32Array(2) }),
      () => gpu.decompress24({ values: matrix(1, 2), meta: new Uint32Array(2) }),
    ],
    [
      "decompress24 unused bits",
      () => decompress24({ values: matrix(1, 2), meta: Uint32Array.of(9 | (9 << 4)) }),
      () => gpu.decompress24({ values: matrix(1, 2), meta: Uint32Array.of(9 | (9 << 4)) }),
    ],
    ["mvue24 Inf", () => mvue24(inf, { seed: 1 }), () => gpu.mvue24(inf, { seed: 1 })],
    ["mvue24 seed", () => mvue24(w, { seed: -1 }), () => gpu.mvue24(w, { seed: -1 })],
    [
      "mvue24 stream",
      () => mvue24(w, { seed: 1, stream: 2 ** 32 }),
      () => gpu.mvue24(w, { seed: 1, stream: 2 ** 32 }),
    ],
    [
      "mvue24 group sum",
      () => mvue24(matrix(1, 4, [3e38, 3e38, 0, 0]), { seed: 1 }),
      () => gpu.mvue24(matrix(1, 4, [3e38, 3e38, 0, 0]), { seed: 1 }),
    ],
    [
      "mvue24WithUniforms zero uniform",
      () => mvue24WithUniforms(m44, new Float32Array([0, 0.5])),
      () => gpu.mvue24WithUniforms(m44, new Float32Array([0, 0.5])),
    ],
    [
      "mvue24WithUniforms length",
      () => mvue24WithUniforms(m44, new Float32Array(3)),
      () => gpu.mvue24WithUniforms(m44, new Float32Array(3)),
    ],
    [
      "maskedDecay shapes",
      () => maskedDecay(w, m44, new Uint8Array(16), 0.1),
      () => gpu.maskedDecay(w, m44, new Uint8Array(16), 0.1),
    ],
    [
      "maskedDecay mask entry",
      () => maskedDecay(m44, m44, Uint8Array.of(0, 2, 0, 1), 0.1),
      () => gpu.maskedDecay(m44, m44, Uint8Array.of(0, 2, 0, 1), 0.1),
    ],
    [
      "maskedDecay alpha",
      () => maskedDecay(m44, m44, new Uint8Array(4), -1),
      () => gpu.maskedDecay(m44, m44, new Uint8Array(4), -1),
    ],
    [
      "maskedDecay Inf",
      () => maskedDecay(inf, m44, new Uint8Array(4), 0.1),
      () => gpu.maskedDecay(inf, m44, new Uint8Array(4), 0.1),
    ],
    [
      "flipCount lengths",
      () => flipCount(new Uint8Array(3), new Uint8Array(4)),
      () => gpu.flipCount(new Uint8Array(3), new Uint8Array(4)),
    ],
    [
      "flipRate empty",
      () => flipRate(new Uint8Array(0), new Uint8Array(0)),
      () => gpu.flipRate(new Uint8Array(0), new Uint8Array(0)),
    ],
    [
      "quantizeFp8 Inf",
      () => quantizeFp8(inf, { format: "e4m3" }),
      () => gpu.quantizeFp8(inf, { format: "e4m3" }),
    ],
    [
      "quantizeFp8 format",
      () => quantizeFp8(w, { format: "e3m4" as "e4m3" }),
      () => gpu.quantizeFp8(w, { format: "e3m4" as "e4m3" }),
    ],
    ["geglu odd", () => geglu(matrix(2, 3)), () => gpu.geglu(matrix(2, 3))],
    ["swiglu Inf", () => swiglu(inf), () => gpu.swiglu(inf)],
    [
      "gegluBackward dy shape",
      () => gegluBackward(w, matrix(4, 3)),
      () => gpu.gegluBackward(w, matrix(4, 3)),
    ],
  ];
  for (const [label, reference, device] of cases) await assertSameError(label, reference, device);
});
