import { matrix } from "./matrix.ts";
import { SPEC_MASKED_DECAY } from "./cases.ts";
import { maskedDecay } from "./masked_decay.ts";
import { assert, assertThrows, seededRandom } from "./testing.ts";

Deno.test("masked decay reproduces SPEC §9", () => {
  const { grad, w, mask, alpha, out: want } = SPEC_MASKED_DECAY;
  const out = maskedDecay(matrix(1, 4, grad), matrix(1, 4, w), Uint8Array.from(mask), alpha);
  for (let i = 0; i < 4; i++) {
    assert(Math.abs(out.data[i] - want[i]) <= 1e-7, `entry ${i}: ${out.data[i]} vs ${want[i]}`);
  }
  assert(out.rows === 1 && out.cols === 4, "shape");
});

Deno.test("masked decay decays only pruned weights, once, in float64 then float32", () => {
  const rand = seededRandom(21);
  const rnd = () => rand() - 0.5;
  const rows = 3, cols = 10;
  const grad = matrix(rows, cols, Array.from({ length: rows * cols }, rnd));
  const w = matrix(rows, cols, Array.from({ length: rows * cols }, () => 100 * rnd()));
  const mask = Uint8Array.from({ length: rows * cols }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
  const alpha = 2e-4;
  const out = maskedDecay(grad, w, mask, alpha);
  for (let i = 0; i < rows * cols; i++) {
    const want = Math.fround(mask[i] ? grad.data[i] : grad.data[i] + alpha * w.data[i]);
    assert(out.data[i] === want, `entry ${i}: ${out.data[i]} vs ${want}`);
  }
  assert(out.data !== grad.data, "the result must be a fresh array");
  const zero = maskedDecay(grad, w, mask, 0);
  assert(zero.data.join() === grad.data.join(), "alpha = 0 must return the gradient unchanged");
  const allKept = maskedDecay(grad, w, new Uint8Array(rows * cols).fill(1), 0.5);
  assert(allKept.data.join() === grad.data.join(), "an all-ones mask must leave the gradient");
  const empty = maskedDecay(matrix(0, 3), matrix(0, 3), new Uint8Array(0), 0.1);
  assert(empty.rows === 0 && empty.cols === 3 && empty.data.length === 0, "empty matrices");
});

Deno.test("masked decay rejects bad input and names the offending value", () => {
  const g = matrix(1, 4, [1, 1, 1, 1]), w = matrix(1, 4, [1, 2, 3, 4]);
  const m = new Uint8Array([1, 0, 1, 0]);
  for (const bad of [-1e-3, NaN, Infinity]) {
    assertThrows(() => maskedDecay(g, w, m, bad), RangeError, ["alpha", `got ${bad}`]);
  }
  assertThrows(() => maskedDecay(g, w, m, "0.1" as never), RangeError, ["alpha", "0.1"]);
  assertThrows(() => maskedDecay(g, matrix(2, 2, [1, 2, 3, 4]), m, 0.1), RangeError, [
    "[1, 4] vs [2, 2]",
  ]);
  assertThrows(() => maskedDecay(g, w, new Uint8Array(3), 0.1), RangeError, ["4 entries", "got 3"]);
  assertThrows(() => maskedDecay(g, w, new Uint8Array([1, 2, 0, 0]), 0.1), RangeError, [
    "got 2 at 1",
  ]);
  assertThrows(() => maskedDecay(g, w, [1, 0, 1, 0] as never, 0.1), TypeError, ["Uint8Array"]);
  assertThrows(() => maskedDecay(matrix(1, 4, [1, NaN, 1, 1]), w, m, 0.1), RangeError, [
    "gradient",
    "NaN",
    "column 1",
  ]);
  assertThrows(() => maskedDecay(g, matrix(1, 4, [1, 2, 3, -Infinity]), m, 0.1), RangeError, [
    "weight",
    "-Infinity",
    "column 3",
  ]);
  assertThrows(() => maskedDecay(null as never, w, m, 0.1), TypeError, ["Matrix", "null"]);
});
