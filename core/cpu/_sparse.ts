/**
 * Allocation-free CPU versions of two `reference/` oracles that dominate a sparse training step
 * when run through the oracle (`quantizeFp8`, `mvue24`: per-element objects and arrays), with the
 * oracles' float32 operation sequences, so their results are bit for bit the oracles' (checked in
 * `tests/cpu_backend_test.ts`), through the WebAssembly kernels of `_sparse_wasm_source.ts` (same
 * operations, same bits) where the runtime has WebAssembly SIMD, else these scalar loops. Inputs
 * are validated by the caller. Private to `core/cpu/`.
 *
 * @module
 */

import { FP8_MAX, type Fp8Format } from "../../reference/fp8.ts";
import { assertMvueInput, MVUE_EPSILON, MVUE_MAX_GROUP_SUM } from "../../reference/mvue.ts";
import { assertFinite } from "../../reference/matrix.ts";
import {
  PHILOX_M0 as M0,
  PHILOX_M1 as M1,
  PHILOX_W0 as W0,
  PHILOX_W1 as W1,
  uniform4,
} from "../../reference/rng.ts";
import { simdKernels, type WasmExp } from "./_exp_wasm.ts";

const f = Math.fround;
const FP8_ACTION = "quantize to FP8";
const FLOAT32_MAX = 3.4028234663852886e38;
/** Adding and subtracting 2^52 rounds a double in `[0, 2^51)` to the nearest integer, ties to even. */
const RNE_SHIFT = 2 ** 52;
const F32_BITS = new Float32Array(1), U32_BITS = new Uint32Array(F32_BITS.buffer);
/** `2^k` for k = −160..160 (`Math.pow` per element would dominate the quantiser). */
const POW2_OFFSET = 160;
const POW2 = Float64Array.from({ length: 2 * POW2_OFFSET + 1 }, (_, i) => 2 ** (i - POW2_OFFSET));
/** Mantissa bits and smallest normal exponent per format (`reference/fp8.ts`). */
const FP8: Record<Fp8Format, { m: number; minExponent: number }> = {
  e4m3: { m: 3, minExponent: -6 },
  e5m2: { m: 2, minExponent: -14 },
};

/**
 * FP8 quantise–dequantise with per-tensor amax scaling into `out` (as `reference/fp8.ts`:
 * `s = f32(max/amax)`, `y = f32(x·s)`, `q` = `y` rounded to the FP8 grid, ties to even,
 * saturating at ±max, `out = f32(q/s)`), through `kernels` unless null. Throws the oracle's
 * `RangeError` for a value that is not finite (naming its row and column in rows of `cols`).
 */
export function quantizeFp8Into(
  x: Float32Array,
  cols: number,
  format: Fp8Format,
  out: Float32Array,
  kernels: WasmExp | null = simdKernels(),
): void {
  const { m, minExponent } = FP8[format], max = FP8_MAX[format];
  let amax = 0;
  if (kernels) amax = kernels.absMax(x);
  else for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
  // NaN or ±Infinity somewhere (the maxima propagate NaN): the oracle's error, rows of `cols`.
  if (!Number.isFinite(amax)) assertFinite({ rows: x.length / cols, cols, data: x }, FP8_ACTION);
  const scale = amax === 0 ? 1 : Math.min(f(max / amax), FLOAT32_MAX);
  if (kernels) return kernels.quantizeFp8(x, out, scale, { max, m, minExponent });
  for (let i = 0; i < x.length; i++) {
    const y = f(x[i] * scale), a = Math.abs(y);
    let q: number;
    if (a >= max) q = max;
    else {
      // The binade of the float32 `a` from its exponent bits (subnormal `a` clamps below anyway).
      F32_BITS[0] = a;
      const e = Math.max(((U32_BITS[0] >>> 23) & 0xff) - 127, minExponent);
      // Scaling by powers of two is exact, so a·2^(m−e) is the oracle's a / 2^(e−m).
      q = ((a * POW2[POW2_OFFSET + m - e] + RNE_SHIFT) - RNE_SHIFT) * POW2[POW2_OFFSET + e - m];
    }
    out[i] = (y < 0 || (y === 0 && 1 / y < 0) ? -q : q) / scale;
  }
}

