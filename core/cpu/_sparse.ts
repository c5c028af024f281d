/**
 * Allocation-free CPU versions of two `reference/` oracles that dominate a sparse training step
 * when run through the oracle (`quantizeFp8`, `mvue24`: per-element objects and arrays), with the
 * oracles' float32 operation sequences, so their results are bit for bit the oracles' (checked in
 * `tests/cpu_backend_test.ts`). Inputs are validated by the caller. Private to `core/cpu/`.
 *
 * @module
 */

import { FP8_MAX, type Fp8Format } from "../../reference/fp8.ts";
import { MVUE_EPSILON, MVUE_MAX_GROUP_SUM } from "../../reference/mvue.ts";
import { uniforms } from "../../reference/rng.ts";

const f = Math.fround;
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
 * saturating at ±max, `out = f32(q/s)`).
 */
export function quantizeFp8Into(x: Float32Array, format: Fp8Format, out: Float32Array): void {
  const { m, minExponent } = FP8[format], max = FP8_MAX[format];
  let amax = 0;
  for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
  const scale = amax === 0 ? 1 : Math.min(f(max / amax), FLOAT32_MAX);
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
 * MVUE 2:4 along rows of `[rows, cols]` into `out`, step by step as `reference/mvue.ts` (its
 * float32 sums, divisions and picks; uniforms `uniform4(seed, stream, group)`, drawn in bulk).
 * Throws the oracle's `RangeError` for a group whose magnitude sum exceeds 2^126.
 */
export function mvue24Into(
  x: Float32Array,
  cols: number,
  seed: number,
  stream: number,
  out: Float32Array,
  action: string,
): void {
  const u = uniforms(seed, stream, x.length);
  out.fill(0);
  for (let o = 0; o < x.length; o += 4) {
    const a0 = f(Math.abs(x[o]) + MVUE_EPSILON), a1 = f(Math.abs(x[o + 1]) + MVUE_EPSILON);
    const a2 = f(Math.abs(x[o + 2]) + MVUE_EPSILON), a3 = f(Math.abs(x[o + 3]) + MVUE_EPSILON);
    const sum = f(f(f(a0 + a1) + a2) + a3);
    if (!(sum <= MVUE_MAX_GROUP_SUM)) {
      const r = Math.floor(o / cols), c = o % cols;
      throw new RangeError(
        `Cannot ${action}: the float32 magnitude sum of the group at row ${r}, columns ${c}..${
          c + 3
        } must be at most 2^126, got ${sum}`,
      );
    }
    const t0 = f(a0 / sum), t1 = f(a1 / sum), t2 = f(a2 / sum), t3 = f(a3 / sum);
    // R_i: the sum of the other three in ascending index order.
    const r0 = f(f(a1 + a2) + a3), r1 = f(f(a0 + a2) + a3);
    const r2 = f(f(a0 + a1) + a3), r3 = f(f(a0 + a1) + a2);
    const u0 = u[o], u1 = u[o + 1];
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
}
