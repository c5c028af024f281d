/**
 * FP8 simulation (SPEC §2.9): the OCP OFP8 v1.0 formats E4M3 (E4M3FN) and E5M2, and the per-tensor
 * amax quantise-dequantise that S-STE applies before each GEMM. The format constants and the
 * encoding decisions (saturation, ±Inf, NaN, float32 order) are in SPEC §2.9.
 *
 * @module
 */

import type { Matrix } from "./matrix.ts";
import { assertFp8Format, assertQuantizeFp8Args } from "./checks.ts";

/** The name of an FP8 format: `"e4m3"` (OCP E4M3FN, forward operands) or `"e5m2"` (gradients). */
export type Fp8Format = "e4m3" | "e5m2";

/** The largest finite value of each FP8 format (`FMT_MAX` of SPEC §2.9). */
export const FP8_MAX: Readonly<Record<Fp8Format, number>> = Object.freeze({
  e4m3: 448,
  e5m2: 57344,
});

/** The largest finite float32 value. */
const FLOAT32_MAX = 3.4028234663852886e38;

interface FormatInfo {
  mantissaBits: number;
  /** Unbiased exponent of the smallest normal value, `1 − bias`. */
  minExponent: number;
  bias: number;
  max: number;
  /** The code of the largest finite positive value. */
  maxCode: number;
  hasInfinity: boolean;
}

const FORMATS: Record<Fp8Format, FormatInfo> = {
  e4m3: { mantissaBits: 3, minExponent: -6, bias: 7, max: 448, maxCode: 0x7e, hasInfinity: false },
  e5m2: {
    mantissaBits: 2,
    minExponent: -14,
    bias: 15,
    max: 57344,
    maxCode: 0x7b,
    hasInfinity: true,
  },
};

/** The code `encodeFp8` returns for NaN, in both formats. */
const NAN_CODE = 0x7f;

function formatInfo(format: Fp8Format, action: string): FormatInfo {
  assertFp8Format(format, action);
  return FORMATS[format];
}

/** Rounds a non-negative number to the nearest integer, ties to even. */
function roundHalfEven(n: number): number {
  const floor = Math.floor(n);
  const diff = n - floor; // exact: n < 2^53
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** `floor(log2(a))` for a finite `a > 0`, exact (Math.log2 can be off by one near powers of 2). */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  return e;
}

/**
 * Encodes a number as an FP8 code: rounds the exact value of `x` to the nearest value of the
 * format's grid (subnormals included), ties to the even mantissa (the even code).
 *
 * Decisions where OCP leaves a choice:
 * - **Saturation**: a finite `x` with `|x|` above the largest finite value gives `±max` (`0x7E` /
 *   `0xFE` for E4M3, `0x7B` / `0xFB` for E5M2), whatever the distance: the quantiser's rule.
 * - **Infinities**: E5M2 encodes `±Inf` as `0x7C` / `0xFC`. E4M3 has no infinity: `±Inf` gives
 *   NaN, `0x7F` / `0xFF` (as PyTorch's `float8_e4m3fn` cast does).
 * - **NaN** gives `0x7F` in both formats.
 * - **Signed zero**: `-0`, and a negative value that rounds to zero, give `0x80`.
 *
 * With these rules `encodeFp8(decodeFp8(c, f), f) === c` for every code `c` that is not NaN.
 *
 * @param x The value (any float64; not rounded to float32 first).
 * @param format `"e4m3"` or `"e5m2"`.
 * @returns The code, an integer in `[0, 255]`: bit 7 the sign, then exponent, then mantissa.
 * @throws {TypeError} If `format` is unknown or `x` is not a number.
 * @example
 * ```ts
 * import { decodeFp8, encodeFp8 } from "./fp8.ts";
 * // SPEC §9: 2.7 → 2.75 in E4M3, 2.5 in E5M2.
 * if (decodeFp8(encodeFp8(2.7, "e4m3"), "e4m3") !== 2.75) throw new Error("e4m3");
 * if (decodeFp8(encodeFp8(2.7, "e5m2"), "e5m2") !== 2.5) throw new Error("e5m2");
 * ```
 */
export function encodeFp8(x: number, format: Fp8Format): number {
  const action = "encode FP8";
  const info = formatInfo(format, action);
  if (typeof x !== "number") {
    throw new TypeError(`Cannot ${action}: the value must be a number, got ${typeof x} ${x}`);
  }
  if (Number.isNaN(x)) return NAN_CODE;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | (info.hasInfinity ? 0x7c : NAN_CODE);
  if (a > info.max) return sign | info.maxCode;
  if (a === 0) return sign;
  const implicit = 2 ** info.mantissaBits;
  let e = Math.max(exponentOf(a), info.minExponent);
  // Multiples of the grid step 2^(e − mantissaBits); the division by a power of two is exact.
  let n = roundHalfEven(a / 2 ** (e - info.mantissaBits));
  if (n === 2 * implicit) {
    // Rounded up to the next binade.
    n = implicit;
    e++;
  }
  if (n < implicit) return sign | n; // subnormal (or zero): exponent field 0
  // n·2^(e − mantissaBits) ≤ max because max is on the grid and a ≤ max.
  return sign | ((e + info.bias) << info.mantissaBits) | (n - implicit);
}

