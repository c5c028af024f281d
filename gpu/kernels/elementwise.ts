/**
 * Element-wise kernels: `add`, `addScaled`, `mul`, `scale`, `fill`, exact-erf GELU and its
 * backward pass, and inverted dropout drawn from the project's Philox generator.
 *
 * **GELU accuracy.** WGSL has no `erf`, so the kernels carry W. J. Cody's rational Chebyshev
 * approximations of `erfc` (Math. Comp. 23 (1969) 631–637; the coefficients of his SPECFUN routine
 * CALERF, the same the reference backend evaluates in float64), evaluated in float32:
 * `erf` as a rational function of `x²` for `|x| ≤ 0.46875`, `erfc` as `exp(−x²)·R(|x|)` up to 4 and
 * `exp(−x²)/|x|·(1/√π − R(1/x²))` beyond, with `exp(−x²)` split as
 * `exp(−t²)·exp(−(x − t)(x + t))`, `t = ⌊16x⌋/16`, so that `t²` is exact and the rounding of `x²`
 * does not reach the exponent. The approximations themselves are accurate to about 1e-16; in
 * float32 the result carries the rounding of some twenty operations plus the error of the
 * device's `exp` (WGSL allows `3 + 2·|x|` ULP), so `GELU(x) = ½·x·erfc(−x/√2)` is accurate to a
 * few 1e-7 relative over the range where it matters, and keeps relative accuracy in the negative
 * tail (unlike `1 + erf`, which cancels). Abramowitz–Stegun 7.1.26 (absolute error 1.5e-7) was
 * rejected because that absolute error becomes a large relative error of GELU for `x < −3`.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { dispatchNew } from "./_dispatch.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { cachedSpec } from "./_sparse.ts";
import { PHILOX_WGSL, philoxDrawsWgsl, philoxKey } from "./rng.ts";

/** Binary element-wise operations: `out = f(a, b, s)`. */
export type BinaryOp = "add" | "addScaled" | "mul" | "geluBackward";
/** Unary element-wise operations: `out = f(a, s)`. */
export type UnaryOp = "scale" | "gelu";

/**
 * WGSL of `k` Horner steps of a rational approximation: for `i < k`,
 * `num = (num + P[i]) * v; den = (den + Q[i]) * v;` (written out, so the indices are constants).
 */
function hornerStepsWgsl(p: string, q: string, v: string, k: number): string {
  return Array.from(
    { length: k },
    (_, i) => `    num = (num + ${p}[${i}]) * ${v}; den = (den + ${q}[${i}]) * ${v};`,
  ).join("\n");
}

