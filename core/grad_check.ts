/**
 * Test helpers shared by the whole project: central finite differences for gradient checks, and
 * the one comparison helper (`|actual − expected| ≤ atol + rtol·|expected|`) with an exact variant
 * for masks, indices and codes. Both comparisons report the label, the largest differences and the
 * first mismatches with their indices, so a failing parity test says where it failed.
 *
 * @module
 */

/** How many mismatches a failed comparison lists. */
const REPORTED_MISMATCHES = 5;

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

/**
 * Asserts that two arrays agree element by element within `|a − e| ≤ atol + rtol·|e|` (`a` from
 * `actual`, `e` from `expected`): the project's one comparison helper for fast-vs-reference and
 * analytic-vs-numeric checks. NaN matches only NaN; `±Inf` matches only the same infinity (the
 * bound is not applied to infinities); the lengths must be equal.
 *
 * @param actual The values under test.
 * @param expected The reference values.
 * @param tol Absolute and relative tolerance, both finite and non-negative.
 * @param label Names the compared quantity in the failure message.
 * @throws {Error} On a mismatch: the message gives the label, the number of mismatches, the
 * largest absolute and relative differences over all elements, and the first 5 mismatches with
 * their indices and both values.
 * @throws {RangeError} If the lengths differ or a tolerance is negative or not finite.
 * @throws {TypeError} If `tol` is not an object or an argument is not array-like.
 * @example
 * ```ts
 * import { assertClose } from "./grad_check.ts";
 * assertClose([1, 2.0000001], [1, 2], { atol: 0, rtol: 1e-6 }, "values");
 * let failed = false;
 * try {
 *   assertClose([1, 3], [1, 2], { atol: 1e-6, rtol: 1e-6 }, "values");
 * } catch {
 *   failed = true;
 * }
 * if (!failed) throw new Error("expected a mismatch");
 * ```
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { atol: number; rtol: number },
  label: string,
): void {
  if (tol === null || typeof tol !== "object") {
    throw new TypeError(`Cannot compare ${label}: tol must be an object {atol, rtol}, got ${tol}`);
  }
  for (const key of ["atol", "rtol"] as const) {
    const t = tol[key];
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
      throw new RangeError(
        `Cannot compare ${label}: ${key} must be a finite non-negative number, got ${t}`,
      );
    }
  }
  assertSameLength(actual, expected, label);
  let maxAbs = 0, maxRel = 0, count = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    let ok: boolean;
    if (Number.isNaN(a) || Number.isNaN(e)) {
      ok = Number.isNaN(a) && Number.isNaN(e);
    } else if (!Number.isFinite(a) || !Number.isFinite(e)) {
      ok = a === e;
    } else {
      const diff = Math.abs(a - e);
      ok = diff <= tol.atol + tol.rtol * Math.abs(e);
      maxAbs = Math.max(maxAbs, diff);
      if (diff > 0) maxRel = Math.max(maxRel, diff / Math.abs(e));
    }
    if (!ok) {
      count++;
      if (mismatches.length < REPORTED_MISMATCHES) {
        mismatches.push(`  [${i}] actual ${a}, expected ${e}`);
      }
    }
  }
  if (count > 0) {
    throw new Error(
      `${label}: ${count} of ${expected.length} elements differ beyond atol ${tol.atol} + rtol ${tol.rtol}·|expected|; ` +
        `max abs diff ${maxAbs}, max rel diff ${maxRel}; first mismatches:\n${
          mismatches.join("\n")
        }`,
    );
  }
}

/**
 * Asserts that two arrays are exactly equal element by element (for masks, indices and codes).
 * Elements compare with `===`, except that NaN equals NaN; `0` and `-0` are equal.
 *
 * @param actual The values under test.
 * @param expected The reference values.
 * @param label Names the compared quantity in the failure message.
 * @throws {Error} On a mismatch: the message gives the label, the number of mismatches, the
 * largest absolute difference and the first 5 mismatches with their indices and both values.
 * @throws {RangeError} If the lengths differ.
 * @throws {TypeError} If an argument is not array-like.
 * @example
 * ```ts
 * import { assertEqualArrays } from "./grad_check.ts";
 * assertEqualArrays(new Uint8Array([0, 1, 1, 0]), [0, 1, 1, 0], "mask");
 * ```
 */
export function assertEqualArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  label: string,
): void {
  assertSameLength(actual, expected, label);
  let maxAbs = 0, count = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    count++;
    const diff = Math.abs(a - e);
    if (!(diff <= maxAbs)) maxAbs = diff;
    if (mismatches.length < REPORTED_MISMATCHES) {
      mismatches.push(`  [${i}] actual ${a}, expected ${e}`);
    }
  }
  if (count > 0) {
    throw new Error(
      `${label}: ${count} of ${expected.length} elements differ (exact comparison); ` +
        `max abs diff ${maxAbs}; first mismatches:\n${mismatches.join("\n")}`,
    );
  }
}

function assertSameLength(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string) {
  if (actual?.length === undefined || expected?.length === undefined) {
    throw new TypeError(`Cannot compare ${label}: both arguments must be array-like`);
  }
  if (actual.length !== expected.length) {
    throw new RangeError(
      `Cannot compare ${label}: lengths differ, actual ${actual.length} vs expected ${expected.length}`,
    );
  }
}
