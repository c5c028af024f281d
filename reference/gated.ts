/**
 * Gated activations (SPEC §3): GEGLU and SwiGLU forward and backward on inputs whose rows are
 * `[x | gate]` (Shazeer, "GLU Variants Improve Transformer", arXiv 2002.05202; P1, Hu et al., ICML
 * 2024, fuses GEGLU with the layout of the sparse GEMM). Row-major layout only; each value is
 * computed in float64 and rounded once to float32.
 *
 * @module
 */

import { assertFinite, assertMatrix, type Matrix, matrix } from "./matrix.ts";

/** `√(2/π)`, the GELU tanh-approximation constant. */
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
/** The cubic coefficient of the GELU tanh approximation. */
const GELU_CUBIC = 0.044715;

/** `GELU_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))`. */
function gelu(g: number): number {
  return 0.5 * g * (1 + Math.tanh(SQRT_2_OVER_PI * (g + GELU_CUBIC * g * g * g)));
}

/** `GELU_tanh'(g) = ½(1 + tanh u) + ½·g·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·g²)`. */
function geluDerivative(g: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (g + GELU_CUBIC * g * g * g));
  return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * g * g);
}

function sigmoid(g: number): number {
  return 1 / (1 + Math.exp(-g));
}

/** `SiLU(g) = g·σ(g)`. */
function silu(g: number): number {
  return g * sigmoid(g);
}

/** `SiLU'(g) = σ(g)·(1 + g·(1 − σ(g)))`. */
function siluDerivative(g: number): number {
  const s = sigmoid(g);
  return s * (1 + g * (1 - s));
}

function checkInput(x: Matrix, action: string): number {
  assertMatrix(x, action);
  if (x.cols % 2 !== 0) {
    throw new RangeError(
      `Cannot ${action}: the input row [x | gate] must have an even length, got ${x.cols}`,
    );
  }
  assertFinite(x, action, "the input");
  return x.cols / 2;
}

function checkGradient(x: Matrix, dy: Matrix, h: number, action: string): void {
  assertMatrix(dy, action);
  if (dy.rows !== x.rows || dy.cols !== h) {
    throw new RangeError(
      `Cannot ${action}: the output gradient must have shape [${x.rows}, ${h}], got [${dy.rows}, ${dy.cols}]`,
    );
  }
  assertFinite(dy, action, "the output gradient");
}

function forward(x: Matrix, act: (g: number) => number, action: string): Matrix {
  const h = checkInput(x, action);
  const out = matrix(x.rows, h);
  if (h === 0) return out; // no loop over (up to 2^31) empty rows
  for (let r = 0; r < x.rows; r++) {
    const row = r * x.cols;
    for (let j = 0; j < h; j++) {
      out.data[r * h + j] = x.data[row + j] * act(x.data[row + h + j]);
    }
  }
  return out;
}

function backward(
  x: Matrix,
  dy: Matrix,
  act: (g: number) => number,
  actDerivative: (g: number) => number,
  action: string,
): Matrix {
  const h = checkInput(x, action);
  checkGradient(x, dy, h, action);
  const out = matrix(x.rows, x.cols);
  if (h === 0) return out; // no loop over (up to 2^31) empty rows
  for (let r = 0; r < x.rows; r++) {
    const row = r * x.cols;
    for (let j = 0; j < h; j++) {
      const value = x.data[row + j], gate = x.data[row + h + j], d = dy.data[r * h + j];
      out.data[row + j] = d * act(gate);
      out.data[row + h + j] = d * value * actDerivative(gate);
    }
  }
  return out;
}

/**
 * GEGLU forward (SPEC §3): for an input `[T, 2h]` whose rows are `[x | gate]`,
 * `out = x ⊙ GELU_tanh(gate)` with
 * `GELU_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))`.
 *
 * @param x The input `[T, 2h]`; finite values.
 * @returns The output `[T, h]`, computed in float64 and rounded to float32 (may overflow to
 * `±Inf` for huge inputs; never NaN).
 * @throws {TypeError} If `x` is not a matrix.
 * @throws {RangeError} If `x.cols` is odd or `x` holds NaN or ±Inf (rejected: `GELU(−Inf)` would
 * be `−Inf·0`).
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { geglu } from "./gated.ts";
 * // SPEC §9: [0.5, −1, 2 | 0, 1, −2] → [0, −0.841192, −0.090804].
 * const out = geglu(matrix(1, 6, [0.5, -1, 2, 0, 1, -2]));
 * if (Math.abs(out.data[1] + 0.841192) > 1e-6) throw new Error("unexpected");
 * ```
 */