/** WGSL of `erfc` and the exact GELU with its derivative, in float32 (see the module notes). */
export const GELU_WGSL: string = `
const ERF_A = array<f32, 5>(3.1611237438705656, 113.864154151050156, 377.485237685302021,
  3209.37758913846947, 0.185777706184603153);
const ERF_B = array<f32, 4>(23.6012909523441209, 244.024637934444173, 1282.61652607737228,
  2844.23683343917062);
const ERFC_C = array<f32, 9>(0.564188496988670089, 8.88314979438837594, 66.1191906371416295,
  298.635138197400131, 881.95222124176909, 1712.04761263407058, 2051.07837782607147,
  1230.33935479799725, 2.15311535474403846e-8);
const ERFC_D = array<f32, 8>(15.7449261107098347, 117.693950891312499, 537.181101862009858,
  1621.38957456669019, 3290.79923573345963, 4362.61909014324716, 3439.36767414372164,
  1230.33935480374942);
const ERFC_P = array<f32, 6>(0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
  0.0160837851487422766, 6.58749161529837803e-4, 0.0163153871373020978);
const ERFC_Q = array<f32, 5>(2.56852019228982242, 1.87295284992346047, 0.527905102951428412,
  0.0605183413124413191, 0.00233520497626869185);
const INV_SQRT_PI: f32 = 0.56418958354775628695;
const SQRT1_2: f32 = 0.70710678118654752440;
const INV_SQRT_2PI: f32 = 0.39894228040143267794;

// erfc(x) = 1 - erf(x), Cody's three ranges (loops over constant arrays are unrolled by the
// compiler; indices are compile-time constants after unrolling).
fn erfc_f32(x: f32) -> f32 {
  let y = abs(x);
  if (y <= 0.46875) {
    let z = y * y;
    var num = ERF_A[4] * z;
    var den = z;
${hornerStepsWgsl("ERF_A", "ERF_B", "z", 3)}
    return 1.0 - x * (num + ERF_A[3]) / (den + ERF_B[3]);
  }
  var r: f32;
  if (y <= 4.0) {
    var num = ERFC_C[8] * y;
    var den = y;
${hornerStepsWgsl("ERFC_C", "ERFC_D", "y", 7)}
    r = (num + ERFC_C[7]) / (den + ERFC_D[7]);
  } else if (y >= 10.0) {
    // exp(-y^2) < 4e-44: below the smallest normal float32.
    r = 0.0;
  } else {
    let z = 1.0 / (y * y);
    var num = ERFC_P[5] * z;
    var den = z;
${hornerStepsWgsl("ERFC_P", "ERFC_Q", "z", 4)}
    r = (INV_SQRT_PI - z * (num + ERFC_P[4]) / (den + ERFC_Q[4])) / y;
  }
  if (r != 0.0) {
    let t = trunc(y * 16.0) / 16.0;
    r = r * exp(-t * t) * exp(-(y - t) * (y + t));
  }
  return select(r, 2.0 - r, x < 0.0);
}

// GELU(x) = x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2)); its limit 0 at -Inf.
fn gelu_f32(x: f32) -> f32 {
  if (x < -20.0) { return 0.0; }
  return 0.5 * x * erfc_f32(-x * SQRT1_2);
}

// GELU'(x) = Phi(x) + x * phi(x); limits 0 and 1 at -Inf and +Inf.
fn gelu_grad_f32(x: f32) -> f32 {
  if (x < -20.0) { return 0.0; }
  if (x > 20.0) { return 1.0; }
  return 0.5 * erfc_f32(-x * SQRT1_2) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
}
`;

const BINARY_EXPR: Record<BinaryOp, string> = {
  add: "a[i] + b[i]",
  addScaled: "a[i] + p.s * b[i]",
  mul: "a[i] * b[i]",
  geluBackward: "b[i] * gelu_grad_f32(a[i])",
};

const UNARY_EXPR: Record<UnaryOp, string> = {
  scale: "p.s * a[i]",
  gelu: "gelu_f32(a[i])",
};

/**
 * The kernel of a binary operation. Bindings: `a`, `b`, `out`, uniform `{ count, s }`.
 *
 * @param op The operation (`geluBackward` takes `a = x`, `b = dy`).
 * @returns The kernel, key `ew-{op}`.
 */
export function binarySpec(op: BinaryOp): KernelSpec {
  return cachedSpec(`ew-${op}`, () =>
    `${op === "geluBackward" ? GELU_WGSL : ""}
${
      wgslBindings("count: u32, s: f32", [
        "read a: array<f32>",
        "read b: array<f32>",
        "read_write out: array<f32>",
      ])
    }

${wgslItemMain("i", "p.count")}
  out[i] = ${BINARY_EXPR[op]};
}
`);
}

/**
 * The kernel of a unary operation. Bindings: `a`, `out`, uniform `{ count, s }`.
 *
 * @param op The operation.
 * @returns The kernel, key `ew-{op}`.
 */
export function unarySpec(op: UnaryOp): KernelSpec {
  return cachedSpec(`ew-${op}`, () =>
    `${op === "gelu" ? GELU_WGSL : ""}
${wgslBindings("count: u32, s: f32", ["read a: array<f32>", "read_write out: array<f32>"])}

${wgslItemMain("i", "p.count")}
  out[i] = ${UNARY_EXPR[op]};
}
`);
}

/**
 * The fill kernel: `out[i] = value` (the value's bits are passed as a `u32`, so f32 and i32 fills
 * share it). Bindings: `out`, uniform `{ count, bits }`.
 *
 * @returns The kernel, key `ew-fill`.
 */
export function fillSpec(): KernelSpec {
  return cachedSpec(
    "ew-fill",
    () =>
      `${wgslBindings("count: u32, bits: u32", ["read_write out: array<u32>"])}

${wgslItemMain("i", "p.count")}
  out[i] = p.bits;
}
`,
  );
}

