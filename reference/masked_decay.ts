/**
 * Masked decay of the pruned weights, added to the gradient (SPEC §2.2, §2.3): SR-STE's
 * `λ_W·(1 − M)⊙W` (Zhou et al., "Learning N:M Fine-grained Structured Sparse Neural Networks From
 * Scratch", ICLR 2021, arXiv 2102.04010) and P1's masked decay on gradients `α·(1 − M)⊙W`
 * (Hu et al., "Accelerating Transformer Pre-Training with 2:4 Sparsity", ICML 2024).
 *
 * @module
 */

import type { Matrix } from "./matrix.ts";
import { assertMaskedDecayArgs } from "./checks.ts";

/**
 * Adds the masked decay term to a gradient: `out = grad + alpha·(1 − mask)⊙w`. Kept weights
 * (`mask = 1`) get their gradient unchanged; pruned weights (`mask = 0`) are pulled towards 0.
 * SR-STE uses it with `alpha = λ_W` (default 2e-4), P1 with its much smaller `α` (6e-5 for GPT-2
 * 124M), applied after gradient clipping and before AdamW.
 *
 * Each entry is computed in float64 and rounded once to float32. A kept entry is copied exactly
 * (the decay is never formed as `0·w`). Non-finite `grad` or `w` entries are rejected: with them
 * the result could be NaN (`Inf − Inf`), and a kernel computing `(1 − m)·w` would give NaN for a
 * kept infinite weight. A finite result may still overflow float32 to `±Inf`.
 *
 * @param grad The gradient `[rows, cols]`.
 * @param w The dense master weight, same shape.
 * @param mask `rows · cols` entries of 0/1, `1` = kept.
 * @param alpha The decay factor, finite and `≥ 0`.
 * @returns A fresh matrix, same shape.
 * @throws {TypeError} If `grad` or `w` is not a matrix, or `mask` is not a `Uint8Array`.
 * @throws {RangeError} If the shapes differ, the mask has the wrong length or a non-0/1 entry,
 * `alpha` is negative or not finite, or `grad` or `w` holds NaN or ±Inf.
 * @example
 * ```ts
 * import { matrix } from "./matrix.ts";
 * import { maskedDecay } from "./masked_decay.ts";
 * // SPEC §9.
 * const out = maskedDecay(
 *   matrix(1, 4, [1, 1, 1, 1]),
 *   matrix(1, 4, [1, 2, 3, 4]),
 *   new Uint8Array([1, 0, 1, 0]),
 *   0.03,
 * );
 * if (out.data[1] !== Math.fround(1.06) || out.data[3] !== Math.fround(1.12)) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function maskedDecay(grad: Matrix, w: Matrix, mask: Uint8Array, alpha: number): Matrix {
  const action = "apply masked decay";
  assertMaskedDecayArgs(grad, w, mask, alpha, action);
  const out = new Float32Array(grad.data.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = mask[i] === 1 ? grad.data[i] : grad.data[i] + alpha * w.data[i];
  }
  return { rows: grad.rows, cols: grad.cols, data: out };
}
