// Dimension bounds on every reference function: degenerate and oversized shapes (rows = 2^52 with
// cols = 0, and the like) are refused at once with a RangeError naming the dimension, instead of
// looping over 2^50 empty rows or blocks; the largest allowed empty shapes return at once.
import { type Matrix, matrix, MAX_MATRIX_ELEMENTS } from "./matrix.ts";
import { compress24, decompress24 } from "./compress.ts";
import { quantizeFp8 } from "./fp8.ts";
import { geglu, gegluBackward, swiglu, swigluBackward } from "./gated.ts";
import { maskedDecay } from "./masked_decay.ts";
import { mvue24, mvue24Probabilities, mvue24WithUniforms } from "./mvue.ts";
import { prune24, pruneNM } from "./prune.ts";
import { softThreshold24, ssteScale } from "./soft_threshold.ts";
import { transposableMask24, transposablePatternIndices } from "./transposable.ts";
import { irwinHallMatrix, uniformIntegerMatrix } from "./vectors.ts";
import { assert, assertThrows } from "./testing.ts";

/** Every reference function that takes a matrix (or a shape), applied to `m`. */
const FUNCTIONS: [string, (m: Matrix) => unknown][] = [
  ["prune24", (m) => prune24(m)],
  ["pruneNM", (m) => pruneNM(m, { n: 2, m: 4 })],
  ["softThreshold24", (m) => softThreshold24(m)],
  ["ssteScale", (m) => ssteScale(m)],
  ["transposablePatternIndices", (m) => transposablePatternIndices(m)],
  ["transposableMask24", (m) => transposableMask24(m)],
  ["compress24", (m) => compress24(m)],
  ["decompress24", (m) => decompress24({ values: m, meta: new Uint32Array(0) })],
  ["mvue24", (m) => mvue24(m, { seed: 1, stream: 0 })],
  ["mvue24WithUniforms", (m) => mvue24WithUniforms(m, new Float32Array(0))],
  ["mvue24Probabilities", (m) => mvue24Probabilities(m)],
  ["quantizeFp8", (m) => quantizeFp8(m, { format: "e4m3" })],
  ["maskedDecay", (m) => maskedDecay(m, m, new Uint8Array(0), 0.1)],
  ["geglu", (m) => geglu(m)],
  ["swiglu", (m) => swiglu(m)],
  ["gegluBackward", (m) => gegluBackward(m, { ...m, cols: m.cols / 2 })],
  ["swigluBackward", (m) => swigluBackward(m, { ...m, cols: m.cols / 2 })],
  ["matrix", (m) => matrix(m.rows, m.cols)],
  ["irwinHallMatrix", (m) => irwinHallMatrix(m.rows, m.cols, { seed: 1, stream: 0 })],
  [
    "uniformIntegerMatrix",
    (m) => uniformIntegerMatrix(m.rows, m.cols, { seed: 1, stream: 0, low: 0, high: 1 }),
  ],
];

/** Shapes no function may accept, with the dimension the error must name. */
const BAD_SHAPES: [number, number, string][] = [
  [2 ** 52, 0, "rows must be an integer in [0, 2^31]"],
  [0, 2 ** 52, "cols must be an integer in [0, 2^31]"],
  [2 ** 53, 0, "rows must be"],
  [MAX_MATRIX_ELEMENTS + 4, 0, "rows must be"],
  [0, MAX_MATRIX_ELEMENTS + 4, "cols must be"],
  [2 ** 16, 2 ** 16, "rows·cols must be at most 2^31"],
  [Infinity, 0, "rows must be"],
  [-4, 0, "rows must be"],
  [4.5, 4, "rows must be"],
  [NaN, 4, "rows must be"],
];

Deno.test(`reference bounds: ${FUNCTIONS.length} functions × ${BAD_SHAPES.length} shapes are refused at once`, () => {
  let refused = 0;
  for (const [name, run] of FUNCTIONS) {
    for (const [rows, cols, expect] of BAD_SHAPES) {
      const m = { rows, cols, data: new Float32Array(0) };
      try {
        assertThrows(() => run(m), RangeError, expect);
      } catch (e) {
        throw new Error(`${name}(rows ${rows}, cols ${cols}): ${(e as Error).message}`);
      }
      refused++;
    }
  }
  console.log(`reference bounds: ${refused} degenerate or oversized shapes refused`);
});

Deno.test("reference bounds: the largest empty shapes return empty results without looping", () => {
  for (const [rows, cols] of [[MAX_MATRIX_ELEMENTS, 0], [0, MAX_MATRIX_ELEMENTS]]) {
    const m = { rows, cols, data: new Float32Array(0) };
    for (
      const [name, run] of [
        ["transposableMask24", () => transposableMask24(m).mask.length],
        ["transposablePatternIndices", () => transposablePatternIndices(m).length],
        ["geglu", () => geglu(m).data.length],
        ["swiglu", () => swiglu(m).data.length],
        ["gegluBackward", () => gegluBackward(m, { ...m, cols: cols / 2 }).data.length],
        ["swigluBackward", () => swigluBackward(m, { ...m, cols: cols / 2 }).data.length],
        ["prune24", () => prune24(m).mask.length],
      ] as const
    ) {
      assert(run() === 0, `${name}(rows ${rows}, cols ${cols}) is not empty`);
    }
  }
});
