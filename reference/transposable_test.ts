import { type Matrix, matrix } from "./matrix.ts";
import { SPEC_TRANSPOSABLE } from "./cases.ts";
import {
  transposableMask24,
  transposablePatternIndices,
  transposablePatterns,
} from "./transposable.ts";
import {
  assert,
  assertEqualArrays,
  assertThrows,
  gaussianMatrix,
  seededRandom,
  tieHeavyMatrix,
} from "./testing.ts";

// ---- small local helpers -------------------------------------------------------------------

// ---- an independent enumeration of the 90 patterns -------------------------------------------

/** Is bit 15 − (4r + c) of `word` set, i.e. entry (r, c)? */
function entry(word: number, r: number, c: number): number {
  return (word >> (15 - (4 * r + c))) & 1;
}

/**
 * Every 4×4 0/1 matrix (all 65536 words) with exactly two ones in each row and each column,
 * sorted descending.
 */
function bruteForcePatterns(): number[] {
  const found: number[] = [];
  for (let word = 0; word < 1 << 16; word++) {
    let ok = true;
    for (let k = 0; k < 4 && ok; k++) {
      let row = 0, col = 0;
      for (let j = 0; j < 4; j++) {
        row += entry(word, k, j);
        col += entry(word, j, k);
      }
      ok = row === 2 && col === 2;
    }
    if (ok) found.push(word);
  }
  return found.sort((a, b) => b - a);
}

const BRUTE_PATTERNS = bruteForcePatterns();

/** Retained magnitude of `word` on the 4×4 block at (4bi, 4bj), f64, row-major order. */
function retained(w: Matrix, bi: number, bj: number, word: number): number {
  let sum = 0;
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      if (entry(word, r, c)) sum += Math.abs(w.data[(4 * bi + r) * w.cols + 4 * bj + c]);
    }
  }
  return sum;
}

/** Brute-force optimum: the first (lowest-numbered) pattern with the largest retained sum. */
function bruteForceBest(w: Matrix, bi: number, bj: number): number {
  const sums = BRUTE_PATTERNS.map((word) => retained(w, bi, bj, word));
  return sums.indexOf(Math.max(...sums));
}

/** Checks the mask is built from the chosen patterns, is transposable 2:4 and W ⊙ M is right. */
function checkAgainstBruteForce(w: Matrix, label: string): void {
  const before = w.data.slice();
  const indices = transposablePatternIndices(w);
  const { pruned, mask } = transposableMask24(w);
  assertEqualArrays(w.data, before, `${label}: input was modified`);
  const blockCols = w.cols / 4;
  assert(indices.length === (w.rows / 4) * blockCols, `${label}: ${indices.length} indices`);
  for (let bi = 0; bi < w.rows / 4; bi++) {
    for (let bj = 0; bj < blockCols; bj++) {
      const best = bruteForceBest(w, bi, bj);
      const got = indices[bi * blockCols + bj];
      if (got !== best) {
        throw new Error(
          `${label}: block (${bi}, ${bj}) chose #${got} (retained ${
            retained(w, bi, bj, BRUTE_PATTERNS[got])
          }), brute force #${best} (retained ${retained(w, bi, bj, BRUTE_PATTERNS[best])})`,
        );
      }
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) {
          const at = (4 * bi + r) * w.cols + 4 * bj + c;
          const expectedBit = entry(BRUTE_PATTERNS[best], r, c);
          if (mask[at] !== expectedBit) throw new Error(`${label}: mask at ${at} is ${mask[at]}`);
          const expectedValue = expectedBit ? w.data[at] : 0;
          if (!Object.is(pruned.data[at], expectedValue)) {
            throw new Error(`${label}: pruned at ${at} is ${pruned.data[at]}`);
          }
        }
      }
    }
  }
  checkTransposable(mask, w.rows, w.cols, label);
}

