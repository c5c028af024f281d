/**
 * Central finite differences for gradient checks; re-exports the project's one comparison helper
 * (`assertClose`, `assertEqualArrays`), which lives in `reference/testing.ts`.
 *
 * @module
 */

export { assertClose, assertEqualArrays } from "../reference/testing.ts";

/**
 * Central finite-difference gradient of a scalar function: entry `i` is
 * `(f(x + h·eᵢ) − f(x − h·eᵢ)) / (x⁺ᵢ − x⁻ᵢ)`, where `x⁺ᵢ = xᵢ + eps` and `x⁻ᵢ = xᵢ − eps` as
 * actually represented (dividing by the represented step rather than `2·eps` removes the rounding
 * of the step itself). Truncation error is `O(eps²)`; in float64 the default `eps = 1e-6` balances
 * it against cancellation for inputs and derivatives of order one.
 *
 * `x` is modified during the call (one entry at a time) and restored exactly before returning, so
 * `f` may read it directly. `f` must be deterministic.
 *
 * @param f The function to differentiate; called `2·x.length` times.
 * @param x The point (its values are restored on return, also when `f` throws).
 * @param eps The absolute step, a positive finite number (default `1e-6`).
 * @returns The estimated gradient, one entry per entry of `x`.
 * @throws {RangeError} If `eps` is not a positive finite number, or `f` returns a non-finite value
 * (naming the entry and the side of the step).
 * @throws {TypeError} If `x` is not a `Float64Array` or `f` returns something other than a number.
 * @example
 * ```ts
 * import { finiteDifference } from "./grad_check.ts";
 * // d/dx (x0² + 3·x1) = (2·x0, 3)
 * const g = finiteDifference((x) => x[0] * x[0] + 3 * x[1], new Float64Array([2, -1]));
 * if (Math.abs(g[0] - 4) > 1e-8 || Math.abs(g[1] - 3) > 1e-8) throw new Error("unexpected");
 * ```
 */
export function finiteDifference(
  f: (x: Float64Array) => number,
  x: Float64Array,
  eps = 1e-6,
): Float64Array {
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps <= 0) {
    throw new RangeError(
      `Cannot take finite differences: eps must be a positive finite number, got ${eps}`,
    );
  }
  if (!(x instanceof Float64Array)) {
    throw new TypeError(
      `Cannot take finite differences: x must be a Float64Array, got ${
        (x as unknown as object)?.constructor?.name ?? typeof x
      }`,
    );
  }
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const original = x[i];
    let plus: number, minus: number, step: number;
    try {
      x[i] = original + eps;
      const up = x[i];
      plus = evaluate(f, x, i, "+");
      x[i] = original - eps;
      step = up - x[i];
      minus = evaluate(f, x, i, "-");
    } finally {
      x[i] = original;
    }
    grad[i] = (plus - minus) / step;
  }
  return grad;
}

function evaluate(f: (x: Float64Array) => number, x: Float64Array, i: number, side: string) {
  const value = f(x);
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot take finite differences: f must return a number, got ${typeof value}`,
    );
  }
  if (!Number.isFinite(value)) {
    throw new RangeError(
      `Cannot take finite differences: f returned ${value} at x[${i}] ${side} eps`,
    );
  }
  return value;
}
