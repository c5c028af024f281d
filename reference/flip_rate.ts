/**
 * Mask flip rate (SPEC §2.4), the training-health signal of Hu et al., "Accelerating Transformer
 * Pre-Training with 2:4 Sparsity" (ICML 2024): `r = ‖M_t ⊕ M_{t−1}‖₁ / D`.
 *
 * @module
 */

import { assertMaskPair } from "./checks.ts";

/**
 * The number of mask entries that differ between two mask computations, `‖M_t ⊕ M_{t−1}‖₁`. The
 * training stack sums these counts (and the mask sizes) over all sparse layers to get the global
 * flip rate, where big layers weigh more.
 *
 * @param prevMask The earlier mask, 0/1 entries.
 * @param nextMask The later mask, same length.
 * @returns How many entries differ (0 for two empty masks).
 * @throws {TypeError} If a mask is not a `Uint8Array`.
 * @throws {RangeError} If the lengths differ or an entry is neither 0 nor 1.
 * @example
 * ```ts
 * import { flipCount } from "./flip_rate.ts";
 * const n = flipCount(new Uint8Array([1, 1, 0, 0]), new Uint8Array([1, 0, 1, 0]));
 * if (n !== 2) throw new Error("unexpected");
 * ```
 */
export function flipCount(prevMask: Uint8Array, nextMask: Uint8Array): number {
  assertMaskPair(prevMask, nextMask, "count mask flips");
  let count = 0;
  for (let i = 0; i < prevMask.length; i++) count += prevMask[i] ^ nextMask[i];
  return count;
}

/**
 * The flip rate between two mask computations: the fraction of entries that differ,
 * `flipCount(prev, next) / prev.length`, in `[0, 1]`. (The first mask computation of a run has no
 * predecessor and reports 0; that is the caller's rule.)
 *
 * @param prevMask The earlier mask, 0/1 entries, at least one.
 * @param nextMask The later mask, same length.
 * @returns The fraction of entries that changed.
 * @throws {TypeError} If a mask is not a `Uint8Array`.
 * @throws {RangeError} If the masks are empty, their lengths differ, or an entry is neither 0 nor
 * 1.
 * @example
 * ```ts
 * import { flipRate } from "./flip_rate.ts";
 * const r = flipRate(new Uint8Array([1, 1, 0, 0]), new Uint8Array([1, 0, 1, 0]));
 * if (r !== 0.5) throw new Error("unexpected");
 * ```
 */
export function flipRate(prevMask: Uint8Array, nextMask: Uint8Array): number {
  const action = "compute the flip rate";
  assertMaskPair(prevMask, nextMask, action);
  if (prevMask.length === 0) {
    throw new RangeError(`Cannot ${action}: the masks must not be empty, got length 0`);
  }
  let count = 0;
  for (let i = 0; i < prevMask.length; i++) count += prevMask[i] ^ nextMask[i];
  return count / prevMask.length;
}