/**
 * MVUE 2:4 along rows of `[rows, cols]` into `out`, elements `[start, end)` (whole groups), step by
 * step as `reference/mvue.ts` (its float32 sums, divisions and picks; uniforms
 * `uniform4(seed, stream, group)` from an allocation-free Philox), through `kernels` unless null.
 * Every group draws from its own counter, so ranges may run on different threads with the same
 * result. Throws the oracle's `RangeError`s, in its order: a value that is not finite (anywhere in
 * `x`), the seed or stream, then a group whose magnitude sum exceeds 2^126.
 */
export function mvue24Range(
  x: Float32Array,
  cols: number,
  seed: number,
  stream: number,
  out: Float32Array,
  action: string,
  start: number,
  end: number,
  kernels: WasmExp | null = simdKernels(),
): void {
  // An invalid seed or stream makes an unused key here: its error is thrown below.
  const k0 = seed % TWO_POW_32, k1 = Math.floor(seed / TWO_POW_32);
  const bad = kernels
    ? kernels.mvue24(x, out, { stream, k0, k1 }, start / 4, end / 4)
    : mvue24Scalar(x, out, { stream, k0, k1 }, start, end);
  // NaN or ±Infinity make their group's sum fail too: the oracle checks them first.
  if (bad >= 0) assertFinite({ rows: x.length / cols, cols, data: x }, action, "gradients");
  uniform4(seed, stream, 0); // the oracle's seed and stream checks
  if (bad < 0) return;
  // The oracle's own check names the first group whose sum fails (group `bad`).
  assertMvueInput({ rows: x.length / cols, cols, data: x }, action);
  throw new Error(`Cannot ${action}: group ${bad} failed its sum here but not in the oracle`);
}

/** {@linkcode mvue24Range}'s scalar loop; returns −1, or the first group whose sum fails. */
function mvue24Scalar(
  x: Float32Array,
  out: Float32Array,
  key: { stream: number; k0: number; k1: number },
  start: number,
  end: number,
): number {
  const { stream, k0, k1 } = key;
  out.fill(0, start, end);
  for (let o = start; o < end; o += 4) {
    philoxUniforms01(o / 4, stream, k0, k1);
    const a0 = f(Math.abs(x[o]) + MVUE_EPSILON), a1 = f(Math.abs(x[o + 1]) + MVUE_EPSILON);
    const a2 = f(Math.abs(x[o + 2]) + MVUE_EPSILON), a3 = f(Math.abs(x[o + 3]) + MVUE_EPSILON);
    const sum = f(f(f(a0 + a1) + a2) + a3);
    if (!(sum <= MVUE_MAX_GROUP_SUM)) return o / 4;
    const t0 = f(a0 / sum), t1 = f(a1 / sum), t2 = f(a2 / sum), t3 = f(a3 / sum);
    // R_i: the sum of the other three in ascending index order.
    const r0 = f(f(a1 + a2) + a3), r1 = f(f(a0 + a2) + a3);
    const r2 = f(f(a0 + a1) + a3), r3 = f(f(a0 + a1) + a2);
    const u0 = PHILOX_OUT[0], u1 = PHILOX_OUT[1];
    // First pick: inclusive inverse CDF, lowest index first; fallback 3.
    let c = t0, first = 3;
    if (u0 <= c) first = 0;
    else if (u0 <= (c = f(c + t1))) first = 1;
    else if (u0 <= (c = f(c + t2))) first = 2;
    else if (u0 <= f(c + t3)) first = 3;
    // Second pick among the other three with probabilities a_j / R_first; fallback: the last.
    const rf = first === 0 ? r0 : first === 1 ? r1 : first === 2 ? r2 : r3;
    let second = first === 3 ? 2 : 3;
    c = 0;
    for (let j = 0; j < 4; j++) {
      if (j === first) continue;
      const aj = j === 0 ? a0 : j === 1 ? a1 : j === 2 ? a2 : a3;
      c = f(c + f(aj / rf));
      if (u1 <= c) {
        second = j;
        break;
      }
    }
    // x_k / p_k, p_k = t_k + a_k · Σ_{i≠k} t_i / R_i.
    const q0 = f(t0 / r0), q1 = f(t1 / r1), q2 = f(t2 / r2), q3 = f(t3 / r3);
    for (let pick = 0; pick < 2; pick++) {
      const k = pick === 0 ? first : second;
      let s = 0;
      if (k !== 0) s = f(s + q0);
      if (k !== 1) s = f(s + q1);
      if (k !== 2) s = f(s + q2);
      if (k !== 3) s = f(s + q3);
      const ak = k === 0 ? a0 : k === 1 ? a1 : k === 2 ? a2 : a3;
      const tk = k === 0 ? t0 : k === 1 ? t1 : k === 2 ? t2 : t3;
      out[o + k] = f(x[o + k] / f(tk + f(ak * s)));
    }
  }
  return -1;
}

