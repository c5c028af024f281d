import { type Matrix, matrix } from "./matrix.ts";
import { SPEC_HARD_24 } from "./cases.ts";
import { prune24, pruneNM } from "./prune.ts";
import {
  assert,
  assertEqualArrays,
  assertThrows,
  gaussianMatrix,
  tieHeavyMatrix,
} from "./testing.ts";

// ---- small local helpers -------------------------------------------------------------------

function keptPositions(mask: Uint8Array, start: number, m: number): number[] {
  const kept: number[] = [];
  for (let i = 0; i < m; i++) if (mask[start + i] === 1) kept.push(i);
  return kept;
}

/**
 * Checks everything that determines an N:M result: exactly n kept per group, every kept element
 * beats every dropped one (|w| larger, or equal with a higher index; this fixes the kept set
 * uniquely), kept values copied, dropped values +0, and the input left alone.
 */
function checkNMResult(w: Matrix, before: Float32Array, n: number, m: number, label: string) {
  const { pruned, mask } = pruneNM(w, { n, m });
  assertEqualArrays(w.data, before, `${label}: input was modified`);
  assert(pruned.rows === w.rows && pruned.cols === w.cols, `${label}: shape changed`);
  assert(mask.length === w.data.length, `${label}: mask length ${mask.length}`);
  for (let start = 0; start < w.data.length; start += m) {
    const kept = keptPositions(mask, start, m);
    assert(kept.length === n, `${label}: group at ${start} keeps ${kept.length}, expected ${n}`);
    for (let i = 0; i < m; i++) {
      const value = pruned.data[start + i];
      const expected = mask[start + i] === 1 ? w.data[start + i] : 0;
      if (!Object.is(value, expected)) {
        throw new Error(`${label}: at ${start + i} got ${value}, expected ${expected}`);
      }
    }
    for (const i of kept) {
      for (let j = 0; j < m; j++) {
        if (mask[start + j] === 1) continue;
        const ai = Math.abs(w.data[start + i]), aj = Math.abs(w.data[start + j]);
        if (!(ai > aj || (ai === aj && i > j))) {
          throw new Error(
            `${label}: kept position ${i} (|w| = ${ai}) does not beat dropped ${j} ` +
              `(|w| = ${aj}) in group at ${start}`,
          );
        }
      }
    }
  }
}

// ---- SPEC §9 hand-derived cases --------------------------------------------------------------

Deno.test("prune24 reproduces every hard 2:4 case of SPEC §9, one group at a time", () => {
  for (const { w, kept, out } of SPEC_HARD_24) {
    const { pruned, mask } = prune24(matrix(1, 4, w));
    assertEqualArrays(keptPositions(mask, 0, 4), kept, `kept positions of [${w}]`);
    assertEqualArrays(pruned.data, Float32Array.from(out), `output of [${w}]`);
  }
});

Deno.test("prune24 treats the SPEC §9 cases the same when stacked as rows and along one row", () => {
  const all = SPEC_HARD_24.flatMap((c) => c.w);
  const expectedMask = SPEC_HARD_24.flatMap((c) => [0, 1, 2, 3].map((i) => +c.kept.includes(i)));
  const expectedOut = Float32Array.from(SPEC_HARD_24.flatMap((c) => c.out));
  for (const [rows, cols] of [[9, 4], [1, 36], [3, 12]]) {
    const { pruned, mask } = prune24(matrix(rows, cols, all));
    assertEqualArrays(mask, expectedMask, `mask for shape [${rows}, ${cols}]`);
    assertEqualArrays(pruned.data, expectedOut, `output for shape [${rows}, ${cols}]`);
    assert(pruned.rows === rows && pruned.cols === cols, "shape changed");
  }
});

Deno.test("prune24 equals pruneNM with n = 2, m = 4", () => {
  for (const w of [gaussianMatrix(7, 16, 1), tieHeavyMatrix(5, 12, 2)]) {
    const a = prune24(w), b = pruneNM(w, { n: 2, m: 4 });
    assertEqualArrays(a.mask, b.mask, "mask");
    assertEqualArrays(a.pruned.data, b.pruned.data, "values");
  }
});

