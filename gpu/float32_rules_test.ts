import { assertThrows } from "../reference/testing.ts";
/**
 * The shared comparison rules of the GPU suites (`float32_rules.ts`) accept exactly what
 * they document: the flush rule takes a `±0` for a subnormal reference value (or for the value a
 * flushing device computes) and nothing else; the reduction depths and error terms match their
 * formulas.
 *
 * @module
 */

import {
  assertEqualOrFlushed,
  expError,
  isSubnormalF32,
  logError,
  MIN_NORMAL_F32,
  mvueKept,
  TOL_MVUE,
  treeSumDepth,
  U,
} from "./float32_rules.ts";

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  if (!Object.is(actual, expected)) throw new Error(`${what}: got ${actual}, expected ${expected}`);
}

Deno.test("isSubnormalF32: non-zero magnitudes below 2^-126 only", () => {
  const sub = Math.fround(3e-42);
  assertEquals(isSubnormalF32(sub), true, "3e-42");
  assertEquals(isSubnormalF32(-sub), true, "-3e-42");
  assertEquals(isSubnormalF32(MIN_NORMAL_F32), false, "2^-126");
  assertEquals(isSubnormalF32(0), false, "0");
  assertEquals(isSubnormalF32(-0), false, "-0");
  assertEquals(isSubnormalF32(1), false, "1");
});

Deno.test("flush rule: ±0 for a subnormal reference value is accepted and counted", () => {
  const sub = Math.fround(-5.739718509874451e-42);
  assertEquals(
    assertEqualOrFlushed([0, 1, -0], [sub, 1, Math.fround(1e-40)], "flushed"),
    2,
    "count",
  );
  assertEquals(assertEqualOrFlushed([1, -0, NaN], [1, 0, NaN], "equal"), 0, "no flush");
});

Deno.test("flush rule: anything else is a mismatch", () => {
  const sub = Math.fround(1e-40);
  // A zero for a normal value, a wrong subnormal, a subnormal for a zero, a last-bit difference.
  assertThrows(() => assertEqualOrFlushed([0], [MIN_NORMAL_F32], "normal"), Error, "normal");
  assertThrows(() => assertEqualOrFlushed([2 * sub], [sub], "wrong"), Error, "1 of 1");
  assertThrows(() => assertEqualOrFlushed([sub], [0], "invented"), Error, "invented");
  assertThrows(
    () => assertEqualOrFlushed([Math.fround(1 + 2 ** -23)], [1], "last bit"),
    Error,
    "last bit",
  );
});

Deno.test("flush rule: the flushing device's own result is accepted, and only it", () => {
  // |w| − τ with a subnormal τ: a flushing device returns |w|.
  const w = MIN_NORMAL_F32 * 1.5, tau = Math.fround(1e-39);
  const exact = Math.fround(w - tau), flushed = Math.fround(w);
  assertEquals(assertEqualOrFlushed([flushed], [exact], "τ flushed", [flushed]), 1, "count");
  assertThrows(
    () => assertEqualOrFlushed([flushed], [exact], "without the alternative"),
    Error,
    "without the alternative",
  );
  assertThrows(
    () => assertEqualOrFlushed([Math.fround(w + tau)], [exact], "other", [flushed]),
    Error,
    "other",
  );
});

Deno.test("treeSumDepth: strided sequential adds, then the non-trivial tree levels", () => {
  assertEquals(treeSumDepth(1, 128), 0, "one term");
  assertEquals(treeSumDepth(2, 128), 1, "two terms");
  assertEquals(treeSumDepth(5, 128), 3, "five terms");
  assertEquals(treeSumDepth(128, 128), 7, "one per thread");
  assertEquals(treeSumDepth(200, 128), 8, "two per thread");
  assertEquals(treeSumDepth(300, 128), 9, "three per thread");
});

Deno.test("WGSL error terms: exp 3 + 2|x| ULP, log 2^-21 on [0.5, 2] plus 3 ULP above", () => {
  assertEquals(expError(0), 6 * U, "exp at 0");
  assertEquals(expError(-4), 22 * U, "exp at -4");
  assertEquals(logError(1), 2 ** -21, "log at 1");
  if (!(logError(32) > 2 ** -21 + 6 * U * 3.4)) throw new Error("log at 32 too small");
});

Deno.test("mvueKept: values beyond TOL_MVUE.atol are kept", () => {
  const kept = mvueKept([0, -0, TOL_MVUE.atol, -2 * TOL_MVUE.atol, 1]);
  assertEquals(Array.from(kept).join(), "0,0,0,1,1", "kept");
});