// ---- Philox4x32-10 (reference/rng.ts), without allocations ------------------------------------

const TWO_POW_32 = 4294967296, TWO_POW_M16 = 1 / 65536, TWO_POW_M23 = 1.1920928955078125e-7;
// The multipliers' 16-bit halves: a·half < 2^48 is exact in a double, so the high word of a·M is
// ⌊(a·M_hi + ⌊a·M_lo / 2^16⌋) / 2^16⌋ with no rounding (the reference splits both factors).
const M0_HI = M0 >>> 16, M0_LO = M0 & 0xffff, M1_HI = M1 >>> 16, M1_LO = M1 & 0xffff;
/** The first two uniforms of the last block drawn by {@linkcode philoxUniforms01}. */
const PHILOX_OUT = new Float64Array(2);

/**
 * Words 0 and 1 of Philox4x32-10 at counter `(index, stream, 0, 0)` under key `(k0, k1)`, as the
 * uniforms `((w >>> 9) + 0.5)·2^-23` of `uniform4` (into `PHILOX_OUT`).
 */
function philoxUniforms01(index: number, stream: number, k0: number, k1: number): void {
  // Round 0 with c2 = c3 = 0 (the product of c2 is 0), rounds 1..8 in full, and of round 9 only
  // words 0 and 1: the same words as the full rounds.
  let hi0 = Math.floor((index * M0_HI + Math.floor(index * M0_LO * TWO_POW_M16)) * TWO_POW_M16);
  let c0 = (stream ^ k0) >>> 0, c1 = 0, c2 = (hi0 ^ k1) >>> 0, c3 = Math.imul(M0, index) >>> 0;
  for (let round = 1; round < 9; round++) {
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
    hi0 = Math.floor((c0 * M0_HI + Math.floor(c0 * M0_LO * TWO_POW_M16)) * TWO_POW_M16);
    const hi1 = Math.floor((c2 * M1_HI + Math.floor(c2 * M1_LO * TWO_POW_M16)) * TWO_POW_M16);
    const lo0 = Math.imul(M0, c0) >>> 0, lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  k0 = (k0 + W0) >>> 0;
  const hi1 = Math.floor((c2 * M1_HI + Math.floor(c2 * M1_LO * TWO_POW_M16)) * TWO_POW_M16);
  PHILOX_OUT[0] = ((((hi1 ^ c1 ^ k0) >>> 0) >>> 9) + 0.5) * TWO_POW_M23;
  PHILOX_OUT[1] = (((Math.imul(M1, c2) >>> 0) >>> 9) + 0.5) * TWO_POW_M23;
}
