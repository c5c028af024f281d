import { assertClose, assertEqualArrays, finiteDifference } from "./grad_check.ts";
import { assertThrows } from "../reference/testing.ts";

Deno.test("finiteDifference matches analytic gradients and restores x", () => {
  const f = (x: Float64Array) => Math.sin(x[0]) * x[1] + x[2] ** 3;
  const x = new Float64Array([0.7, -1.3, 2.1]);
  const before = Float64Array.from(x);
  const g = finiteDifference(f, x);
  assertEqualArrays(x, before, "x after finite differences");
  const expected = [Math.cos(0.7) * -1.3, Math.sin(0.7), 3 * 2.1 ** 2];
  assertClose(g, expected, { atol: 1e-8, rtol: 1e-8 }, "gradient");
});

Deno.test("finiteDifference is exact for quadratics up to rounding and honours eps", () => {
  const f = (x: Float64Array) => 3 * x[0] * x[0] - 2 * x[0];
  const g = finiteDifference(f, new Float64Array([5]), 1e-3);
  // Central differences are exact for quadratics: 6·5 − 2 = 28.
  assertClose(g, [28], { atol: 1e-9, rtol: 0 }, "quadratic");
});

Deno.test("finiteDifference rejects bad eps, non-finite values and restores x on throw", () => {
  assertThrows(() => finiteDifference(() => 0, new Float64Array(1), 0), RangeError, "eps", "0");
  assertThrows(() => finiteDifference(() => 0, new Float64Array(1), NaN), RangeError, "eps");
  const x = new Float64Array([1, 2]);
  assertThrows(
    () => finiteDifference((v) => (v[1] > 2 ? NaN : 0), x),
    RangeError,
    "NaN",
    "x[1] + eps",
  );
  assertEqualArrays(x, [1, 2], "x after a throwing f");
  assertThrows(
    () => finiteDifference(() => "1" as unknown as number, new Float64Array(1)),
    TypeError,
    "number",
  );
});

Deno.test("assertClose applies atol + rtol·|expected| per element", () => {
  assertClose([1.5, 100.5], [1, 100], { atol: 0.5, rtol: 0 }, "abs");
  assertClose([0, 101], [0, 100], { atol: 0, rtol: 0.01 }, "rel");
  // 1 + 0.01·100 = 2 allowed at element 1; 2.5 is not.
  assertClose([0, 102], [0, 100], { atol: 1, rtol: 0.01 }, "mixed");
  assertThrows(() => assertClose([0, 102.5], [0, 100], { atol: 1, rtol: 0.01 }, "mixed"), Error);
});

Deno.test("assertClose reports label, maxima and the first five mismatches", () => {
  const actual = [0, 1, 2, 3, 4, 5, 6, 7];
  const expected = [0, 2, 2, 4, 5, 6, 7, 17];
  const { message: msg } = assertThrows(
    () => assertClose(actual, expected, { atol: 0.1, rtol: 0 }, "logits"),
    Error,
    "logits",
    "6 of 8",
    "max abs diff 10",
    "[1] actual 1, expected 2",
    "[3] actual 3, expected 4",
    "[6] actual 6, expected 7",
  );
  if (msg.includes("[7]")) throw new Error(`listed more than five mismatches: ${msg}`);
});

Deno.test("assertClose treats NaN and infinities strictly", () => {
  assertClose([NaN, Infinity, -Infinity], [NaN, Infinity, -Infinity], { atol: 0, rtol: 0 }, "ok");
  assertThrows(() => assertClose([NaN], [1], { atol: 1e9, rtol: 1 }, "nan"), Error, "nan");
  assertThrows(() => assertClose([1], [NaN], { atol: 1e9, rtol: 1 }, "nan"), Error, "nan");
  assertThrows(() => assertClose([Infinity], [1e308], { atol: 1e9, rtol: 1 }, "inf"), Error);
  assertThrows(() => assertClose([-Infinity], [Infinity], { atol: 0, rtol: 0 }, "inf"), Error);
});

Deno.test("assertClose and assertEqualArrays check lengths and tolerances", () => {
  assertThrows(
    () => assertClose([1, 2], [1], { atol: 1, rtol: 1 }, "len"),
    RangeError,
    "actual 2 vs expected 1",
  );
  assertThrows(() => assertEqualArrays([1], [1, 2], "len"), RangeError, "len");
  assertThrows(() => assertClose([1], [1], { atol: -1, rtol: 0 }, "t"), RangeError, "atol");
  assertThrows(() => assertClose([1], [1], { atol: 0, rtol: NaN }, "t"), RangeError, "rtol");
});

Deno.test("assertEqualArrays compares exactly", () => {
  assertEqualArrays(new Uint8Array([1, 0, 1]), [1, 0, 1], "mask");
  assertEqualArrays([NaN, 0], [NaN, -0], "nan and signed zero");
  assertThrows(
    () => assertEqualArrays([1, 0, 1, 1], [1, 0, 0, 1], "mask"),
    Error,
    "mask",
    "1 of 4",
    "[2] actual 1, expected 0",
  );
  assertThrows(() => assertEqualArrays([1 + 2 ** -52], [1], "ulp"), Error, "ulp");
});
