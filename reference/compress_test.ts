import { type Matrix, matrix } from "./matrix.ts";
import { compress24, type Compressed24, decompress24 } from "./compress.ts";
import { SPEC_COMPRESS } from "./cases.ts";
import { prune24 } from "./prune.ts";
import {
  assert,
  assertEqualArrays,
  assertThrows,
  gaussianMatrix,
  seededRandom,
} from "./testing.ts";

// ---- small local helpers -------------------------------------------------------------------

/** Mostly zeros and small integers, so that pruned groups often hold 0 or 1 non-zeros. */
function sparseIntegerMatrix(rows: number, cols: number, seed: number): Matrix {
  const rand = seededRandom(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rand() < 0.6 ? 0 : Math.floor(rand() * 5) - 2;
  return { rows, cols, data };
}

/** Reads the 4-bit code of flat group g, written out independently of the implementation. */
function codeOf(meta: Uint32Array, g: number): number {
  const word = meta[Math.floor(g / 8)];
  return Math.floor(word / 16 ** (g % 8)) % 16;
}

// ---- SPEC §9 and the brief's hand cases ------------------------------------------------------

Deno.test("compress24 reproduces the SPEC §9 example: values and codes (9, 12, 14, 4)", () => {
  const { pruned } = prune24(matrix(1, 16, SPEC_COMPRESS.row));
  const c = compress24(pruned);
  assert(c.values.rows === 1 && c.values.cols === 8, `values shape [${c.values.rows}, 8]`);
  assertEqualArrays(c.values.data, SPEC_COMPRESS.values, "values");
  assert(c.meta.length === 1, `meta has ${c.meta.length} words`);
  assertEqualArrays([0, 1, 2, 3].map((g) => codeOf(c.meta, g)), SPEC_COMPRESS.codes, "codes");
  assert(c.meta[0] === 9 + 12 * 16 + 14 * 256 + 4 * 4096, `meta word 0x${c.meta[0].toString(16)}`);
  assertEqualArrays(decompress24(c).data, pruned.data, "round trip");
});

Deno.test("compress24 gives groups with fewer than two non-zeros prune24's positions", () => {
  const w = matrix(1, 24, [
    ...[0, 0, 0, 5], // keeps 2, 3 → code 14
    ...[0, 0, 0, 0], // keeps 2, 3 → code 14
    ...[5, 0, 0, 0], // keeps 0 and the highest zero, 3 → code 12
    ...[0, -7, 0, 0], // keeps 1, 3 → code 13
    ...[0, 0, -0, 0], // -0 is a zero: keeps 2, 3 → code 14
    ...[0, 1, 2, 0], // keeps 1, 2 → code 9
  ]);
  const c = compress24(w);
  assertEqualArrays([0, 1, 2, 3, 4, 5].map((g) => codeOf(c.meta, g)), [14, 14, 12, 13, 14, 9], "c");
  assertEqualArrays(c.values.data, [0, 5, 0, 0, 5, 0, -7, 0, -0, 0, 1, 2], "values");
  assertEqualArrays(decompress24(c).data, w.data, "round trip");
});

Deno.test("compress24 numbers groups flat over the matrix, eight codes per word, high bits 0", () => {
  // 5 rows × 8 columns = 10 groups → 2 words; group g keeps positions (g % 4, 3) except g % 4 = 3.
  const positions = [[0, 3], [1, 3], [2, 3], [1, 2]];
  const rows = 5, cols = 8;
  const w = matrix(rows, cols);
  for (let g = 0; g < 10; g++) {
    const [a, b] = positions[g % 4];
    w.data[4 * g + a] = g + 1;
    w.data[4 * g + b] = -(g + 1);
  }
  const c = compress24(w);
  assert(c.meta.length === 2, `meta has ${c.meta.length} words for 10 groups`);
  for (let g = 0; g < 10; g++) {
    const [a, b] = positions[g % 4];
    assert(codeOf(c.meta, g) === (a | (b << 2)), `group ${g}: code ${codeOf(c.meta, g)}`);
  }
  assert(c.meta[1] < 256, `unused bits of word 1 set: 0x${c.meta[1].toString(16)}`);
  assertEqualArrays(decompress24(c).data, w.data, "round trip");
  // Word boundaries: ceil(groups / 8) words.
  for (const [r, k, words] of [[1, 8, 1], [2, 16, 1], [3, 12, 2], [2, 32, 2], [1, 36, 2]]) {
    assert(compress24(matrix(r, k)).meta.length === words, `[${r}, ${k}] ≠ ${words} words`);
  }
  assert(compress24(matrix(0, 8)).meta.length === 0, "an empty matrix has meta words");
});

// ---- properties --------------------------------------------------------------------------------

Deno.test("compress24 / decompress24 round-trip random 2:4 matrices and keep prune24's positions", () => {
  const inputs = [
    gaussianMatrix(12, 32, 51),
    sparseIntegerMatrix(12, 32, 52),
    gaussianMatrix(1, 4, 53),
    gaussianMatrix(7, 36, 54),
  ];
  inputs[0].data[5] = Infinity;
  inputs[0].data[70] = -Infinity;
  for (const [k, w] of inputs.entries()) {
    const { pruned, mask } = prune24(w);
    const c = compress24(pruned);
    const groups = (w.rows * w.cols) / 4;
    assert(c.values.rows === w.rows && c.values.cols === w.cols / 2, `input ${k}: values shape`);
    assert(c.meta.length === Math.ceil(groups / 8), `input ${k}: ${c.meta.length} meta words`);
    for (let g = 0; g < groups; g++) {
      const code = codeOf(c.meta, g);
      const idx0 = code % 4, idx1 = Math.floor(code / 4);
      assert(idx0 < idx1, `input ${k}, group ${g}: code ${code}`);
      const maskCode = [0, 1, 2, 3].filter((i) => mask[4 * g + i] === 1);
      assertEqualArrays([idx0, idx1], maskCode, `input ${k}, group ${g}: positions`);
      assertEqualArrays(
        c.values.data.subarray(2 * g, 2 * g + 2),
        [pruned.data[4 * g + idx0], pruned.data[4 * g + idx1]],
        `input ${k}, group ${g}: values`,
      );
    }
    const groupsInLastWord = groups % 8;
    if (groupsInLastWord !== 0) {
      const last = c.meta[c.meta.length - 1];
      assert(last < 16 ** groupsInLastWord, `input ${k}: unused meta bits set`);
    }
    const back = decompress24(c);
    assert(back.rows === w.rows && back.cols === w.cols, `input ${k}: shape changed`);
    assertEqualArrays(back.data, pruned.data, `input ${k}: round trip`);
  }
});

// ---- errors ----------------------------------------------------------------------------------

Deno.test("compress24 rejects a group with more than two non-zeros, naming row and group", () => {
  const w = matrix(2, 12, [
    ...[1, 0, 0, 2, 0, 0, 0, 0, 3, 4, 0, 0],
    ...[1, 2, 0, 0, 0, 0, 0, 0, 5, 0, Infinity, 7],
  ]);
  assertThrows(() => compress24(w), RangeError, [
    "Cannot compress to 2:4",
    "row 1, group 2",
    "3 non-zeros",
    "[5, 0, Infinity, 7]",
  ]);
  assertThrows(() => compress24(matrix(1, 4, [1, 1, 1, 1])), RangeError, ["row 0, group 0"]);
});

Deno.test("compress24 rejects a bad row length, NaN and malformed matrices, naming the value", () => {
  assertThrows(() => compress24(matrix(2, 6)), RangeError, [
    "Cannot compress to 2:4: the row length must be a multiple of 4, got 6",
  ]);
  assertThrows(() => compress24(matrix(1, 4, [0, NaN, 0, 0])), RangeError, ["row 0, column 1"]);
  assertThrows(() => compress24({ rows: 2, cols: 4, data: new Float32Array(9) }), RangeError, [
    "got 9",
  ]);
});

Deno.test("decompress24 rejects metadata of the wrong length or type, naming it", () => {
  const values = matrix(2, 8); // a [2, 16] matrix: 8 groups, 1 word
  assertThrows(() => decompress24({ values, meta: new Uint32Array(2) }), RangeError, [
    "Cannot decompress from 2:4",
    "1 words",
    "[2, 16]",
    "got 2",
  ]);
  assertThrows(() => decompress24({ values, meta: new Uint32Array(0) }), RangeError, ["got 0"]);
  const notU32 = { values, meta: Int32Array.of(-1) } as unknown as Compressed24;
  assertThrows(() => decompress24(notU32), TypeError, ["Uint32Array", "got Int32Array"]);
  assertThrows(() => decompress24(null as unknown as Compressed24), TypeError, ["got null"]);
});

Deno.test("decompress24 rejects invalid codes and set unused bits, naming them", () => {
  const values = matrix(2, 4, [1, 2, 3, 4, 5, 6, 7, 8]); // [2, 8]: 4 groups, codes 9, 12, 14, 4
  const good = 9 | (12 << 4) | (14 << 8) | (4 << 12);
  assertEqualArrays(
    decompress24({ values, meta: Uint32Array.of(good) }).data,
    [0, 1, 2, 0, 3, 0, 0, 4, 0, 0, 5, 6, 7, 8, 0, 0],
    "valid meta",
  );
  // Replace the code of flat group 3 (row 1, group 1) with each invalid code.
  for (const bad of [0, 1, 2, 3, 5, 6, 7, 10, 11, 15]) {
    const meta = Uint32Array.of((good & 0x0fff) | (bad << 12));
    assertThrows(() => decompress24({ values, meta }), RangeError, [
      `invalid metadata code ${bad} for row 1, group 1`,
    ]);
  }
  // A code written past the last group.
  assertThrows(() => decompress24({ values, meta: Uint32Array.of(good | (9 << 16)) }), RangeError, [
    "unused high bits",
    "0x",
    "after 4 codes",
  ]);
});

Deno.test("decompress24 rejects odd values.cols, NaN values and malformed values", () => {
  assertThrows(() => decompress24({ values: matrix(1, 3), meta: new Uint32Array(1) }), RangeError, [
    "values.cols must be even, got 3",
  ]);
  const nan = matrix(1, 2, [NaN, 1]);
  assertThrows(() => decompress24({ values: nan, meta: Uint32Array.of(14) }), RangeError, [
    "NaN at row 0, column 0",
  ]);
  const short = { rows: 1, cols: 2, data: new Float32Array(1) };
  assertThrows(() => decompress24({ values: short, meta: Uint32Array.of(14) }), RangeError, [
    "got 1",
  ]);
});
