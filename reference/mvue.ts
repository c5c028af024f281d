/**
 * MVUE 2:4 (SPEC §2.7): the unbiased stochastic 2:4 sparsifier for neural gradients of Chmiel et
 * al., "Minimum Variance Unbiased N:M Sparsity for the Neural Gradients" (ICLR 2023, arXiv
 * 2203.10991), in the sampling form used by Hu et al. (ICML 2024, arXiv 2404.01847) and Hu, Zhu,
 * Chen (NeurIPS 2024, arXiv 2409.09099): two positions of every group of four are drawn by
 * weighted sampling without replacement and rescaled by their inclusion probabilities.
 *
 * @module
 */

import { assertFinite, assertGroupedCols, assertMatrix, type Matrix } from "./matrix.ts";
import { assertMvueUniforms, assertOptionsObject } from "./checks.ts";
import { uniform4 } from "./rng.ts";

/** `ε` of SPEC §2.7 as a float32 value (`Math.fround(1.19209e-7)`). */
export const MVUE_EPSILON: number = Math.fround(1.19209e-7);

/**
 * The largest float32 group sum `S` {@linkcode mvue24} accepts, `2^126`. Up to it every
 * `t_k = a_k / S ≥ ε / S` is a positive float32 value, so every drawn `p_k > 0` and no output is
 * NaN or infinite.
 */
export const MVUE_MAX_GROUP_SUM: number = 2 ** 126;

/** Options of {@linkcode mvue24}. */
export interface Mvue24Options {
  /** The generator seed, an integer in `[0, 2^53)` (see `uniform4` in `./rng.ts`). */
  seed: number;
  /** The generator stream, an integer in `[0, 2^32)`; default `0`. */
  stream?: number;
}

const f = Math.fround;

function checkInput(g: Matrix, action: string): void {
  assertMatrix(g, action);
  assertGroupedCols(g, 4, action);
  assertFinite(g, action, "gradients");
}

/**
 * Writes `a_i = f(|x_i| + ε)` of the group at `o` into `a` and returns `S = f(f(f(a_0 + a_1) + a_2)
 * + a_3)` (steps 1–2 of {@linkcode mvue24}); throws when `S > MVUE_MAX_GROUP_SUM`.
 */
function groupMagnitudes(
  x: Float32Array,
  o: number,
  cols: number,
  action: string,
  a: number[],
): number {
  for (let i = 0; i < 4; i++) a[i] = f(Math.abs(x[o + i]) + MVUE_EPSILON);
  const sum = f(f(f(a[0] + a[1]) + a[2]) + a[3]);
  if (!(sum <= MVUE_MAX_GROUP_SUM)) throw groupSumError(sum, o, cols, action);
  return sum;
}

/** The error for a group whose float32 magnitude sum exceeds 2^126, naming its row and columns. */
function groupSumError(sum: number, o: number, cols: number, action: string): RangeError {
  const r = Math.floor(o / cols), c = o % cols;
  return new RangeError(
    `Cannot ${action}: the float32 magnitude sum of the group at row ${r}, columns ${c}..${
      c + 3
    } must be at most 2^126, got ${sum}`,
  );
}

/**
 * Checks a gradient for MVUE 2:4 up front, as {@linkcode mvue24} does while sampling: a matrix
 * whose row length is a multiple of 4, finite values, and every group's float32 magnitude sum `S`
 * (steps 1–2 of {@linkcode mvue24}) at most {@linkcode MVUE_MAX_GROUP_SUM}. For kernels that run
 * MVUE elsewhere (on a GPU) and must reject the same inputs with the same messages.
 *
 * @param g The gradient matrix.
 * @param action What the caller was doing, for the messages ("Cannot <action>: …").
 * @throws {TypeError} If `g` is not a matrix.
 * @throws {RangeError} If `g.cols % 4 !== 0`, a value is NaN or ±Inf, or a group sum exceeds
 * `2^126` (the message names the first such group's row and columns).
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { assertMvueInput } from "./mvue.ts";
 * assertMvueInput(matrix(1, 4, [0.1, -3, 2, 0.5]), "sample MVUE 2:4"); // passes
 * let message = "";
 * try {
 *   assertMvueInput(matrix(1, 4, [3e38, 3e38, 0, 0]), "sample MVUE 2:4");
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * if (!message.includes("at most 2^126")) throw new Error("expected a rejected group sum");
 * ```
 */