/** Every row of every block has two ones, and so does every column of every block. */
function checkTransposable(mask: Uint8Array, rows: number, cols: number, label: string): void {
  for (let bi = 0; bi < rows / 4; bi++) {
    for (let bj = 0; bj < cols / 4; bj++) {
      for (let k = 0; k < 4; k++) {
        let rowOnes = 0, colOnes = 0;
        for (let j = 0; j < 4; j++) {
          rowOnes += mask[(4 * bi + k) * cols + 4 * bj + j];
          colOnes += mask[(4 * bi + j) * cols + 4 * bj + k];
        }
        if (rowOnes !== 2 || colOnes !== 2) {
          throw new Error(
            `${label}: block (${bi}, ${bj}) line ${k} has ${rowOnes} ones in its row and ` +
              `${colOnes} in its column`,
          );
        }
      }
    }
  }
}

// ---- the pattern table -------------------------------------------------------------------------

Deno.test("transposablePatterns lists the 90 patterns of a brute-force enumeration, descending", () => {
  assert(BRUTE_PATTERNS.length === 90, `brute force found ${BRUTE_PATTERNS.length} patterns`);
  const patterns = transposablePatterns();
  assert(patterns instanceof Uint16Array, "not a Uint16Array");
  assertEqualArrays(patterns, BRUTE_PATTERNS, "pattern table");
  assert(patterns[0] === 0b1100_1100_0011_0011, `#0 is 0x${patterns[0].toString(16)}`);
  assert(patterns[54] === 0b0110_1001_0011_1100, `#54 is 0x${patterns[54].toString(16)}`);
  assert(patterns[89] === 0b0011_0011_1100_1100, `#89 is 0x${patterns[89].toString(16)}`);
  for (let p = 1; p < 90; p++) assert(patterns[p - 1] > patterns[p], `not descending at ${p}`);
});

Deno.test("transposablePatterns returns a fresh copy each call", () => {
  const first = transposablePatterns();
  first.fill(0);
  assert(transposablePatterns()[0] === 0xcc33, "the table was changed through a returned copy");
});

// ---- SPEC §9 hand-derived cases --------------------------------------------------------------

Deno.test("transposableMask24 picks pattern #54 with retained 18 for the SPEC §9 block", () => {
  const [spec] = SPEC_TRANSPOSABLE;
  const w = matrix(4, 4, spec.block.flat());
  assertEqualArrays(transposablePatternIndices(w), [spec.pattern], "pattern index");
  const { pruned, mask } = transposableMask24(w);
  assertEqualArrays(mask, [0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0], "mask");
  assertEqualArrays(pruned.data, [0, -3, 2, 0, 4, 0, 0, 1, 0, 0, -2, 3, -1, 2, 0, 0], "values");
  let kept = 0;
  for (let i = 0; i < 16; i++) kept += mask[i] * Math.abs(w.data[i]);
  assert(kept === spec.retained, `retained ${kept}`);
  // The optimum is unique: every other pattern retains strictly less.
  for (let p = 0; p < 90; p++) {
    const other = retained(w, 0, 0, BRUTE_PATTERNS[p]);
    if (p !== spec.pattern) assert(other < spec.retained, `#${p} also retains ${other}`);
  }
});

Deno.test("transposableMask24 breaks the all-tie arange(1..16) block and all zeros to #0", () => {
  const [, allTie, allZero] = SPEC_TRANSPOSABLE;
  const arange = matrix(4, 4, allTie.block.flat());
  for (let p = 0; p < 90; p++) {
    const sum = retained(arange, 0, 0, BRUTE_PATTERNS[p]);
    assert(sum === allTie.retained, `pattern #${p} retains ${sum}, not ${allTie.retained}`);
  }
  const zeros = matrix(4, 4, allZero.block.flat());
  const negativeArange = matrix(4, 4, Array.from({ length: 16 }, (_, i) => -(i + 1)));
  for (const w of [arange, zeros, negativeArange]) {
    assertEqualArrays(transposablePatternIndices(w), [allTie.pattern], "pattern index");
    assertEqualArrays(transposableMask24(w).mask, [
      ...[1, 1, 0, 0],
      ...[1, 1, 0, 0],
      ...[0, 0, 1, 1],
      ...[0, 0, 1, 1],
    ], "mask");
  }
});

// ---- properties --------------------------------------------------------------------------------

Deno.test("transposableMask24 equals the brute-force optimum on random matrices", () => {
  checkAgainstBruteForce(gaussianMatrix(16, 16, 41), "Gaussian 16x16");
  checkAgainstBruteForce(tieHeavyMatrix(16, 24, 42), "small integers 16x24");
  checkAgainstBruteForce(gaussianMatrix(4, 40, 43), "single block row 4x40");
  checkAgainstBruteForce(gaussianMatrix(40, 4, 44), "single block column 40x4");
});