export function geglu(x: Matrix): Matrix {
  return forward(x, gelu, "apply GEGLU");
}

/**
 * GEGLU backward (SPEC §3): given the input `[T, 2h]` = `[x | gate]` and the output gradient
 * `dy` `[T, h]`, returns `[∂x | ∂gate]` `[T, 2h]` with `∂x = dy ⊙ GELU_tanh(gate)` and
 * `∂gate = dy ⊙ x ⊙ GELU_tanh'(gate)`, where
 * `GELU_tanh'(g) = ½(1 + tanh u) + ½·g·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·g²)`,
 * `u = √(2/π)·(g + 0.044715·g³)`.
 *
 * @param x The forward input `[T, 2h]`; finite values.
 * @param dy The gradient of the output, `[T, h]`; finite values.
 * @returns The input gradient `[T, 2h]`, computed in float64 and rounded to float32.
 * @throws {TypeError} If `x` or `dy` is not a matrix.
 * @throws {RangeError} If `x.cols` is odd, `dy` is not `[T, h]`, or a value is NaN or ±Inf.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { gegluBackward } from "./gated.ts";
 * // SPEC §9 with ∂out = 1: ∂gate[0] = 0.5 · GELU'(0) = 0.25.
 * const g = gegluBackward(matrix(1, 6, [0.5, -1, 2, 0, 1, -2]), matrix(1, 3, [1, 1, 1]));
 * if (g.data[3] !== 0.25) throw new Error("unexpected");
 * ```
 */
export function gegluBackward(x: Matrix, dy: Matrix): Matrix {
  return backward(x, dy, gelu, geluDerivative, "differentiate GEGLU");
}

/**
 * SwiGLU forward (SPEC §3): for an input `[T, 2h]` whose rows are `[x | gate]`,
 * `out = x ⊙ SiLU(gate)` with `SiLU(g) = g·σ(g)`, `σ(g) = 1 / (1 + e^−g)`.
 *
 * @param x The input `[T, 2h]`; finite values.
 * @returns The output `[T, h]`, computed in float64 and rounded to float32.
 * @throws {TypeError} If `x` is not a matrix.
 * @throws {RangeError} If `x.cols` is odd or `x` holds NaN or ±Inf.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { swiglu } from "./gated.ts";
 * const out = swiglu(matrix(1, 2, [3, 0]));
 * if (out.data[0] !== 0) throw new Error("SiLU(0) = 0");
 * ```
 */
export function swiglu(x: Matrix): Matrix {
  return forward(x, silu, "apply SwiGLU");
}

/**
 * SwiGLU backward (SPEC §3): returns `[∂x | ∂gate]` `[T, 2h]` with `∂x = dy ⊙ SiLU(gate)` and
 * `∂gate = dy ⊙ x ⊙ SiLU'(gate)`, `SiLU'(g) = σ(g)·(1 + g·(1 − σ(g)))`.
 *
 * @param x The forward input `[T, 2h]` = `[x | gate]`; finite values.
 * @param dy The gradient of the output, `[T, h]`; finite values.
 * @returns The input gradient `[T, 2h]`, computed in float64 and rounded to float32.
 * @throws {TypeError} If `x` or `dy` is not a matrix.
 * @throws {RangeError} If `x.cols` is odd, `dy` is not `[T, h]`, or a value is NaN or ±Inf.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { swigluBackward } from "./gated.ts";
 * // SiLU'(0) = ½, so ∂gate = dy · x · ½.
 * const g = swigluBackward(matrix(1, 2, [3, 0]), matrix(1, 1, [2]));
 * if (g.data[1] !== 3) throw new Error("unexpected");
 * ```
 */
export function swigluBackward(x: Matrix, dy: Matrix): Matrix {
  return backward(x, dy, silu, siluDerivative, "differentiate SwiGLU");
}
