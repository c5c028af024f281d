/**
 * Test-vector cases of hard and soft 2:4 pruning, transposable masks and compressed storage (SPEC §1): the SPEC §9 cases from `./cases.ts`, edge cases and
 * seeded random cases, each output computed by the reference oracle. Part of `./vectors.ts`.
 *
 * @module
 */

import {
  EDGE_GROUPS_PRUNE_24,
  EDGE_GROUPS_SOFT_24,
  MAX_F32,
  MIN_SUBNORMAL_F32,
  SPEC_BETA,
  SPEC_COMPRESS,
  SPEC_HARD_24,
  SPEC_SOFT_24,
  SPEC_TRANSPOSABLE,
} from "./cases.ts";
import { compress24, decompress24 } from "./compress.ts";
import { type Matrix, matrix } from "./matrix.ts";
import { prune24, pruneNM } from "./prune.ts";
import { softThreshold24, ssteScale, type SsteScaleRecipe } from "./soft_threshold.ts";
import {
  transposableMask24,
  transposablePatternIndices,
  transposablePatterns,
} from "./transposable.ts";
import * as inputs from "./_vector_inputs.ts";
import type { TestVectorCase } from "./vectors.ts";

const SPEC9_HARD = "SPEC §9 hard 2:4 cases, one group per row (ties: the higher index wins).";
const SPEC9_SOFT =
  "SPEC §9 soft-threshold cases, one group per row (τ = the second-smallest magnitude).";

/** The fixed inputs and random-case settings of the one-matrix families below. */
const MATRIX_CASES: Record<"prune" | "soft", inputs.MatrixCasesSpec> = {
  prune: {
    spec9: [SPEC9_HARD, inputs.rowsMatrix(SPEC_HARD_24.map((c) => c.w))],
    edges: inputs.groupRows(EDGE_GROUPS_PRUNE_24),
    random: [inputs.STREAM.prune, -3, 3, ": many magnitude ties"],
  },
  soft: {
    spec9: [SPEC9_SOFT, inputs.rowsMatrix(SPEC_SOFT_24.map((c) => c.w))],
    edges: inputs.groupRows(EDGE_GROUPS_SOFT_24),
    random: [inputs.STREAM.soft, -3, 3],
  },
};

const pruneCase = inputs.caseBuilder((w: Matrix) => ({
  function: "prune24",
  params: { n: 2, m: 4 },
  inputs: { w: inputs.mat(w) },
  outputs: inputs.prunedOutputs("prune24(w)", w, prune24(w)),
}));

const pruneNMCase = inputs.caseBuilder((w: Matrix, n: number, m: number) => ({
  function: "pruneNM",
  params: { n, m },
  inputs: { w: inputs.mat(w) },
  outputs: inputs.prunedOutputs("pruneNM(w, { n, m })", w, pruneNM(w, { n, m })),
}));

export function pruneCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const cases = inputs.matrixCases(pruneCase, seed, shapes, MATRIX_CASES.prune);
  const nm: [number, number][] = [[1, 1], [1, 2], [1, 4], [2, 4], [3, 4], [4, 4], [2, 8], [4, 8]];
  nm.forEach(([n, m], k) => {
    const stream = inputs.STREAM.pruneNM + 2 * k;
    cases.push(pruneNMCase(
      `nm_${n}of${m}_random_12x24`,
      `${n}:${m} pruning of Irwin-Hall normal values (seed ${seed}, stream ${stream}).`,
      inputs.irwinHallMatrix(12, 24, { seed, stream }),
      n,
      m,
    ));
    cases.push(pruneNMCase(
      `nm_${n}of${m}_ties_12x24`,
      `${n}:${m} pruning of integers in [-2, 2] (seed ${seed}, stream ${stream + 1}).`,
      inputs.uniformIntegerMatrix(12, 24, { seed, stream: stream + 1, low: -2, high: 2 }),
      n,
      m,
    ));
  });
  return cases;
}

const softCase = inputs.caseBuilder((w: Matrix) => ({
  function: "softThreshold24",
  inputs: { w: inputs.mat(w) },
  outputs: inputs.prunedOutputs("softThreshold24(w)", w, softThreshold24(w)),
}));

