/**
 * The project's one testing module: assertions (`assert`, `assertThrows`, `assertRejects`, the
 * comparison helpers `assertClose` / `assertEqualArrays`, the float32 product bound
 * `assertProductClose`), the one seeded input generator (`seededRandom` and its shapes, built on
 * the project's Philox, `./rng.ts`, SPEC §2.7) and a temporary-directory fixture (`withTempDir`).
 * Published only for the two comparison helpers, which `core/grad_check.ts` re-exports; the rest
 * is for tests and benchmarks.
 *
 * @module
 */

import type { Matrix } from "./matrix.ts";
import { uniform4, uniforms } from "./rng.ts";

/** How many mismatches a failed comparison lists. */
const REPORTED_MISMATCHES = 5;

/** Throws an `Error` with `message` unless `condition` holds. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

type ErrorClass = abstract new (...args: never[]) => Error;

function checkError(e: unknown, errorClass: ErrorClass, includes: string[]): Error {
  assert(e instanceof errorClass, `expected ${errorClass.name}, got ${e}`);
  for (const text of includes) {
    assert(e.message.includes(text), `message "${e.message}" does not mention "${text}"`);
  }
  return e;
}

/**
 * Asserts that `fn` throws an instance of `errorClass` whose message contains every `includes`
 * string (each argument a string or a list of strings); returns the error.
 */
export function assertThrows(
  fn: () => unknown,
  errorClass: ErrorClass,
  ...includes: (string | readonly string[])[]
): Error {
  const parts = includes.flat();
  try {
    fn();
  } catch (e) {
    return checkError(e, errorClass, parts);
  }
  throw new Error(`expected ${errorClass.name} mentioning ${parts.join(", ")}, nothing thrown`);
}

/** The async twin of {@linkcode assertThrows}: `fn`'s promise must reject. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  errorClass: ErrorClass,
  ...includes: (string | readonly string[])[]
): Promise<Error> {
  const parts = includes.flat();
  try {
    await fn();
  } catch (e) {
    return checkError(e, errorClass, parts);
  }
  throw new Error(`expected ${errorClass.name} mentioning ${parts.join(", ")}, nothing rejected`);
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
 * import { assertClose } from "./testing.ts";
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
 * import { assertEqualArrays } from "./testing.ts";
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

// ---- the seeded input generator -----------------------------------------------------------------

/**
 * Checks a computed matrix product `got[i·cols + j] ≈ Σ_k a(i, k)·b(j, k)` against float64 within
 * the float32 accumulation bound `(K + 1)·2^-24·Σ_k |a(i, k)·b(j, k)|` (any summation order).
 *
 * @param label Names the product in the error.
 * @param got The product, row-major `[rows, cols]`.
 * @param dims `{ rows, cols, k }`.
 * @param a `a(i, k)`, the left operand's entry.
 * @param b `b(j, k)`, the right operand's entry (so `op(B)[k, j]`).
 * @param options `sample`: check only this many pseudo-randomly spread entries (default: all);
 * `compared(i, j)`: which entries are promised (default: all).
 * @returns The largest error as a fraction of its bound.
 * @throws {Error} On the first entry outside its bound (or not finite), naming it.
 */
export function assertProductClose(
  label: string,
  got: Float32Array,
  dims: { rows: number; cols: number; k: number },
  a: (i: number, k: number) => number,
  b: (j: number, k: number) => number,
  options: { sample?: number; compared?: (i: number, j: number) => boolean } = {},
): number {
  const { rows, cols, k } = dims;
  const entries: [number, number][] = [];
  if (options.sample === undefined) {
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) entries.push([i, j]);
  } else {
    for (let s = 0; s < options.sample; s++) {
      entries.push([(s * 7919 + 13) % rows, (s * 104729 + 7) % cols]);
    }
  }
  let worst = 0;
  for (const [i, j] of entries) {
    if (options.compared && !options.compared(i, j)) continue;
    let ref = 0, abs = 0;
    for (let kk = 0; kk < k; kk++) {
      const p = a(i, kk) * b(j, kk);
      ref += p;
      abs += Math.abs(p);
    }
    const v = got[i * cols + j], bound = (k + 1) * 2 ** -24 * abs;
    if (!(Math.abs(v - ref) <= bound)) {
      throw new Error(`${label}: [${i}, ${j}] = ${v}, expected ${ref} ± ${bound}`);
    }
    worst = Math.max(worst, bound > 0 ? Math.abs(v - ref) / bound : 0);
  }
  return worst;
}

/**
 * The one seeded generator for test and benchmark inputs: successive Philox uniforms in `(0, 1)`
 * of stream `stream` under `seed` (draw `i` is word `i % 4` of `uniform4(seed, stream, ⌊i/4⌋)`).
 */
export function seededRandom(seed: number, stream = 0): () => number {
  let index = 0, block: number[] = [];
  return () => {
    if (index % 4 === 0) block = uniform4(seed, stream, index / 4);
    return block[index++ % 4];
  };
}

/**
 * `n` seeded floats: Philox uniforms `u ∈ (0, 1)` of stream `stream` under `seed`, each mapped by
 * `map` (default `u − 0.5`).
 */
export function seededFloats(
  n: number,
  seed: number,
  map: (u: number) => number = (u) => u - 0.5,
  stream = 0,
): Float32Array {
  const u = uniforms(seed, stream, n);
  for (let i = 0; i < n; i++) u[i] = map(u[i]);
  return u;
}

/** Standard normal values (Box–Muller on `seededRandom(seed)`), as a `rows × cols` matrix. */
export function gaussianMatrix(rows: number, cols: number, seed: number): Matrix {
  const rand = seededRandom(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
  }
  return { rows, cols, data };
}

/** Small signed integers in `[−3, 3]`: many exact magnitude ties, and zeros. */
export function tieHeavyMatrix(rows: number, cols: number, seed: number): Matrix {
  const rand = seededRandom(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 7) - 3;
  return { rows, cols, data };
}

/**
 * Runs `fn` with a fresh temporary directory and removes the directory afterwards, also when `fn`
 * throws.
 *
 * @param fn The test body, given the directory's path.
 */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