export function assertMvueInput(g: Matrix, action: string): void {
  checkInput(g, action);
  const a = [0, 0, 0, 0];
  for (let o = 0; o < g.data.length; o += 4) groupMagnitudes(g.data, o, g.cols, action, a);
}

/**
 * Sparsifies one group in place: reads `x[o..o+3]`, writes `out[o..o+3]`, with uniforms `u0`,
 * `u1`, in the float32 operation order documented on {@linkcode mvue24}.
 */
function sampleGroup(
  x: Float32Array,
  out: Float32Array,
  o: number,
  u0: number,
  u1: number,
  cols: number,
  action: string,
): void {
  const a = [0, 0, 0, 0];
  const sum = groupMagnitudes(x, o, cols, action, a);
  const t = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) t[i] = f(a[i] / sum);
  // rest[i] = S − a_i, formed as the sum of the other three (no cancellation when a_i dominates).
  const rest = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    let s = 0, first = true;
    for (let j = 0; j < 4; j++) {
      if (j === i) continue;
      s = first ? a[j] : f(s + a[j]);
      first = false;
    }
    rest[i] = s;
  }

  // First pick: inverse CDF over cumulative t, inclusive, lowest index first; fallback: index 3.
  let first = 3;
  let c = 0;
  for (let i = 0; i < 4; i++) {
    c = f(c + t[i]);
    if (u0 <= c) {
      first = i;
      break;
    }
  }
  // Second pick among the other three, probabilities a_j / (S − a_first); fallback: the last one.
  let second = first === 3 ? 2 : 3;
  c = 0;
  for (let j = 0; j < 4; j++) {
    if (j === first) continue;
    c = f(c + f(a[j] / rest[first]));
    if (u1 <= c) {
      second = j;
      break;
    }
  }

  for (let k = 0; k < 4; k++) out[o + k] = 0;
  for (const k of [first, second]) {
    let s = 0;
    for (let i = 0; i < 4; i++) if (i !== k) s = f(s + f(t[i] / rest[i]));
    const p = f(t[k] + f(a[k] * s));
    out[o + k] = f(x[o + k] / p);
  }
}

/**
 * MVUE 2:4 with uniforms from the project's Philox generator (SPEC §2.7): in every group of four
 * consecutive elements of a row, two positions are drawn by weighted sampling without replacement
 * and rescaled by their inclusion probabilities, so `E[out] = g` exactly.
 *
 * Group `q = row · (cols / 4) + col / 4` (row-major group order) uses the uniforms
 * `u0 = uniform4(seed, stream, q)[0]` and `u1 = uniform4(seed, stream, q)[1]`; words 2 and 3 are
 * unused. Equivalent to {@linkcode mvue24WithUniforms} with `uniforms[2q] = u0`,
 * `uniforms[2q + 1] = u1`.
 *
 * Every operation is rounded to float32 in the order SPEC §2.7 fixes (`R_i` formed as the sum of
 * the other three, no fused multiply-add), so a GPU kernel doing the same draws the same positions.
 * Exactly two nonzero positions per group unless an `x_k` is 0; an all-zero group gives zeros.
 *
 * @param g The gradient matrix; `g.cols` must be a multiple of 4; values must be finite.
 * @param options `{ seed, stream }`: the generator key and stream (default stream 0).
 * @returns A fresh matrix of the same shape, 2:4 sparse, an unbiased estimate of `g`.
 * @throws {TypeError} If `g` is not a matrix or `options` is not an object.
 * @throws {RangeError} If `g.cols % 4 !== 0`, a value is NaN or ±Inf (rejected: a non-finite
 * gradient has no finite unbiased estimate), a group's float32 sum `S` exceeds `2^126`, or the
 * seed or stream is out of range.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { mvue24 } from "./mvue.ts";
 * const out = mvue24(matrix(1, 4, [0.1, -3, 2, 0.5]), { seed: 1 });
 * const kept = out.data.filter((v) => v !== 0).length;
 * if (kept !== 2) throw new Error("expected two kept values");
 * ```
 */