/**
 * Decodes an FP8 code to its value: `(−1)^S · 2^(E − bias) · (1 + M / 2^m)` for a nonzero
 * exponent field `E`, `(−1)^S · 2^(1 − bias) · M / 2^m` for subnormals (`E = 0`); E4M3 `S.1111.111`
 * is NaN; E5M2 exponent field 31 is `±Inf` (mantissa 0) or NaN.
 *
 * @param code An integer in `[0, 255]`.
 * @param format `"e4m3"` or `"e5m2"`.
 * @returns The value (exact in float32), `-0` for `0x80`, NaN for NaN codes.
 * @throws {TypeError} If `format` is unknown.
 * @throws {RangeError} If `code` is not an integer in `[0, 255]`.
 * @example
 * ```ts
 * import { decodeFp8 } from "./fp8.ts";
 * if (decodeFp8(0x7e, "e4m3") !== 448 || decodeFp8(0x7b, "e5m2") !== 57344) {
 *   throw new Error("unexpected max");
 * }
 * if (decodeFp8(0x7c, "e5m2") !== Infinity || !Number.isNaN(decodeFp8(0x7f, "e4m3"))) {
 *   throw new Error("unexpected specials");
 * }
 * ```
 */
export function decodeFp8(code: number, format: Fp8Format): number {
  const action = "decode FP8";
  const info = formatInfo(format, action);
  if (!Number.isInteger(code) || code < 0 || code > 255) {
    throw new RangeError(`Cannot ${action}: the code must be an integer in [0, 255], got ${code}`);
  }
  const sign = code & 0x80 ? -1 : 1;
  const m = info.mantissaBits;
  const exponentField = (code & 0x7f) >> m;
  const mantissa = code & ((1 << m) - 1);
  const implicit = 2 ** m;
  if (info.hasInfinity && exponentField === 31) return mantissa === 0 ? sign * Infinity : NaN;
  if (!info.hasInfinity && (code & 0x7f) === 0x7f) return NaN;
  if (exponentField === 0) return sign * mantissa * 2 ** (info.minExponent - m);
  return sign * (implicit + mantissa) * 2 ** (exponentField - info.bias - m);
}

/** Options of {@linkcode quantizeFp8}. */
export interface QuantizeFp8Options {
  /** The target format: `"e4m3"` (forward operands) or `"e5m2"` (backward operands). */
  format: Fp8Format;
}

/** The result of {@linkcode quantizeFp8}. */
export interface QuantizeFp8Result {
  /** The matrix after quantise-dequantise, same shape, float32. */
  dequantized: Matrix;
  /** The per-tensor scale `s` (a float32 value); the FP8 values are `dequantized · s`. */
  scale: number;
}

/**
 * Per-tensor amax FP8 quantise-dequantise (SPEC §2.9): `s = FMT_MAX / amax|x|`, each entry
 * `x_i` becomes `decode(encode(x_i · s)) / s`, with round-to-nearest-even onto the FP8 grid and
 * saturation at `±FMT_MAX`. The entry of largest magnitude lands on `±FMT_MAX` (up to the rounding
 * of `s`).
 *
 * In float32, in the order SPEC §2.9 fixes (`amax` exact; `s = min(f(FMT_MAX / amax),
 * FLOAT32_MAX)`, or 1 when `amax = 0`; `y = f(x·s)`; `out = f(decode(encode(y)) / s)`), so a
 * float32 GPU kernel doing the same agrees bit for bit.
 *
 * Signs and `-0` are kept. NaN and ±Inf inputs are rejected: NaN has no grid value, and an
 * infinite amax would make the scale 0 and every other entry 0.
 *
 * @param x The matrix to quantise.
 * @param options `{ format }`: `"e4m3"` or `"e5m2"`.
 * @returns The dequantised matrix (fresh) and the scale `s`.
 * @throws {TypeError} If `x` is not a matrix, `options` is not an object, or the format is unknown.
 * @throws {RangeError} If `x` holds NaN or ±Inf (naming the first one's row and column).
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { quantizeFp8 } from "./fp8.ts";
 * const { dequantized, scale } = quantizeFp8(matrix(1, 3, [1, -0.3, 0.01]), { format: "e4m3" });
 * if (scale !== 448 || dequantized.data[0] !== 1) throw new Error("unexpected");
 * // -0.3 · 448 ≈ -134.4 → -128 on the E4M3 grid (step 16 in [128, 256)) → -128 / 448.
 * if (dequantized.data[1] !== Math.fround(-128 / 448)) throw new Error("unexpected");
 * ```
 */
export function quantizeFp8(x: Matrix, options: QuantizeFp8Options): QuantizeFp8Result {
  const action = "quantize to FP8";
  assertQuantizeFp8Args(x, options, action);
  const info = formatInfo(options.format, action);
  const d = x.data;
  let amax = 0;
  for (let i = 0; i < d.length; i++) {
    amax = Math.max(amax, Math.abs(d[i]));
  }
  const scale = amax === 0 ? 1 : Math.min(Math.fround(info.max / amax), FLOAT32_MAX);
  const out = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const y = Math.fround(d[i] * scale);
    const q = decodeFp8(encodeFp8(y, options.format), options.format);
    out[i] = q / scale;
  }
  return { dequantized: { rows: x.rows, cols: x.cols, data: out }, scale };
}
