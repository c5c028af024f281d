/**
 * WGSL's float32 accuracy rules as constants (`u = 2^-24`; `x / y` 2.5 ULP, `sqrt` via
 * `inverseSqrt`, `exp` `3 + 2|x|` ULP, `log`; subnormals may be flushed), the facts the GPU suites'
 * tolerances are derived from (SPEC §10.1), and the comparison rules they share: the parity tests
 * of `gpu/kernels/`, `tests/gpu_backend_test.ts`, `tests/train_parity_test.ts`. Test support.
 *
 * @module
 */

import { assertEqualArrays } from "../reference/testing.ts";

/** The float32 unit roundoff `2^-24` (half an ULP of 1). */
export const U = 2 ** -24;
/** The smallest normal float32, `2^-126`. */
export const MIN_NORMAL_F32 = 2 ** -126;
/** Relative error of WGSL's `x / y` (2.5 ULP). */
export const DIV = 5 * U;
/** Relative error of WGSL's `sqrt` (inherited from `1 / inverseSqrt`: 2 ULP then 2.5 ULP). */
export const SQRT = 9 * U;

/** Relative error of WGSL's `exp(x)` for an argument of magnitude up to `maxArgument`. */
export function expError(maxArgument: number): number {
  return (3 + 2 * Math.abs(maxArgument)) * 2 * U;
}

/**
 * Absolute error of WGSL's `log(x)` for `x ≥ 1` up to `maxArgument`: `2^-21` on `[0.5, 2]`, 3 ULP
 * of the result above (both counted, so one bound serves the whole range).
 */
export function logError(maxArgument: number): number {
  return 2 ** -21 + 6 * U * Math.log(Math.max(maxArgument, 1));
}

/** Higham's `γ_k = k·u / (1 − k·u)`: the relative bound of `k` dependent roundings. */
export function gamma(k: number): number {
  return (k * U) / (1 - k * U);
}

/**
 * Roundings a term of an `n`-term sum goes through in the kernels' workgroup reduction: each of
 * `threads` threads adds a strided share in order (the first add to 0 is exact), then a binary
 * tree over the threads (levels that only add a zero are exact).
 *
 * @param n Number of terms, ≥ 1.
 * @param threads Threads per workgroup (a power of two).
 * @returns The depth `⌈n / threads⌉ − 1 + ⌈log2 min(n, threads)⌉`.
 */
export function treeSumDepth(n: number, threads: number): number {
  return Math.ceil(n / threads) - 1 + Math.ceil(Math.log2(Math.min(n, threads)));
}

/** Whether `v` is a non-zero float32 subnormal (magnitude below `2^-126`). */
export function isSubnormalF32(v: number): boolean {
  return v !== 0 && Math.abs(v) < MIN_NORMAL_F32;
}

/**
 * The flush rule: `actual` equals `expected` exactly (`0` and `−0` equal, NaN equals NaN), except
 * that a GPU result of `±0` where the reference result is a float32 subnormal counts as equal —
 * WGSL lets a device flush it. Where the operation can also see subnormal operands, `flushed`
 * gives the reference's result on a device that flushes them (subnormal operands read as 0): that
 * result is accepted too, and `±0` where it is subnormal. Anything else is a mismatch.
 *
 * @param actual The GPU's values.
 * @param expected The reference's values.
 * @param label Names the comparison in the failure message.
 * @param flushed The reference's values with subnormal operands flushed, where they differ.
 * @returns How many values were accepted only through a flush.
 * @throws {Error} On any other difference (the message of `assertEqualArrays`).
 */
export function assertEqualOrFlushed(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  label: string,
  flushed?: ArrayLike<number>,
): number {
  const accepted = Float64Array.from(actual);
  let count = 0;
  const matches = (a: number, e: number) => a === e || (a === 0 && isSubnormalF32(e));
  for (let i = 0; i < Math.min(accepted.length, expected.length); i++) {
    const a = accepted[i], e = expected[i];
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    if (matches(a, e) || (flushed !== undefined && matches(a, flushed[i]))) {
      accepted[i] = e;
      count++;
    }
  }
  assertEqualArrays(accepted, expected, label);
  return count;
}

/**
 * MVUE 2:4 values (`x_k / p_k`): the GPU performs the reference's float32 operations in the same
 * order, but WGSL promises division only to 2.5 ULP and may fuse `t + a·s` into an FMA; the
 * dependent chain `t = a/S`, `q = t/R`, `s = Σ q`, `p = t + a·s`, `x/p` holds four divisions,
 * about `24u` in all, so `rtol = 2e-6` (≈ 33u). A device that flushes a subnormal input `x_k`
 * outputs 0 for `x_k / p_k`, at most `2^-126 / p_k ≤ 2^-126·S / ε ≈ 4e-30` for group sums `S ≤ 40`
 * (`atol`; the drawn positions do not change, since `|x| + ε` rounds to `ε` either way). Outputs
 * within `atol` of 0 count as "not kept" when positions are compared ({@linkcode mvueKept}).
 */
export const TOL_MVUE: { atol: number; rtol: number } = { atol: 4e-30, rtol: 2e-6 };

/** MVUE's kept positions: 1 where `|value| > TOL_MVUE.atol` (compared exactly). */
export function mvueKept(values: ArrayLike<number>): Uint8Array {
  return Uint8Array.from(
    { length: values.length },
    (_, i) => (Math.abs(values[i]) > TOL_MVUE.atol ? 1 : 0),
  );
}