/** β is a float64 sum over the tensor; a float32 port accumulates differently. */
const BETA_TOLERANCE = inputs.allclose(0, 1e-4);

const betaCase = inputs.caseBuilder((w: Matrix, recipe: SsteScaleRecipe) => ({
  function: "ssteScale",
  params: { recipe },
  inputs: { w: inputs.mat(w) },
  outputs: {
    beta: inputs.output(
      inputs.f64([], [ssteScale(w, { recipe })]),
      "ssteScale(w, { recipe })",
      BETA_TOLERANCE,
    ),
  },
}));

export function softCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const cases = inputs.matrixCases(softCase, seed, shapes, MATRIX_CASES.soft);
  cases.push(
    betaCase(
      "beta_spec9",
      "SPEC §9: β of the single group [0.1, -3, 2, 0.5] is 21/17.",
      inputs.rowsMatrix([SPEC_BETA.w]),
      "mse",
    ),
    betaCase(
      "beta_zeros",
      "S_soft(W) all zero (all-equal groups): β = 1.",
      inputs.rowsMatrix([[2, -2, 2, 2], [0, 0, 0, 0]]),
      "mse",
    ),
  );
  const recipes: SsteScaleRecipe[] = ["mse", "l1", "none"];
  shapes.forEach((s, k) => {
    const stream = inputs.STREAM.beta + k;
    const w = inputs.irwinHallMatrix(s.rows, s.cols, { seed, stream, scale: 0.02 });
    const which = k === 1 ? recipes : ["mse" as const];
    for (const recipe of which) {
      cases.push(betaCase(
        `beta_${recipe}_${inputs.shapeName(s)}`,
        `β (${recipe}) of Irwin-Hall normal weights × 0.02 (seed ${seed}, stream ${stream}); ` +
          `about 1.48 for "mse".`,
        w,
        recipe,
      ));
    }
  });
  return cases;
}

const transposableCase = inputs.caseBuilder((w: Matrix) => {
  const result = transposableMask24(w);
  const indices = transposablePatternIndices(w);
  return {
    function: "transposableMask24",
    inputs: { w: inputs.mat(w) },
    outputs: {
      ...inputs.prunedOutputs("transposableMask24(w)", w, result),
      pattern_indices: inputs.output(
        inputs.u8([w.rows / 4, w.cols / 4], indices),
        "transposablePatternIndices(w), block-row-major",
        inputs.EXACT,
      ),
      retained: inputs.output(
        inputs.f64([w.rows / 4, w.cols / 4], retainedMagnitudes(result.pruned)),
        "per 4×4 block, Σ|pruned| in float64 (row-major within the block)",
        inputs.allclose(0, 1e-6),
      ),
    },
  };
});

/** Σ |pruned| per 4×4 block, float64, row-major within the block. */
function retainedMagnitudes(pruned: Matrix): Float64Array {
  const blockCols = pruned.cols / 4;
  const out = new Float64Array((pruned.rows / 4) * blockCols);
  for (let bi = 0; bi < pruned.rows / 4; bi++) {
    for (let bj = 0; bj < blockCols; bj++) {
      let sum = 0;
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) {
          sum += Math.abs(pruned.data[(4 * bi + r) * pruned.cols + 4 * bj + c]);
        }
      }
      out[bi * blockCols + bj] = sum;
    }
  }
  return out;
}