export function mvue24(g: Matrix, options: Mvue24Options): Matrix {
  const action = "sample MVUE 2:4";
  assertOptionsObject(options, "{seed, stream}", action);
  const { seed, stream = 0 } = options;
  checkInput(g, action);
  const groups = g.data.length / 4;
  // Validate the seed and stream even for an empty matrix.
  uniform4(seed, stream, 0);
  const out = new Float32Array(g.data.length);
  for (let q = 0; q < groups; q++) {
    const u = uniform4(seed, stream, q);
    sampleGroup(g.data, out, 4 * q, u[0], u[1], g.cols, action);
  }
  return { rows: g.rows, cols: g.cols, data: out };
}

/**
 * MVUE 2:4 with explicit uniforms (SPEC §2.7): group `q = row · (cols / 4) + col / 4` draws with
 * `u0 = uniforms[2q]` and `u1 = uniforms[2q + 1]`. The selection and outputs follow the float32
 * operation order documented on {@linkcode mvue24}.
 *
 * @param g The gradient matrix; `g.cols` must be a multiple of 4; values must be finite.
 * @param uniforms `2 · rows · cols / 4` values, each strictly inside `(0, 1)` (a zero draw could
 * select the same index twice).
 * @returns A fresh matrix of the same shape, 2:4 sparse.
 * @throws {TypeError} If `g` is not a matrix or `uniforms` is not a `Float32Array`.
 * @throws {RangeError} If `g.cols % 4 !== 0`, a value of `g` is not finite, a group sum exceeds
 * `2^126`, `uniforms` has the wrong length, or a uniform is not strictly inside `(0, 1)`.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { mvue24WithUniforms } from "./mvue.ts";
 * // SPEC §9: (u0, u1) = (0.5, 0.5) picks positions 1 and 2.
 * const out = mvue24WithUniforms(matrix(1, 4, [0.1, -3, 2, 0.5]), new Float32Array([0.5, 0.5]));
 * if (out.data[0] !== 0 || out.data[3] !== 0 || Math.abs(out.data[1] + 3.34973) > 1e-5) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function mvue24WithUniforms(g: Matrix, uniforms: Float32Array): Matrix {
  const action = "sample MVUE 2:4";
  checkInput(g, action);
  const groups = g.data.length / 4;
  assertMvueUniforms(uniforms, groups, action);
  const out = new Float32Array(g.data.length);
  for (let q = 0; q < groups; q++) {
    sampleGroup(g.data, out, 4 * q, uniforms[2 * q], uniforms[2 * q + 1], g.cols, action);
  }
  return { rows: g.rows, cols: g.cols, data: out };
}

/**
 * The inclusion probabilities of MVUE 2:4 (SPEC §2.7 step 3): for each group, with
 * `a_i = |x_i| + ε`, `S = Σ a_i`, `t_i = a_i / S`,
 * `p_k = t_k + a_k · Σ_{i≠k} t_i / (S − a_i)`: the probability that position `k` is one of the
 * two drawn. `Σ_k p_k = 2` per group; `p = ½` everywhere for an all-equal group. Computed in
 * float64 (with the same `ε = MVUE_EPSILON`, and `S − a_i` as the sum of the other three), returned
 * rounded to float32.
 *
 * @param g The gradient matrix; `g.cols` must be a multiple of 4; values must be finite.
 * @returns A matrix of the same shape holding `p_k` at every position.
 * @throws {TypeError} If `g` is not a matrix.
 * @throws {RangeError} If `g.cols % 4 !== 0` or a value is NaN or ±Inf.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { mvue24Probabilities } from "./mvue.ts";
 * const p = mvue24Probabilities(matrix(1, 4, [1, 1, 1, 1]));
 * if (p.data.some((v) => Math.abs(v - 0.5) > 1e-6)) throw new Error("expected 1/2");
 * ```
 */
export function mvue24Probabilities(g: Matrix): Matrix {
  const action = "compute MVUE 2:4 inclusion probabilities";
  checkInput(g, action);
  const out = new Float32Array(g.data.length);
  for (let o = 0; o < g.data.length; o += 4) {
    const a = [0, 1, 2, 3].map((i) => Math.abs(g.data[o + i]) + MVUE_EPSILON);
    const sum = a[0] + a[1] + a[2] + a[3];
    const rest = a.map((_, i) => a.reduce((acc, v, j) => (j === i ? acc : acc + v), 0));
    for (let k = 0; k < 4; k++) {
      let s = 0;
      for (let i = 0; i < 4; i++) if (i !== k) s += a[i] / sum / rest[i];
      out[o + k] = a[k] / sum + a[k] * s;
    }
  }
  return { rows: g.rows, cols: g.cols, data: out };
}