/**
 * The dropout kernel: one thread per Philox draw (four elements). Element `i` is kept iff
 * `uniform4(seed, stream, ⌊i/4⌋)[i % 4] ≥ p`; the host passes the threshold as the smallest
 * uniform of the generator's grid that is `≥ p`, so the float32 comparison decides exactly as the
 * reference's float64 one. Bindings: `x`, `out`, uniform `{ count, stream, key0, key1, threshold,
 * keepScale }`.
 *
 * @returns The kernel, key `ew-dropout`.
 */
export function dropoutSpec(): KernelSpec {
  return cachedSpec("ew-dropout", () =>
    `${PHILOX_WGSL}
${
      wgslBindings(
        "count: u32, stream: u32, key0: u32, key1: u32, threshold: f32, keepScale: f32",
        ["read x: array<f32>", "read_write out: array<f32>"],
      )
    }

${philoxDrawsWgsl("out[i] = select(0.0, x[i] / p.keepScale, u[j] >= p.threshold);")}
`);
}

/**
 * Records a binary element-wise operation over `count` float32 values.
 *
 * @param rt The runtime.
 * @param op The operation.
 * @param a First operand (`x` for `geluBackward`).
 * @param b Second operand (`dy` for `geluBackward`).
 * @param count Number of elements.
 * @param s The scalar of `addScaled` (used as float32; ignored otherwise).
 * @returns A new pooled buffer with the result.
 */
export function encodeBinary(
  rt: GpuRuntime,
  op: BinaryOp,
  a: GPUBuffer,
  b: GPUBuffer,
  count: number,
  s = 0,
): GPUBuffer {
  return dispatchNew(rt, binarySpec(op), [a, b], [4 * count], count, packParams([count], [s]))[0];
}

/**
 * Records a unary element-wise operation over `count` float32 values.
 *
 * @param rt The runtime.
 * @param op The operation.
 * @param a The operand.
 * @param count Number of elements.
 * @param s The scalar of `scale` (used as float32; ignored otherwise).
 * @returns A new pooled buffer with the result.
 */
export function encodeUnary(
  rt: GpuRuntime,
  op: UnaryOp,
  a: GPUBuffer,
  count: number,
  s = 0,
): GPUBuffer {
  return dispatchNew(rt, unarySpec(op), [a], [4 * count], count, packParams([count], [s]))[0];
}

/**
 * Records filling `count` 32-bit words of `out` with `bits`.
 *
 * @param rt The runtime.
 * @param out The buffer to fill.
 * @param count Number of words.
 * @param bits The 32-bit pattern (e.g. a float32's bits).
 */
export function encodeFill(rt: GpuRuntime, out: GPUBuffer, count: number, bits: number): void {
  if (count > 0) rt.dispatch(fillSpec(), [out], grid(count), packParams([count, bits]));
}

/**
 * The dropout threshold: the smallest value of the generator's uniform grid
 * `(2j + 1)·2^-24` that is `≥ p`, so `u ≥ threshold ⇔ u ≥ p` for every uniform `u` the generator
 * can produce.
 *
 * @param p The drop probability in `[0, 1)`.
 * @returns The threshold, exactly representable in float32.
 * @example
 * ```ts
 * import { dropoutThreshold } from "./elementwise.ts";
 * if (dropoutThreshold(0.5) !== 0.5 + 2 ** -24) throw new Error("unexpected");
 * ```
 */
export function dropoutThreshold(p: number): number {
  const j = Math.max(0, Math.ceil((p * 2 ** 24 - 1) / 2));
  return (2 * j + 1) * 2 ** -24;
}

/**
 * Records inverted dropout over `count` float32 values (see {@linkcode dropoutSpec}).
 *
 * @param rt The runtime.
 * @param x The input.
 * @param count Number of elements.
 * @param p Drop probability in `[0, 1)`.
 * @param seed Generator seed, an integer in `[0, 2^53)`.
 * @param stream Generator stream, an integer in `[0, 2^32)`.
 * @returns A new pooled buffer with the result.
 */
export function encodeDropout(
  rt: GpuRuntime,
  x: GPUBuffer,
  count: number,
  p: number,
  seed: number,
  stream: number,
): GPUBuffer {
  const [k0, k1] = philoxKey(seed);
  const params = packParams([count, stream, k0, k1], [dropoutThreshold(p), 1 - p]);
  const quads = Math.ceil(count / 4); // one thread per Philox draw of four values
  return dispatchNew(rt, dropoutSpec(), [x], [4 * count], count, params, grid(quads))[0];
}
