/**
 * Weight initialisation on the host from the project's counter-based RNG, so every backend starts
 * from bit-identical weights: values are drawn here as float32 arrays and uploaded.
 *
 * Normal draws use the Box–Muller transform on the four uniforms of each counter
 * (`reference/rng.ts`): with `(u0, u1, u2, u3) = uniform4(seed, stream, n)`, entries `4n .. 4n+3`
 * are `r₀cos θ₀, r₀sin θ₀, r₁cos θ₁, r₁sin θ₁` where `rₖ = √(−2 ln u₂ₖ)`, `θₖ = 2π·u₂ₖ₊₁`. The
 * uniforms lie strictly inside (0, 1), so the logarithm is finite. Values are computed in f64 and
 * rounded once to f32.
 *
 * @module
 */

import { uniforms } from "../reference/rng.ts";

/**
 * `count` draws from `N(0, std²)`, entry `i` from counter `⌊i/4⌋` of stream `stream` (see the
 * module documentation for the exact transform).
 *
 * @param seed The run seed, an integer in `[0, 2^53)`.
 * @param stream The stream (one per parameter, `streams.ts`).
 * @param count How many values.
 * @param std Standard deviation (non-negative, finite).
 * @returns A `Float32Array` of `count` values.
 * @throws {RangeError} If `std` is negative or not finite, or the seed, stream or count is invalid.
 * @example
 * ```ts
 * import { normal } from "./init.ts";
 * const w = normal(1, 0, 10000, 0.02);
 * let sum = 0;
 * for (const x of w) sum += x * x;
 * const std = Math.sqrt(sum / w.length);
 * if (Math.abs(std - 0.02) > 0.001) throw new Error(`unexpected std ${std}`);
 * ```
 */
export function normal(seed: number, stream: number, count: number, std: number): Float32Array {
  if (typeof std !== "number" || !Number.isFinite(std) || std < 0) {
    throw new RangeError(`Cannot draw normal values: std must be finite and >= 0, got ${std}`);
  }
  const padded = 4 * Math.ceil(count / 4);
  const u = uniforms(seed, stream, padded);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const pair = i - (i % 2); // index of the pair's first uniform (u₂ₖ)
    const r = Math.sqrt(-2 * Math.log(u[pair]));
    const theta = 2 * Math.PI * u[pair + 1];
    out[i] = std * r * (i % 2 === 0 ? Math.cos(theta) : Math.sin(theta));
  }
  return out;
}

/**
 * A constant-filled float32 array (LayerNorm scales 1, shifts 0).
 *
 * @param count How many values.
 * @param value The value.
 * @returns A `Float32Array` of `count` copies of `value`.
 */
export function constantInit(count: number, value: number): Float32Array {
  return new Float32Array(count).fill(value);
}