// ---- other N:M hand cases --------------------------------------------------------------------

Deno.test("pruneNM 1:2 keeps the larger magnitude, the second on ties", () => {
  const { pruned, mask } = pruneNM(matrix(1, 8, [3, -4, 2, 2, -5, 1, 0, 0]), { n: 1, m: 2 });
  assertEqualArrays(mask, [0, 1, 0, 1, 1, 0, 0, 1], "mask");
  assertEqualArrays(pruned.data, [0, -4, 0, 2, -5, 0, 0, 0], "values");
});

Deno.test("pruneNM 1:4 keeps the single largest magnitude, the highest index on ties", () => {
  const w = matrix(3, 4, [1, 2, 3, 4, 4, -4, 1, 1, -7, 3, 7, 0]);
  const { pruned, mask } = pruneNM(w, { n: 1, m: 4 });
  assertEqualArrays(mask, [0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0], "mask");
  assertEqualArrays(pruned.data, [0, 0, 0, 4, 0, -4, 0, 0, 0, 0, 7, 0], "values");
});

Deno.test("pruneNM 2:8 keeps the two largest of eight", () => {
  const w = matrix(3, 8, [
    ...[1, 1, 1, 1, 1, 1, 1, 1],
    ...[8, -7, 6, 5, 4, 3, 2, 1],
    ...[0, 9, 0, 0, 0, 0, -9, 0],
  ]);
  const { pruned, mask } = pruneNM(w, { n: 2, m: 8 });
  assertEqualArrays(mask, [
    ...[0, 0, 0, 0, 0, 0, 1, 1],
    ...[1, 1, 0, 0, 0, 0, 0, 0],
    ...[0, 1, 0, 0, 0, 0, 1, 0],
  ], "mask");
  assertEqualArrays(pruned.data, [
    ...[0, 0, 0, 0, 0, 0, 1, 1],
    ...[8, -7, 0, 0, 0, 0, 0, 0],
    ...[0, 9, 0, 0, 0, 0, -9, 0],
  ], "values");
});

Deno.test("pruneNM with n = m keeps everything", () => {
  const w = gaussianMatrix(3, 8, 3);
  const { pruned, mask } = pruneNM(w, { n: 4, m: 4 });
  assert(mask.every((x) => x === 1), "not every entry kept");
  assertEqualArrays(pruned.data, w.data, "values");
});

// ---- properties on random matrices -----------------------------------------------------------

Deno.test("pruneNM keeps exactly n per group and every kept element beats every dropped one", () => {
  const configs = [[1, 2], [2, 4], [1, 4], [2, 8], [3, 8], [4, 16]];
  let seed = 100;
  for (const [n, m] of configs) {
    for (const w of [gaussianMatrix(9, 4 * m, seed++), tieHeavyMatrix(9, 4 * m, seed++)]) {
      checkNMResult(w, w.data.slice(), n, m, `${n}:${m} seed ${seed}`);
    }
  }
});

Deno.test("prune24 treats ±Inf as the largest magnitude and never outputs NaN", () => {
  const inf = Infinity;
  const w = matrix(1, 12, [inf, 1, -inf, 2, -inf, inf, inf, 5, inf, inf, inf, inf]);
  const { pruned, mask } = prune24(w);
  assertEqualArrays(mask, [1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1], "mask");
  assertEqualArrays(pruned.data, [inf, 0, -inf, 0, 0, inf, inf, 0, 0, 0, inf, inf], "values");
  const half = pruneNM(matrix(1, 2, [-inf, inf]), { n: 1, m: 2 });
  assertEqualArrays(half.pruned.data, [0, inf], "dropped -Inf becomes 0");
  checkNMResult(w, w.data.slice(), 2, 4, "Inf matrix");
});

Deno.test("prune24 ties -0 with 0 and orders subnormals by magnitude", () => {
  const { mask } = prune24(matrix(2, 4, [-0, 0, 0, -0, 1e-45, -3e-45, 0, 1e-40]));
  assertEqualArrays(mask, [0, 0, 1, 1, 0, 1, 0, 1], "mask");
});