export function transposableCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const patterns = transposablePatterns();
  const patternMasks = new Uint8Array(90 * 16);
  patterns.forEach((word, p) => {
    for (let k = 0; k < 16; k++) patternMasks[16 * p + k] = (word >> (15 - k)) & 1;
  });
  const specBlock = SPEC_TRANSPOSABLE[0].block;
  const I = Infinity;
  const cases: TestVectorCase[] = [
    {
      name: "patterns",
      function: "transposablePatterns",
      description:
        "The 90 transposable 4×4 patterns in pattern-number order (descending 16-bit row-major " +
        "words, row 0 in the high bits); #0 is 0xCC33.",
      params: {},
      inputs: {},
      outputs: {
        words: inputs.output(inputs.u32([90], patterns), "transposablePatterns()", inputs.EXACT),
        masks: inputs.output(
          inputs.u8([90, 4, 4], patternMasks),
          "entry (p, r, c) = bit 15 − (4r + c) of transposablePatterns()[p]",
          inputs.EXACT,
        ),
      },
    },
    ...inputs.matrixCases(transposableCase, seed, shapes, {
      spec9: [
        "SPEC §9 blocks side by side: the unique best #54 (retained 18), arange(1..16) (all 90 " +
        "tie at 68 → #0), all zeros (→ #0).",
        inputs.blocksMatrix(SPEC_TRANSPOSABLE.map((c) => c.block)),
      ],
      edges: [
        "Blocks: one Inf (the lowest-numbered pattern keeping it wins), Infs at opposite corners, " +
        "all Inf, signed zeros, subnormals, integer ties, the SPEC block negated, float32 " +
        "extremes (sums overflow float32: sum in float64).",
        inputs.blocksMatrix([
          [[I, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]],
          [[I, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, -I]],
          [[I, -I, I, -I], [-I, I, -I, I], [I, I, I, I], [-I, -I, -I, -I]],
          [[-0, 0, -0, 0], [0, -0, 0, -0], [-0, -0, 0, 0], [0, 0, -0, -0]],
          [1, 7, 3, 12].map((k, r) =>
            [k, 2 * k + r, 5 + r, 9 - r].map((j) => j * MIN_SUBNORMAL_F32)
          ),
          [[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]],
          specBlock.map((row) => row.map((v) => -v)),
          [[MAX_F32, -MAX_F32, 1, 2], [3, MAX_F32, MAX_F32, 0], [0, 0, 1, 1], [
            1,
            0,
            0,
            1,
          ]],
        ]),
      ],
      random: [inputs.STREAM.transposable, -2, 2],
    }),
  ];
  return cases;
}

const compressCase = inputs.caseBuilder((a: Matrix) => {
  const c = compress24(a);
  const words = c.meta.length;
  return {
    function: "compress24",
    inputs: { a: inputs.mat(a) },
    outputs: {
      values: inputs.output(inputs.mat(c.values), "compress24(a).values", inputs.EXACT),
      meta: inputs.output(inputs.u32([words], c.meta), "compress24(a).meta", inputs.EXACT),
      decompressed: inputs.output(
        inputs.mat(decompress24(c)),
        "decompress24(compress24(a))",
        inputs.EXACT,
      ),
    },
  };
});

export function compressCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const I = Infinity;
  const cases: TestVectorCase[] = [
    compressCase(
      "spec9",
      "SPEC §9: the row [0.1,-3,2,0.5, 4,0.2,-0.3,1, 0.5,1,-2,3, -1,2,0.1,0.2] pruned 2:4 → " +
        "values [-3,2, 4,1, -2,3, -1,2], codes (9, 12, 14, 4).",
      prune24(matrix(1, 16, SPEC_COMPRESS.row)).pruned,
    ),
    compressCase(
      "edges",
      "All six codes; groups with fewer than two non-zeros (positions chosen by the prune24 " +
        "rule); signed zeros; ±Inf; subnormal ties; 12 groups, so the second meta word holds 4 " +
        "codes and zero high bits.",
      matrix(
        3,
        16,
        [
          [0, -3, 2, 0, 4, 0, 0, 1, 0, 0, -2, 3, -1, 2, 0, 0],
          [0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 5, 5, 0, 0, 0],
          [0, 0, 0, 0, -0, 0, 0, -0, I, 0, -I, 0, MIN_SUBNORMAL_F32, 0, 0, -MIN_SUBNORMAL_F32],
        ].flat(),
      ),
    ),
  ];
  shapes.forEach((s, k) => {
    const w = inputs.irwinHallMatrix(s.rows, s.cols, { seed, stream: inputs.STREAM.compress + k });
    cases.push(compressCase(
      `random_${inputs.shapeName(s)}`,
      `prune24 of Irwin-Hall normal values (seed ${seed}, stream ${inputs.STREAM.compress + k}).`,
      prune24(w).pruned,
    ));
  });
  const t = inputs.irwinHallMatrix(12, 20, { seed, stream: inputs.STREAM.compressTransposable });
  cases.push(compressCase(
    "transposable_12x20",
    `transposableMask24 of Irwin-Hall normal values (seed ${seed}, stream ${inputs.STREAM.compressTransposable}).`,
    transposableMask24(t).pruned,
  ));
  return cases;
}