Deno.test("transposablePatternIndices numbers the blocks block-row-major", () => {
  const w = gaussianMatrix(8, 12, 45);
  const indices = transposablePatternIndices(w);
  for (let bi = 0; bi < 2; bi++) {
    for (let bj = 0; bj < 3; bj++) {
      const block = matrix(4, 4);
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) {
          block.data[4 * r + c] = w.data[(4 * bi + r) * 12 + 4 * bj + c];
        }
      }
      const alone = transposablePatternIndices(block)[0];
      assert(indices[bi * 3 + bj] === alone, `block (${bi}, ${bj}): ${indices[bi * 3 + bj]}`);
    }
  }
});

Deno.test("transposableMask24 treats ±Inf as a magnitude: Inf sums tie, lowest pattern wins", () => {
  const rand = seededRandom(46);
  for (let trial = 0; trial < 40; trial++) {
    const w = gaussianMatrix(4, 4, 100 + trial);
    const infinities = 1 + Math.floor(rand() * 5);
    for (let k = 0; k < infinities; k++) {
      w.data[Math.floor(rand() * 16)] = rand() < 0.5 ? Infinity : -Infinity;
    }
    checkAgainstBruteForce(w, `Inf trial ${trial}`);
    assert(!transposableMask24(w).pruned.data.some(Number.isNaN), `NaN in trial ${trial}`);
  }
  // One Inf at (0, 3): the lowest pattern keeping (0, 3) wins whatever the finite values are.
  const w = matrix(4, 4, [0, 0, 0, Infinity, 9, 9, 0, 0, 9, 9, 0, 0, 0, 0, 9, 9]);
  const first = BRUTE_PATTERNS.findIndex((word) => entry(word, 0, 3) === 1);
  assertEqualArrays(transposablePatternIndices(w), [first], "pattern index");
  // Three infinite entries in row 0: one must be dropped and becomes 0, not NaN.
  const row = matrix(4, 4, [Infinity, -Infinity, Infinity, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  const { pruned, mask } = transposableMask24(row);
  assert(mask[0] + mask[1] + mask[2] === 2, "row 0 does not keep two of its three infinities");
  assert(!pruned.data.some(Number.isNaN), "NaN in the output");
});

Deno.test("transposableMask24 handles empty matrices", () => {
  for (const [rows, cols] of [[0, 8], [8, 0], [0, 0]]) {
    const { pruned, mask } = transposableMask24(matrix(rows, cols));
    assert(pruned.rows === rows && pruned.cols === cols, `shape [${rows}, ${cols}] changed`);
    assert(mask.length === 0, "non-empty mask");
    assert(transposablePatternIndices(matrix(rows, cols)).length === 0, "non-empty indices");
  }
});

// ---- errors ----------------------------------------------------------------------------------

Deno.test("transposableMask24 rejects shapes that are not multiples of 4, naming the value", () => {
  for (const f of [transposableMask24, transposablePatternIndices]) {
    assertThrows(() => f(matrix(6, 8)), RangeError, [
      "Cannot find a transposable 2:4 mask: the number of rows must be a multiple of 4, got 6",
    ]);
    assertThrows(() => f(matrix(8, 10)), RangeError, [
      "row length must be a multiple of 4, got 10",
    ]);
    assertThrows(() => f(matrix(1, 4)), RangeError, ["rows", "got 1"]);
  }
});

Deno.test("transposableMask24 rejects NaN and malformed matrices, naming the value", () => {
  const nan = matrix(4, 8, Array.from({ length: 32 }, (_, i) => (i === 13 ? NaN : i)));
  assertThrows(() => transposableMask24(nan), RangeError, ["NaN", "row 1, column 5"]);
  assertThrows(() => transposablePatternIndices(nan), RangeError, ["row 1, column 5"]);
  const short = { rows: 4, cols: 4, data: new Float32Array(15) };
  assertThrows(() => transposableMask24(short), RangeError, ["4*4 = 16", "got 15"]);
  assertThrows(() => transposableMask24(undefined as unknown as Matrix), TypeError, [
    "got undefined",
  ]);
});