Deno.test("prune24 handles single rows, single groups and empty matrices", () => {
  const column = gaussianMatrix(33, 4, 7);
  checkNMResult(column, column.data.slice(), 2, 4, "33x4");
  const row = gaussianMatrix(1, 64, 8);
  checkNMResult(row, row.data.slice(), 2, 4, "1x64");
  for (const [rows, cols] of [[0, 4], [3, 0], [0, 0]]) {
    const { pruned, mask } = prune24(matrix(rows, cols));
    assert(pruned.rows === rows && pruned.cols === cols, `shape [${rows}, ${cols}] changed`);
    assert(mask.length === 0 && pruned.data.length === 0, `[${rows}, ${cols}] not empty`);
  }
});

// ---- errors ----------------------------------------------------------------------------------

Deno.test("prune24 and pruneNM reject a row length that is not a multiple of the group size", () => {
  assertThrows(() => prune24(matrix(2, 10)), RangeError, [
    "Cannot prune to 2:4: the row length must be a multiple of 4, got 10",
  ]);
  assertThrows(() => pruneNM(matrix(1, 6), { n: 2, m: 4 }), RangeError, ["2:4", "got 6"]);
  assertThrows(() => pruneNM(matrix(1, 12), { n: 2, m: 8 }), RangeError, ["of 8", "got 12"]);
  assertThrows(() => pruneNM(matrix(1, 3), { n: 1, m: 2 }), RangeError, ["of 2", "got 3"]);
});

Deno.test("prune24 and pruneNM reject NaN, naming its position", () => {
  const w = matrix(2, 4, [1, 2, 3, 4, 5, 6, NaN, 8]);
  assertThrows(() => prune24(w), RangeError, ["prune to 2:4", "NaN", "row 1, column 2"]);
  assertThrows(() => pruneNM(w, { n: 1, m: 2 }), RangeError, ["prune to 1:2", "row 1, column 2"]);
});

Deno.test("pruneNM rejects bad n and m, naming the value", () => {
  const w = matrix(1, 4);
  assertThrows(() => pruneNM(w, { n: 0, m: 4 }), RangeError, ["n must be a positive", "got 0"]);
  assertThrows(() => pruneNM(w, { n: -1, m: 4 }), RangeError, ["n must be", "got -1"]);
  assertThrows(() => pruneNM(w, { n: 1.5, m: 4 }), RangeError, ["n must be", "got 1.5"]);
  assertThrows(() => pruneNM(w, { n: 1, m: 0 }), RangeError, ["m must be a positive", "got 0"]);
  assertThrows(() => pruneNM(w, { n: 1, m: 2.5 }), RangeError, ["m must be", "got 2.5"]);
  assertThrows(() => pruneNM(w, { n: 1, m: Infinity }), RangeError, ["got Infinity"]);
  assertThrows(() => pruneNM(w, { n: 3, m: 2 }), RangeError, ["prune to 3:2", "n = 3, m = 2"]);
  assertThrows(() => pruneNM(w, { n: NaN, m: 4 }), RangeError, ["got NaN"]);
  assertThrows(
    () => pruneNM(w, { n: "2", m: 4 } as unknown as { n: number; m: number }),
    TypeError,
    ["n = 2, m = 4", "numbers"],
  );
  assertThrows(
    () => pruneNM(w, undefined as unknown as { n: number; m: number }),
    TypeError,
    ["options", "got undefined"],
  );
});

Deno.test("prune24 rejects malformed matrices, naming the value", () => {
  const short = { rows: 2, cols: 4, data: new Float32Array(7) };
  assertThrows(() => prune24(short), RangeError, ["prune to 2:4", "2*4 = 8", "got 7"]);
  const plain = { rows: 1, cols: 4, data: [1, 2, 3, 4] } as unknown as Matrix;
  assertThrows(() => prune24(plain), TypeError, ["Float32Array", "got Array"]);
  assertThrows(() => prune24(null as unknown as Matrix), TypeError, ["got null"]);
});
