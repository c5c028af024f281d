/**
 * Test vectors for other backends (PyTorch, Triton, CUDA, JAX): the inputs and outputs of every
 * reference oracle, as named tensors a port can read natively (safetensors) and check against.
 *
 * A {@linkcode TestVectorSet} holds one {@linkcode TestVectorFamily} per function family (hard
 * pruning, soft threshold, transposable masks, compressed storage, Philox, MVUE, masked decay,
 * flip rate, FP8, gated activations). Each {@linkcode TestVectorCase} is one call: named input
 * tensors, parameters, and named output tensors, each output with the expression that produces it
 * from the inputs and the tolerance a port should use. Cases come in three kinds: the hand-derived
 * cases of SPEC §9 (`spec9`), edge cases (ties, zeros, `±0`, `±Inf`, subnormals, extremes; only
 * what the function accepts), and seeded random cases at a few shapes.
 *
 * Random inputs come from two deterministic generators built on the project's Philox4x32-10
 * (`./rng.ts`); both use only exact or correctly rounded IEEE operations, so any port can
 * regenerate them bit for bit (they are stored in the files anyway):
 *
 * - {@linkcode irwinHallMatrix}: approximately standard normal values, the sum of four uniforms;
 * - {@linkcode uniformIntegerMatrix}: small integers, which make magnitude ties frequent.
 *
 * @module
 */

import { type Matrix, matrix } from "../core/matrix.ts";
import { encodeSafetensors, type SafetensorsTensor } from "../core/safetensors.ts";
export type { Matrix } from "../core/matrix.ts";
export type { SafetensorsDType, SafetensorsTensor } from "../core/safetensors.ts";
import { compress24, decompress24 } from "./compress.ts";
import { flipCount, flipRate } from "./flip_rate.ts";
import { decodeFp8, encodeFp8, FP8_MAX, type Fp8Format, quantizeFp8 } from "./fp8.ts";
import { geglu, gegluBackward, swiglu, swigluBackward } from "./gated.ts";
import { maskedDecay } from "./masked_decay.ts";
import { mvue24, mvue24Probabilities, mvue24WithUniforms } from "./mvue.ts";
import { prune24, pruneNM } from "./prune.ts";
import { philox4x32, uniform4, uniforms } from "./rng.ts";
import { softThreshold24, ssteScale, type SsteScaleRecipe } from "./soft_threshold.ts";
import {
  transposableMask24,
  transposablePatternIndices,
  transposablePatterns,
} from "./transposable.ts";

/** The `format` tag of every file and index this module describes. */
export const TEST_VECTOR_FORMAT = "twofour-test-vectors";
/** The layout version; bumped when names, dtypes or the index schema change. */
export const TEST_VECTOR_VERSION = 1;
/** The input-generator seed {@linkcode buildTestVectors} uses when none is given. */
export const DEFAULT_TEST_VECTOR_SEED = 2024;

/**
 * How a port compares its output with a vector's: `exact` means equal values (NaN matches NaN,
 * `-0` equals `0`); `allclose` means `|actual − expected| ≤ atol + rtol·|expected|` for finite
 * values, with NaN matching only NaN and `±Inf` only the same infinity.
 */
export type TestVectorTolerance =
  | { kind: "exact" }
  | { kind: "allclose"; atol: number; rtol: number };

/** One output tensor of a case. */
export interface TestVectorOutput {
  /** The reference's value. */
  tensor: SafetensorsTensor;
  /** The reference call that produces it from the case's inputs and parameters. */
  expression: string;
  /** How a port should compare (the reference itself matches bit for bit). */
  tolerance: TestVectorTolerance;
}

/** A parameter value of a case (kept to JSON scalars so every language reads it). */
export type TestVectorParam = number | string | boolean;

/** One call of one reference function: inputs, parameters, outputs. */
export interface TestVectorCase {
  /** Unique within its family; the tensor names are `<name>/input/<x>` and `<name>/output/<y>`. */
  name: string;
  /**
   * The reference function called (`prune24`, `mvue24`, …). Some cases also carry the output of
   * a companion call on the same inputs (a backward, the decoded codes, the pattern indices);
   * each output's `expression` names the exact call.
   */
  function: string;
  /** What the case exercises, in a sentence. */
  description: string;
  /** The non-tensor arguments (`n`, `m`, `seed`, `stream`, `format`, `recipe`, `alpha`, …). */
  params: Record<string, TestVectorParam>;
  /** The input tensors by name. */
  inputs: Record<string, SafetensorsTensor>;
  /** The output tensors by name. */
  outputs: Record<string, TestVectorOutput>;
}

/** The cases of one function family; written as one safetensors file. */
export interface TestVectorFamily {
  /** The family name, also the file's base name (`prune24` → `prune24.safetensors`). */
  name: string;
  /** The file name. */
  file: string;
  /** Which reference module and SPEC section the family covers. */
  description: string;
  /** The cases, in a fixed order. */
  cases: TestVectorCase[];
}

/** Everything {@linkcode buildTestVectors} produces. */
export interface TestVectorSet {
  /** The seed of the input generators. */
  seed: number;
  /** Whether the large shape (768×3072) was included. */
  large: boolean;
  /** The families, in a fixed order. */
  families: TestVectorFamily[];
}

/** Options of {@linkcode buildTestVectors}. */
export interface BuildTestVectorsOptions {
  /** The seed of the random inputs, an integer in `[0, 2^53)`; default 2024. */
  seed?: number;
  /** Also build every random case at 768×3072 (GPT-2 124M's FFN weight); default `false`. */
  large?: boolean;
}

/** Options of {@linkcode irwinHallMatrix}. */
export interface IrwinHallMatrixOptions {
  /** The Philox seed, an integer in `[0, 2^53)`. */
  seed: number;
  /** The Philox stream, an integer in `[0, 2^32)`. */
  stream: number;
  /** A multiplier of every value; default 1. */
  scale?: number;
}

/** Options of {@linkcode uniformIntegerMatrix}. */
export interface UniformIntegerMatrixOptions {
  /** The Philox seed, an integer in `[0, 2^53)`. */
  seed: number;
  /** The Philox stream, an integer in `[0, 2^32)`. */
  stream: number;
  /** The smallest value, an integer. */
  low: number;
  /** The largest value, an integer `≥ low`. */
  high: number;
}

const SQRT3 = Math.sqrt(3);
const FLOAT32_MAX = 3.4028234663852886e38;
/** The smallest positive float32 subnormal, 2^-149. */
const MIN_SUBNORMAL = 2 ** -149;
/** The smallest positive normal float32, 2^-126. */
const MIN_NORMAL = 2 ** -126;

/**
 * A matrix of approximately standard normal values from the project's Philox generator: entry `i`
 * (row-major) is `f32((((u0 + u1) + u2) + u3 − 2) · √3 · scale)` where `(u0, u1, u2, u3) =
 * uniform4(seed, stream, i)`, evaluated in float64 left to right and rounded once to float32. The
 * uniforms are multiples of 2^-24, so the sum is exact; `√3` is the correctly rounded float64
 * square root. Mean 0, variance `scale²`, values within `±2√3·scale` (an Irwin–Hall sum of four
 * uniforms, standardised).
 *
 * @param rows Number of rows.
 * @param cols Number of columns.
 * @param options `{ seed, stream, scale }`.
 * @returns A fresh matrix.
 * @throws {RangeError} If a dimension is invalid, `rows · cols > 2^32`, or the seed or stream is
 * out of range.
 * @example
 * ```ts
 * import { uniform4 } from "./rng.ts";
 * import { irwinHallMatrix } from "./vectors.ts";
 * const m = irwinHallMatrix(2, 4, { seed: 1, stream: 3 });
 * const [u0, u1, u2, u3] = uniform4(1, 3, 5);
 * if (m.data[5] !== Math.fround((u0 + u1 + u2 + u3 - 2) * Math.sqrt(3))) throw new Error("layout");
 * ```
 */
export function irwinHallMatrix(
  rows: number,
  cols: number,
  options: IrwinHallMatrixOptions,
): Matrix {
  const out = matrix(rows, cols);
  checkCount(out.data.length, "generate an Irwin-Hall matrix");
  const scale = options.scale ?? 1;
  uniform4(options.seed, options.stream, 0); // validates seed and stream even when empty
  for (let i = 0; i < out.data.length; i++) {
    const [u0, u1, u2, u3] = uniform4(options.seed, options.stream, i);
    out.data[i] = (u0 + u1 + u2 + u3 - 2) * SQRT3 * scale;
  }
  return out;
}

/**
 * A matrix of integers drawn uniformly from `[low, high]` by the project's Philox generator:
 * entry `i` (row-major) is `low + floor(u_i · (high − low + 1))` with `u = uniforms(seed, stream,
 * rows · cols)` (so `u_i` is word `i % 4` of counter `floor(i / 4)`). Exact in float64. With a
 * narrow range the groups are full of magnitude ties, which exercise every tie rule.
 *
 * @param rows Number of rows.
 * @param cols Number of columns.
 * @param options `{ seed, stream, low, high }`.
 * @returns A fresh matrix.
 * @throws {RangeError} If a dimension is invalid, `low`/`high` are not integers with
 * `low ≤ high` and magnitudes at most 2^24, or the seed or stream is out of range.
 * @example
 * ```ts
 * import { uniformIntegerMatrix } from "./vectors.ts";
 * const m = uniformIntegerMatrix(4, 8, { seed: 1, stream: 2, low: -3, high: 3 });
 * if (m.data.some((v) => !Number.isInteger(v) || v < -3 || v > 3)) throw new Error("range");
 * ```
 */
export function uniformIntegerMatrix(
  rows: number,
  cols: number,
  options: UniformIntegerMatrixOptions,
): Matrix {
  const action = "generate a uniform integer matrix";
  const { low, high } = options;
  if (
    !Number.isInteger(low) || !Number.isInteger(high) || low > high ||
    Math.abs(low) > 2 ** 24 || Math.abs(high) > 2 ** 24
  ) {
    throw new RangeError(
      `Cannot ${action}: low and high must be integers with low <= high and |value| <= 2^24, got low = ${low}, high = ${high}`,
    );
  }
  const out = matrix(rows, cols);
  checkCount(out.data.length, action);
  const u = uniforms(options.seed, options.stream, out.data.length);
  const span = high - low + 1;
  for (let i = 0; i < u.length; i++) out.data[i] = low + Math.floor(u[i] * span);
  return out;
}

function checkCount(count: number, action: string): void {
  if (count > 2 ** 32) {
    throw new RangeError(`Cannot ${action}: at most 2^32 entries, got ${count}`);
  }
}

// ---- tensors and tolerances ----------------------------------------------------------------

const EXACT: TestVectorTolerance = { kind: "exact" };

function allclose(atol: number, rtol: number): TestVectorTolerance {
  return { kind: "allclose", atol, rtol };
}

function f32(shape: number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "F32", shape, data: Float32Array.from(data) };
}

function f64(shape: number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "F64", shape, data: Float64Array.from(data) };
}

function u8(shape: number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "U8", shape, data: Uint8Array.from(data) };
}

function u32(shape: number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "U32", shape, data: Uint32Array.from(data) };
}

/** A matrix as an `F32 [rows, cols]` tensor (a copy; `-0` and NaN payloads kept). */
function mat(m: Matrix): SafetensorsTensor {
  return { dtype: "F32", shape: [m.rows, m.cols], data: m.data.slice() };
}

/** A 0/1 mask of a `[rows, cols]` matrix as a `U8 [rows, cols]` tensor. */
function maskTensor(mask: Uint8Array, rows: number, cols: number): SafetensorsTensor {
  return { dtype: "U8", shape: [rows, cols], data: mask.slice() };
}

function output(
  tensor: SafetensorsTensor,
  expression: string,
  tolerance: TestVectorTolerance,
): TestVectorOutput {
  return { tensor, expression, tolerance };
}

/** A matrix made of rows of four (`rows` arrays, each a multiple of 4 long). */
function rowsMatrix(rows: number[][]): Matrix {
  return matrix(rows.length, rows[0].length, rows.flat());
}

/** A `4 × 4k` matrix holding `k` 4×4 blocks side by side. */
function blocksMatrix(blocks: number[][][]): Matrix {
  const cols = 4 * blocks.length;
  const m = matrix(4, cols);
  blocks.forEach((block, b) => {
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) m.data[r * cols + 4 * b + c] = block[r][c];
    }
  });
  return m;
}

interface Shape {
  rows: number;
  cols: number;
}

function shapeName(s: Shape): string {
  return `${s.rows}x${s.cols}`;
}

/** Offsets of the Philox streams of each family's random inputs (one stream per tensor). */
const STREAM = {
  prune: 100,
  pruneTies: 120,
  pruneNM: 150,
  soft: 200,
  softTies: 220,
  beta: 250,
  transposable: 300,
  transposableTies: 320,
  compress: 400,
  compressTransposable: 450,
  mvue: 500,
  mvueProbabilities: 540,
  mvueSampling: 550,
  decay: 600,
  flip: 700,
  fp8: 800,
  gated: 900,
} as const;

// ---- families ------------------------------------------------------------------------------

const SPEC_GROUPS = [
  [0.1, -3, 2, 0.5],
  [1, 1, 1, 1],
  [0, 0, 0, 0],
  [1, -1, 0.5, 0.5],
  [2, 1, 1, 0],
  [3, -3, 3, -3],
  [1, 2, 3, 4],
  [-1, 2, -3, 4],
  [0.3, -0.3, 300, 1e-3],
];

function pruneCase(name: string, description: string, w: Matrix): TestVectorCase {
  const { pruned, mask } = prune24(w);
  return {
    name,
    function: "prune24",
    description,
    params: { n: 2, m: 4 },
    inputs: { w: mat(w) },
    outputs: {
      pruned: output(mat(pruned), "prune24(w).pruned", EXACT),
      mask: output(maskTensor(mask, w.rows, w.cols), "prune24(w).mask", EXACT),
    },
  };
}

function pruneNMCase(
  name: string,
  description: string,
  w: Matrix,
  n: number,
  m: number,
): TestVectorCase {
  const { pruned, mask } = pruneNM(w, { n, m });
  return {
    name,
    function: "pruneNM",
    description,
    params: { n, m },
    inputs: { w: mat(w) },
    outputs: {
      pruned: output(mat(pruned), "pruneNM(w, { n, m }).pruned", EXACT),
      mask: output(maskTensor(mask, w.rows, w.cols), "pruneNM(w, { n, m }).mask", EXACT),
    },
  };
}

function pruneFamily(seed: number, shapes: Shape[], smallShapes: Shape[]): TestVectorFamily {
  const cases: TestVectorCase[] = [
    pruneCase(
      "spec9",
      "SPEC §9 hard 2:4 cases, one group per row (ties: the higher index wins).",
      rowsMatrix(SPEC_GROUPS),
    ),
    pruneCase(
      "edges",
      "±Inf as magnitudes (Inf and -Inf tie), signed zeros, subnormals, float32 extremes, " +
        "sign-only ties; one group per row.",
      rowsMatrix([
        [Infinity, 1, 2, 3],
        [1, -Infinity, Infinity, 0],
        [Infinity, Infinity, Infinity, Infinity],
        [-Infinity, 5, -Infinity, 5],
        [-0, 0, -0, 0],
        [MIN_SUBNORMAL, 2 * MIN_SUBNORMAL, 2 ** -130, 0],
        [3, MIN_SUBNORMAL, -MIN_SUBNORMAL, 0],
        [FLOAT32_MAX, -FLOAT32_MAX, 1, -1],
        [-2, 2, -2, 2],
        [5, 0, 0, 0],
        [0, 0, 0, 5],
        [MIN_NORMAL, -(2 ** -127), 2 ** -127, -MIN_NORMAL],
      ]),
    ),
  ];
  shapes.forEach((s, k) => {
    cases.push(pruneCase(
      `random_${shapeName(s)}`,
      `Irwin-Hall normal values (seed ${seed}, stream ${STREAM.prune + k}).`,
      irwinHallMatrix(s.rows, s.cols, { seed, stream: STREAM.prune + k }),
    ));
  });
  smallShapes.forEach((s, k) => {
    cases.push(pruneCase(
      `ties_${shapeName(s)}`,
      `Integers in [-3, 3] (seed ${seed}, stream ${STREAM.pruneTies + k}): many magnitude ties.`,
      uniformIntegerMatrix(s.rows, s.cols, {
        seed,
        stream: STREAM.pruneTies + k,
        low: -3,
        high: 3,
      }),
    ));
  });
  const nm: [number, number][] = [[1, 1], [1, 2], [1, 4], [2, 4], [3, 4], [4, 4], [2, 8], [4, 8]];
  nm.forEach(([n, m], k) => {
    const stream = STREAM.pruneNM + 2 * k;
    cases.push(pruneNMCase(
      `nm_${n}of${m}_random_12x24`,
      `${n}:${m} pruning of Irwin-Hall normal values (seed ${seed}, stream ${stream}).`,
      irwinHallMatrix(12, 24, { seed, stream }),
      n,
      m,
    ));
    cases.push(pruneNMCase(
      `nm_${n}of${m}_ties_12x24`,
      `${n}:${m} pruning of integers in [-2, 2] (seed ${seed}, stream ${stream + 1}).`,
      uniformIntegerMatrix(12, 24, { seed, stream: stream + 1, low: -2, high: 2 }),
      n,
      m,
    ));
  });
  return {
    name: "prune24",
    file: "prune24.safetensors",
    description: "Hard N:M magnitude pruning, reference/prune.ts (SPEC §1.1): prune24, pruneNM.",
    cases,
  };
}

function softCase(name: string, description: string, w: Matrix): TestVectorCase {
  const { pruned, mask } = softThreshold24(w);
  return {
    name,
    function: "softThreshold24",
    description,
    params: {},
    inputs: { w: mat(w) },
    outputs: {
      pruned: output(mat(pruned), "softThreshold24(w).pruned", EXACT),
      mask: output(maskTensor(mask, w.rows, w.cols), "softThreshold24(w).mask", EXACT),
    },
  };
}

/** β is a float64 sum over the tensor; a float32 port accumulates differently. */
const BETA_TOLERANCE = allclose(0, 1e-4);

function betaCase(
  name: string,
  description: string,
  w: Matrix,
  recipe: SsteScaleRecipe,
): TestVectorCase {
  return {
    name,
    function: "ssteScale",
    description,
    params: { recipe },
    inputs: { w: mat(w) },
    outputs: {
      beta: output(f64([], [ssteScale(w, { recipe })]), "ssteScale(w, { recipe })", BETA_TOLERANCE),
    },
  };
}

function softFamily(seed: number, shapes: Shape[], smallShapes: Shape[]): TestVectorFamily {
  const cases: TestVectorCase[] = [
    softCase(
      "spec9",
      "SPEC §9 soft-threshold cases, one group per row (τ = the second-smallest magnitude).",
      rowsMatrix([
        [0.1, -3, 2, 0.5],
        [1, 1, 1, 1],
        [1, -1, 0.5, 0.5],
        [2, 1, 1, 0],
        [3, -3, 3, -3],
        [1, 2, 3, 4],
        [-1, 2, -3, 4],
        [0, 0, 0, 5],
      ]),
    ),
    softCase(
      "edges",
      "Kept ±Inf with finite τ gives ±Inf; τ = Inf gives zeros (never Inf − Inf); signed zeros; " +
        "subnormals; 2nd/3rd magnitude ties; float32 extremes; one group per row.",
      rowsMatrix([
        [Infinity, 1, 2, 3],
        [Infinity, Infinity, Infinity, 1],
        [Infinity, -Infinity, 0, 0],
        [-Infinity, 1, -Infinity, 2],
        [-0, 0, -0, 0],
        [MIN_SUBNORMAL, 3 * MIN_SUBNORMAL, 2 ** -130, -(2 ** -140)],
        [1, 2, 2, 3],
        [FLOAT32_MAX, -FLOAT32_MAX, 0, 1],
        [-5, 5, -5, 5],
        [1e-3, -2e-3, 3e30, -4e30],
      ]),
    ),
  ];
  shapes.forEach((s, k) => {
    cases.push(softCase(
      `random_${shapeName(s)}`,
      `Irwin-Hall normal values (seed ${seed}, stream ${STREAM.soft + k}).`,
      irwinHallMatrix(s.rows, s.cols, { seed, stream: STREAM.soft + k }),
    ));
  });
  smallShapes.forEach((s, k) => {
    cases.push(softCase(
      `ties_${shapeName(s)}`,
      `Integers in [-3, 3] (seed ${seed}, stream ${STREAM.softTies + k}).`,
      uniformIntegerMatrix(s.rows, s.cols, { seed, stream: STREAM.softTies + k, low: -3, high: 3 }),
    ));
  });
  cases.push(
    betaCase(
      "beta_spec9",
      "SPEC §9: β of the single group [0.1, -3, 2, 0.5] is 21/17.",
      rowsMatrix([[0.1, -3, 2, 0.5]]),
      "mse",
    ),
    betaCase(
      "beta_zeros",
      "S_soft(W) all zero (all-equal groups): β = 1.",
      rowsMatrix([[2, -2, 2, 2], [0, 0, 0, 0]]),
      "mse",
    ),
  );
  const recipes: SsteScaleRecipe[] = ["mse", "l1", "none"];
  shapes.forEach((s, k) => {
    const stream = STREAM.beta + k;
    const w = irwinHallMatrix(s.rows, s.cols, { seed, stream, scale: 0.02 });
    const which = k === 1 ? recipes : ["mse" as const];
    for (const recipe of which) {
      cases.push(betaCase(
        `beta_${recipe}_${shapeName(s)}`,
        `β (${recipe}) of Irwin-Hall normal weights × 0.02 (seed ${seed}, stream ${stream}); ` +
          `about 1.48 for "mse".`,
        w,
        recipe,
      ));
    }
  });
  return {
    name: "soft_threshold24",
    file: "soft_threshold24.safetensors",
    description:
      "Soft-threshold 2:4 and the S-STE scale β, reference/soft_threshold.ts (SPEC §1.2, §1.3): " +
      "softThreshold24, ssteScale.",
    cases,
  };
}

function transposableCase(name: string, description: string, w: Matrix): TestVectorCase {
  const { pruned, mask } = transposableMask24(w);
  const indices = transposablePatternIndices(w);
  return {
    name,
    function: "transposableMask24",
    description,
    params: {},
    inputs: { w: mat(w) },
    outputs: {
      pruned: output(mat(pruned), "transposableMask24(w).pruned", EXACT),
      mask: output(maskTensor(mask, w.rows, w.cols), "transposableMask24(w).mask", EXACT),
      pattern_indices: output(
        u8([w.rows / 4, w.cols / 4], indices),
        "transposablePatternIndices(w), block-row-major",
        EXACT,
      ),
      retained: output(
        f64([w.rows / 4, w.cols / 4], retainedMagnitudes(pruned)),
        "per 4×4 block, Σ|pruned| in float64 (row-major within the block)",
        allclose(0, 1e-6),
      ),
    },
  };
}

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

function transposableFamily(seed: number, shapes: Shape[], smallShapes: Shape[]): TestVectorFamily {
  const patterns = transposablePatterns();
  const patternMasks = new Uint8Array(90 * 16);
  patterns.forEach((word, p) => {
    for (let k = 0; k < 16; k++) patternMasks[16 * p + k] = (word >> (15 - k)) & 1;
  });
  const arange = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]];
  const specBlock = [[0.1, -3, 2, 0.5], [4, 0.2, -0.3, 1], [0.5, 1, -2, 3], [-1, 2, 0.1, 0.2]];
  const zeros = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
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
        words: output(u32([90], patterns), "transposablePatterns()", EXACT),
        masks: output(
          u8([90, 4, 4], patternMasks),
          "entry (p, r, c) = bit 15 − (4r + c) of transposablePatterns()[p]",
          EXACT,
        ),
      },
    },
    transposableCase(
      "spec9",
      "SPEC §9 blocks side by side: the unique best #54 (retained 18), arange(1..16) (all 90 " +
        "tie at 68 → #0), all zeros (→ #0).",
      blocksMatrix([specBlock, arange, zeros]),
    ),
    transposableCase(
      "edges",
      "Blocks: one Inf (the lowest-numbered pattern keeping it wins), Infs at opposite corners, " +
        "all Inf, signed zeros, subnormals, integer ties, the SPEC block negated, float32 " +
        "extremes (sums overflow float32: sum in float64).",
      blocksMatrix([
        [[I, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]],
        [[I, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, -I]],
        [[I, -I, I, -I], [-I, I, -I, I], [I, I, I, I], [-I, -I, -I, -I]],
        [[-0, 0, -0, 0], [0, -0, 0, -0], [-0, -0, 0, 0], [0, 0, -0, -0]],
        [1, 7, 3, 12].map((k, r) => [k, 2 * k + r, 5 + r, 9 - r].map((j) => j * MIN_SUBNORMAL)),
        [[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]],
        specBlock.map((row) => row.map((v) => -v)),
        [[FLOAT32_MAX, -FLOAT32_MAX, 1, 2], [3, FLOAT32_MAX, FLOAT32_MAX, 0], [0, 0, 1, 1], [
          1,
          0,
          0,
          1,
        ]],
      ]),
    ),
  ];
  shapes.forEach((s, k) => {
    cases.push(transposableCase(
      `random_${shapeName(s)}`,
      `Irwin-Hall normal values (seed ${seed}, stream ${STREAM.transposable + k}).`,
      irwinHallMatrix(s.rows, s.cols, { seed, stream: STREAM.transposable + k }),
    ));
  });
  smallShapes.forEach((s, k) => {
    cases.push(transposableCase(
      `ties_${shapeName(s)}`,
      `Integers in [-2, 2] (seed ${seed}, stream ${STREAM.transposableTies + k}).`,
      uniformIntegerMatrix(s.rows, s.cols, {
        seed,
        stream: STREAM.transposableTies + k,
        low: -2,
        high: 2,
      }),
    ));
  });
  return {
    name: "transposable24",
    file: "transposable24.safetensors",
    description:
      "Transposable 2:4 masks, reference/transposable.ts (SPEC §1.4): transposableMask24, " +
      "transposablePatternIndices, transposablePatterns.",
    cases,
  };
}

function compressCase(name: string, description: string, a: Matrix): TestVectorCase {
  const c = compress24(a);
  const words = c.meta.length;
  return {
    name,
    function: "compress24",
    description,
    params: {},
    inputs: { a: mat(a) },
    outputs: {
      values: output(mat(c.values), "compress24(a).values", EXACT),
      meta: output(u32([words], c.meta), "compress24(a).meta", EXACT),
      decompressed: output(mat(decompress24(c)), "decompress24(compress24(a))", EXACT),
    },
  };
}

function compressFamily(seed: number, shapes: Shape[]): TestVectorFamily {
  const I = Infinity;
  const cases: TestVectorCase[] = [
    compressCase(
      "spec9",
      "SPEC §9: the row [0.1,-3,2,0.5, 4,0.2,-0.3,1, 0.5,1,-2,3, -1,2,0.1,0.2] pruned 2:4 → " +
        "values [-3,2, 4,1, -2,3, -1,2], codes (9, 12, 14, 4).",
      prune24(matrix(1, 16, [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2]))
        .pruned,
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
          [0, 0, 0, 0, -0, 0, 0, -0, I, 0, -I, 0, MIN_SUBNORMAL, 0, 0, -MIN_SUBNORMAL],
        ].flat(),
      ),
    ),
  ];
  shapes.forEach((s, k) => {
    const w = irwinHallMatrix(s.rows, s.cols, { seed, stream: STREAM.compress + k });
    cases.push(compressCase(
      `random_${shapeName(s)}`,
      `prune24 of Irwin-Hall normal values (seed ${seed}, stream ${STREAM.compress + k}).`,
      prune24(w).pruned,
    ));
  });
  const t = irwinHallMatrix(12, 20, { seed, stream: STREAM.compressTransposable });
  cases.push(compressCase(
    "transposable_12x20",
    `transposableMask24 of Irwin-Hall normal values (seed ${seed}, stream ${STREAM.compressTransposable}).`,
    transposableMask24(t).pruned,
  ));
  return {
    name: "compress24",
    file: "compress24.safetensors",
    description:
      "Compressed 2:4 storage, reference/compress.ts (SPEC §1.5): compress24, decompress24. " +
      "Codes idx0 | idx1 << 2, eight per U32 word, group g in bits 4(g % 8)..4(g % 8)+3.",
    cases,
  };
}

function philoxFamily(): TestVectorFamily {
  const ones = 0xffffffff;
  const kat: [number[], number[]][] = [
    [[0, 0, 0, 0], [0, 0]],
    [[ones, ones, ones, ones], [ones, ones]],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]],
    [[1, 0, 0, 0], [0, 0]],
    [[0, 1, 0, 0], [0, 0]],
    [[0, 0, 1, 0], [0, 0]],
    [[0, 0, 0, 1], [0, 0]],
    [[0, 0, 0, 0], [1, 0]],
    [[0, 0, 0, 0], [0, 1]],
    [[0x7fffffff, 0x80000000, 0xfffeffff, 0x10000], [0x1ffff, 0xffff]],
  ];
  const counters = kat.flatMap(([c]) => c);
  const keys = kat.flatMap(([, k]) => k);
  const words = kat.flatMap(([c, k]) =>
    philox4x32(c as [number, number, number, number], k as [number, number])
  );
  // (seed, stream, index) triples: seeds past 2^32 (key word 1 in use), extreme streams/indices.
  const triples: [number, number, number][] = [
    [0, 0, 0],
    [1, 0, 0],
    [42, 0, 7],
    [2024, 3, 1000],
    [2 ** 32 - 1, 1, 2],
    [2 ** 32, 0, 0],
    [2 ** 32 + 5, 7, 123456],
    [2 ** 53 - 1, 2 ** 32 - 1, 2 ** 32 - 1],
    [123456789012345, 65536, 65535],
  ];
  const tripleWords = triples.flatMap(([seed, stream, index]) =>
    philox4x32([index, stream, 0, 0], [seed % 2 ** 32, Math.floor(seed / 2 ** 32)])
  );
  const tripleUniforms = triples.flatMap(([seed, stream, index]) => uniform4(seed, stream, index));
  const cases: TestVectorCase[] = [
    {
      name: "kat",
      function: "philox4x32",
      description:
        "Philox4x32-10 known answers: the three Random123 vectors (zeros, all ones, π digits) " +
        "and single-bit counters and keys.",
      params: {},
      inputs: {
        counters: u32([kat.length, 4], counters),
        keys: u32([kat.length, 2], keys),
      },
      outputs: {
        words: output(u32([kat.length, 4], words), "philox4x32(counters[i], keys[i])", EXACT),
      },
    },
    {
      name: "uniform4",
      function: "uniform4",
      description:
        "uniform4(seed, stream, index) for seeds up to 2^53 - 1 (seed = seed_hi · 2^32 + " +
        "seed_lo), streams and indices up to 2^32 - 1; words are the Philox output before the " +
        "word-to-uniform map u = ((x >>> 9) + 0.5) · 2^-23.",
      params: {},
      inputs: {
        seed_lo: u32([triples.length], triples.map(([s]) => s % 2 ** 32)),
        seed_hi: u32([triples.length], triples.map(([s]) => Math.floor(s / 2 ** 32))),
        stream: u32([triples.length], triples.map(([, s]) => s)),
        index: u32([triples.length], triples.map(([, , i]) => i)),
      },
      outputs: {
        uniforms: output(
          f32([triples.length, 4], tripleUniforms),
          "uniform4(seed_hi[i] · 2^32 + seed_lo[i], stream[i], index[i])",
          EXACT,
        ),
        words: output(
          u32([triples.length, 4], tripleWords),
          "philox4x32([index[i], stream[i], 0, 0], [seed_lo[i], seed_hi[i]])",
          EXACT,
        ),
      },
    },
  ];
  const streams: [number, number, number][] = [[0, 0, 64], [2024, 5, 37], [
    2 ** 40 + 3,
    2 ** 31,
    16,
  ]];
  for (const [seed, stream, count] of streams) {
    cases.push({
      name: `uniforms_seed${seed}_stream${stream}`,
      function: "uniforms",
      description:
        `${count} consecutive uniforms of one stream: entry i is word i % 4 of counter ` +
        `floor(i / 4).`,
      params: { seed, stream, count },
      inputs: {},
      outputs: {
        uniforms: output(
          f32([count], uniforms(seed, stream, count)),
          "uniforms(seed, stream, count)",
          EXACT,
        ),
      },
    });
  }
  return {
    name: "philox",
    file: "philox.safetensors",
    description:
      "The project's counter-based generator, reference/rng.ts (SPEC §2.7): philox4x32, " +
      "uniform4, uniforms. Counter of draw `index` in `stream`: (index, stream, 0, 0); key: " +
      "(seed mod 2^32, floor(seed / 2^32)).",
    cases,
  };
}

/** MVUE outputs: a port that follows mvue24's float32 operation order matches the selection. */
const MVUE_TOLERANCE = allclose(0, 1e-5);
const PROBABILITY_TOLERANCE = allclose(1e-7, 1e-5);

function groupUniforms(seed: number, stream: number, groups: number): Float32Array {
  const u = new Float32Array(2 * groups);
  for (let q = 0; q < groups; q++) {
    const [u0, u1] = uniform4(seed, stream, q);
    u[2 * q] = u0;
    u[2 * q + 1] = u1;
  }
  return u;
}

function mvueSeededCase(
  name: string,
  description: string,
  g: Matrix,
  seed: number,
  stream: number,
): TestVectorCase {
  const u = groupUniforms(seed, stream, g.data.length / 4);
  return {
    name,
    function: "mvue24",
    description,
    params: { seed, stream },
    inputs: { g: mat(g), uniforms: f32([u.length], u) },
    outputs: {
      out: output(
        mat(mvue24(g, { seed, stream })),
        "mvue24(g, { seed, stream }) = mvue24WithUniforms(g, uniforms); group q uses " +
          "uniforms[2q], uniforms[2q + 1] = uniform4(seed, stream, q)[0], [1]",
        MVUE_TOLERANCE,
      ),
    },
  };
}

function mvueUniformsCase(
  name: string,
  description: string,
  g: Matrix,
  u: number[],
): TestVectorCase {
  const uniformsF32 = Float32Array.from(u);
  return {
    name,
    function: "mvue24WithUniforms",
    description,
    params: {},
    inputs: { g: mat(g), uniforms: f32([u.length], uniformsF32) },
    outputs: {
      out: output(
        mat(mvue24WithUniforms(g, uniformsF32)),
        "mvue24WithUniforms(g, uniforms)",
        MVUE_TOLERANCE,
      ),
    },
  };
}

function probabilitiesCase(name: string, description: string, g: Matrix): TestVectorCase {
  return {
    name,
    function: "mvue24Probabilities",
    description,
    params: {},
    inputs: { g: mat(g) },
    outputs: {
      probabilities: output(
        mat(mvue24Probabilities(g)),
        "mvue24Probabilities(g)",
        PROBABILITY_TOLERANCE,
      ),
    },
  };
}

function mvueFamily(seed: number, shapes: Shape[]): TestVectorFamily {
  const edges = rowsMatrix([
    [0, 0, 0, 0],
    [0, 0, 3, 0],
    [1, 1, 1, 1],
    [-0, 0, -0, 0],
    [MIN_SUBNORMAL, 0, 0, 0],
    [1e30, 1e30, -1e30, 1e30],
    [1e30, 1e-30, 0, 1],
    [1e20, 1, 1, -1],
    [-1, 2, -3, 4],
    [2 ** -140, -(2 ** -135), 1, 0],
    [0.1, -3, 2, 0.5],
    [-7, 0, 0, 1e-6],
  ]);
  const big = 2 ** 20;
  const third = Math.fround(1 / 3);
  const cases: TestVectorCase[] = [
    mvueUniformsCase(
      "spec9_uniforms",
      "SPEC §9: [0.1, -3, 2, 0.5] with (u0, u1) = (0.5, 0.5) picks 1 then 2 → " +
        "(0, -3.349730, 2.466887, 0).",
      rowsMatrix([[0.1, -3, 2, 0.5]]),
      [0.5, 0.5],
    ),
    mvueUniformsCase(
      "uniform_boundaries",
      "Groups [2^20 × 4] (t = 1/4 exactly, so the cumulative sums are 0.25, 0.5, 0.75, 1): " +
        "uniforms exactly on a cumulative value pick the lower index (inclusive ≤), the smallest " +
        "(2^-24) and largest (1 - 2^-24) uniforms, and u1 = f32(1/3) on the second pick's first " +
        "boundary.",
      rowsMatrix([
        [big, big, big, big],
        [big, -big, big, -big],
        [big, big, big, big],
        [-big, big, -big, big],
        [big, big, big, big],
        [big, big, big, big],
      ]),
      [
        [0.25, third],
        [0.5, third],
        [0.75, 1 - 2 ** -24],
        [Math.fround(0.25 + 2 ** -24), 2 ** -24],
        [2 ** -24, 0.5],
        [1 - 2 ** -24, 1 - 2 ** -24],
      ].flat(),
    ),
    mvueSeededCase(
      "edges",
      `Zeros, signed zeros, a single non-zero, all-equal, subnormals, sums near 4e30, one ` +
        `dominant entry (seed ${seed}, stream 0).`,
      edges,
      seed,
      0,
    ),
    mvueSeededCase(
      "large_seed",
      "The SPEC §9 group repeated, sampled with a seed above 2^32 and the largest stream.",
      rowsMatrix(Array.from({ length: 8 }, () => [0.1, -3, 2, 0.5])),
      2 ** 53 - 1,
      2 ** 32 - 1,
    ),
  ];
  shapes.forEach((s, k) => {
    const stream = STREAM.mvueSampling + k;
    cases.push(mvueSeededCase(
      `random_${shapeName(s)}`,
      `Irwin-Hall normal gradients (seed ${seed}, input stream ${STREAM.mvue + k}), sampled ` +
        `with seed ${seed}, stream ${stream}.`,
      irwinHallMatrix(s.rows, s.cols, { seed, stream: STREAM.mvue + k }),
      seed,
      stream,
    ));
  });
  cases.push(
    probabilitiesCase(
      "probabilities_spec9",
      "SPEC §9 inclusion probabilities: [0.1,-3,2,0.5] → (0.050133, 0.895595, 0.810738, " +
        "0.243534); [1,2,3,4] → (0.234524, 0.441270, 0.608333, 0.715873); [1,1,1,1] → 1/2.",
      rowsMatrix([[0.1, -3, 2, 0.5], [1, 2, 3, 4], [1, 1, 1, 1]]),
    ),
    probabilitiesCase("probabilities_edges", "The edge groups of case `edges`.", edges),
    probabilitiesCase(
      "probabilities_random_12x20",
      `Irwin-Hall normal gradients (seed ${seed}, stream ${STREAM.mvueProbabilities}).`,
      irwinHallMatrix(12, 20, { seed, stream: STREAM.mvueProbabilities }),
    ),
  );
  return {
    name: "mvue24",
    file: "mvue24.safetensors",
    description:
      "MVUE 2:4 for gradients, reference/mvue.ts (SPEC §2.7): mvue24, mvue24WithUniforms, " +
      "mvue24Probabilities. Seeded cases carry the uniforms they used, so a port can check its " +
      "selection without the Philox generator, and seed/stream for Philox bit parity.",
    cases,
  };
}

const DECAY_TOLERANCE = allclose(1e-6, 1e-6);

function decayCase(
  name: string,
  description: string,
  grad: Matrix,
  w: Matrix,
  mask: Uint8Array,
  alpha: number,
): TestVectorCase {
  return {
    name,
    function: "maskedDecay",
    description,
    params: { alpha },
    inputs: { grad: mat(grad), w: mat(w), mask: maskTensor(mask, w.rows, w.cols) },
    outputs: {
      out: output(
        mat(maskedDecay(grad, w, mask, alpha)),
        "maskedDecay(grad, w, mask, alpha)",
        DECAY_TOLERANCE,
      ),
    },
  };
}

function decayFamily(seed: number, shapes: Shape[]): TestVectorFamily {
  const cases: TestVectorCase[] = [
    decayCase(
      "spec9",
      "SPEC §9: grad [1,1,1,1], w [1,2,3,4], mask [1,0,1,0], α = 0.03 → [1, 1.06, 1, 1.12].",
      rowsMatrix([[1, 1, 1, 1]]),
      rowsMatrix([[1, 2, 3, 4]]),
      Uint8Array.of(1, 0, 1, 0),
      0.03,
    ),
    decayCase(
      "edges",
      "Signed zeros, subnormal weights, all-kept and all-pruned groups, large weights; α = 1e-3.",
      rowsMatrix([[0, -0, 1e-40, -5], [1, 2, 3, 4], [-1, -2, -3, -4], [0, 0, 0, 0]]),
      rowsMatrix([[-0, 3, MIN_SUBNORMAL, 1e30], [1, 2, 3, 4], [1, 2, 3, 4], [
        -0,
        2 ** -130,
        -1e-30,
        7,
      ]]),
      Uint8Array.of(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0),
      1e-3,
    ),
  ];
  const alphas = [6e-5, 2e-4, 0];
  shapes.forEach((s, k) => {
    const w = irwinHallMatrix(s.rows, s.cols, { seed, stream: STREAM.decay + 2 * k, scale: 0.02 });
    const grad = irwinHallMatrix(s.rows, s.cols, {
      seed,
      stream: STREAM.decay + 2 * k + 1,
      scale: 1e-3,
    });
    const alpha = alphas[k % alphas.length];
    const useTransposable = k % 2 === 1;
    const mask = useTransposable ? transposableMask24(w).mask : prune24(w).mask;
    cases.push(decayCase(
      `random_${shapeName(s)}`,
      `Irwin-Hall weights × 0.02 and gradients × 1e-3 (seed ${seed}, streams ${
        STREAM.decay + 2 * k
      }, ${STREAM.decay + 2 * k + 1}), the ${useTransposable ? "transposable" : "prune24"} ` +
        `mask of w, α = ${alpha}.`,
      grad,
      w,
      mask,
      alpha,
    ));
  });
  return {
    name: "masked_decay",
    file: "masked_decay.safetensors",
    description:
      "Masked decay on gradients, reference/masked_decay.ts (SPEC §2.2, §2.3): maskedDecay, " +
      "out = grad + α·(1 − mask)⊙w (α is a float64 parameter; the reference rounds once).",
    cases,
  };
}

function flipCase(
  name: string,
  description: string,
  prev: Uint8Array,
  next: Uint8Array,
  rows: number,
  cols: number,
): TestVectorCase {
  return {
    name,
    function: "flipRate",
    description,
    params: {},
    inputs: { prev_mask: maskTensor(prev, rows, cols), next_mask: maskTensor(next, rows, cols) },
    outputs: {
      flip_count: output(
        u32([], [flipCount(prev, next)]),
        "flipCount(prev_mask, next_mask)",
        EXACT,
      ),
      flip_rate: output(
        f64([], [flipRate(prev, next)]),
        "flipRate(prev_mask, next_mask) = flip_count / (rows · cols)",
        allclose(0, 1e-6),
      ),
    },
  };
}

function flipFamily(seed: number, shapes: Shape[]): TestVectorFamily {
  const doc = Uint8Array.of(1, 1, 0, 0);
  const cases: TestVectorCase[] = [
    flipCase(
      "doc_example",
      "[1,1,0,0] → [1,0,1,0]: 2 flips, rate 0.5.",
      doc,
      Uint8Array.of(1, 0, 1, 0),
      1,
      4,
    ),
    flipCase("identical", "The same mask twice: rate 0.", doc, doc, 1, 4),
    flipCase(
      "complement",
      "Every bit flips: rate 1.",
      Uint8Array.of(1, 0, 0, 1, 0, 1, 1, 0),
      Uint8Array.of(0, 1, 1, 0, 1, 0, 0, 1),
      2,
      4,
    ),
  ];
  shapes.forEach((s, k) => {
    const w = irwinHallMatrix(s.rows, s.cols, { seed, stream: STREAM.flip + 2 * k });
    const noise = irwinHallMatrix(s.rows, s.cols, {
      seed,
      stream: STREAM.flip + 2 * k + 1,
      scale: 0.1,
    });
    const moved = matrix(s.rows, s.cols, w.data.map((v, i) => v + noise.data[i]));
    cases.push(flipCase(
      `random_${shapeName(s)}`,
      `prune24 masks of Irwin-Hall weights w (seed ${seed}, stream ${STREAM.flip + 2 * k}) and ` +
        `of f32(w + 0.1·noise) (stream ${STREAM.flip + 2 * k + 1}).`,
      prune24(w).mask,
      prune24(moved).mask,
      s.rows,
      s.cols,
    ));
  });
  return {
    name: "flip_rate",
    file: "flip_rate.safetensors",
    description: "Mask flip rate, reference/flip_rate.ts (SPEC §2.4): flipCount, flipRate.",
    cases,
  };
}

/** The next float32 above (`direction = 1`) or below (`-1`) a positive finite float32 `x`. */
function nextFloat32(x: number, direction: 1 | -1): number {
  const b = new Float32Array([x]);
  const u = new Uint32Array(b.buffer);
  u[0] += direction;
  return b[0];
}

/** Values around the FP8 grid: grid points, midpoints (ties), just off midpoints, saturation. */
function fp8EncodeInputs(format: Fp8Format): Float32Array {
  const grid: number[] = [];
  for (let code = 0; code < 128; code++) {
    const v = decodeFp8(code, format);
    if (Number.isFinite(v)) grid.push(v);
  }
  grid.sort((a, b) => a - b);
  const values: number[] = [];
  for (let i = 0; i < grid.length; i++) {
    values.push(grid[i]);
    if (i + 1 < grid.length) {
      const mid = (grid[i] + grid[i + 1]) / 2; // exact in float32 (≤ 5 significant bits)
      values.push(mid, nextFloat32(mid, 1), nextFloat32(mid, -1));
    }
  }
  const max = FP8_MAX[format];
  const step = format === "e4m3" ? 32 : 8192; // the grid step just below max
  values.push(max + step / 2, max + step, 1e10, FLOAT32_MAX, 2.7, 300, -0.3, 0.1, 1 / 3);
  values.push(MIN_SUBNORMAL, 2 ** -126, 1e-30);
  const positive = values.slice();
  const signed = positive.concat(positive.map((v) => -v), [-0, Infinity, -Infinity]);
  return Float32Array.from(signed);
}

function fp8Family(seed: number, shapes: Shape[]): TestVectorFamily {
  const cases: TestVectorCase[] = [];
  const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (const format of ["e4m3", "e5m2"] as const) {
    cases.push({
      name: `${format}_table`,
      function: "decodeFp8",
      description: `All 256 ${format} codes → values (bit 7 sign; NaN codes give NaN${
        format === "e5m2" ? ", 0x7C/0xFC give ±Inf" : ""
      }; 0x80 gives -0).`,
      params: { format },
      inputs: { codes: u8([256], codes) },
      outputs: {
        values: output(
          f32([256], Array.from(codes, (c) => decodeFp8(c, format))),
          "decodeFp8(codes[i], format)",
          EXACT,
        ),
      },
    });
  }
  const specInputs = [2.7, 300, -0.3];
  for (const format of ["e4m3", "e5m2"] as const) {
    const x = format === "e4m3"
      ? Float32Array.from(specInputs)
      : Float32Array.from(specInputs.slice(0, 2));
    cases.push(encodeCase(
      `${format}_spec9`,
      `SPEC §9 (no scaling): ${
        format === "e4m3"
          ? "E4M3 2.7 → 2.75, 300 → 288, -0.3 → -0.3125"
          : "E5M2 2.7 → 2.5, 300 → 320"
      }.`,
      x,
      format,
    ));
  }
  for (const format of ["e4m3", "e5m2"] as const) {
    cases.push(encodeCase(
      `${format}_encode`,
      "Every finite grid value, every midpoint between neighbours (ties to the even code), the " +
        "float32 values just above and below each midpoint, saturation above the largest finite " +
        `value, ±Inf (${
          format === "e4m3" ? "NaN code 0x7F/0xFF: E4M3 has no infinity" : "0x7C/0xFC"
        }), ` +
        "-0, values below half the smallest subnormal (→ ±0).",
      fp8EncodeInputs(format),
      format,
    ));
  }
  for (const format of ["e4m3", "e5m2"] as const) {
    cases.push(quantizeCase(
      `quantize_${format}_doc`,
      "The module example [1, -0.3, 0.01]: s = FMT_MAX.",
      matrix(1, 3, [1, -0.3, 0.01]),
      format,
    ));
    cases.push(quantizeCase(
      `quantize_${format}_edges`,
      "Signed zeros, float32 subnormals and magnitudes from 1e-8 to 7.25 in one tensor.",
      rowsMatrix([[-0, 0, 1e-40, -MIN_SUBNORMAL], [1e-3, -2e-3, 5, -7.25], [1e-8, 3, 0.1, -0.1]]),
      format,
    ));
    cases.push(quantizeCase(
      `quantize_${format}_zeros`,
      "All zeros: amax = 0, s = 1, output zeros (signs kept).",
      rowsMatrix([[0, -0, 0, 0]]),
      format,
    ));
    cases.push(quantizeCase(
      `quantize_${format}_tiny`,
      "amax so small that FMT_MAX / amax overflows float32: s is clamped to the largest float32.",
      rowsMatrix([[1e-40, -2e-40, 3e-41, 0]]),
      format,
    ));
    shapes.forEach((s, k) => {
      const stream = STREAM.fp8 + k;
      cases.push(quantizeCase(
        `quantize_${format}_random_${shapeName(s)}`,
        `Irwin-Hall normal values × 0.02 (seed ${seed}, stream ${stream}).`,
        irwinHallMatrix(s.rows, s.cols, { seed, stream, scale: 0.02 }),
        format,
      ));
    });
  }
  return {
    name: "fp8",
    file: "fp8.safetensors",
    description:
      "FP8 simulation, reference/fp8.ts (SPEC §2.9): decodeFp8 tables of all 256 codes, " +
      "encodeFp8 (round to nearest even, saturating), quantizeFp8 (per-tensor amax scaling). " +
      "e4m3 = OCP E4M3FN (max 448, no Inf), e5m2 (max 57344).",
    cases,
  };
}

function encodeCase(
  name: string,
  description: string,
  x: Float32Array,
  format: Fp8Format,
): TestVectorCase {
  const codes = Array.from(x, (v) => encodeFp8(v, format));
  return {
    name,
    function: "encodeFp8",
    description,
    params: { format },
    inputs: { x: f32([x.length], x) },
    outputs: {
      codes: output(u8([x.length], codes), "encodeFp8(x[i], format)", EXACT),
      values: output(
        f32([x.length], codes.map((c) => decodeFp8(c, format))),
        "decodeFp8(codes[i], format)",
        EXACT,
      ),
    },
  };
}

function quantizeCase(
  name: string,
  description: string,
  x: Matrix,
  format: Fp8Format,
): TestVectorCase {
  const { dequantized, scale } = quantizeFp8(x, { format });
  const codes = Array.from(x.data, (v) => encodeFp8(Math.fround(v * scale), format));
  return {
    name,
    function: "quantizeFp8",
    description,
    params: { format },
    inputs: { x: mat(x) },
    outputs: {
      dequantized: output(mat(dequantized), "quantizeFp8(x, { format }).dequantized", EXACT),
      scale: output(f32([], [scale]), "quantizeFp8(x, { format }).scale", EXACT),
      codes: output(
        u8([x.rows, x.cols], codes),
        "encodeFp8(f32(x · scale), format), the FP8 codes before dequantisation",
        EXACT,
      ),
    },
  };
}

/** Gated activations use tanh/exp: a port's float32 transcendental functions differ slightly. */
const GATED_TOLERANCE = allclose(1e-6, 1e-5);

/** One case per activation: the forward and its backward share the inputs. */
function gatedCases(name: string, description: string, x: Matrix, dy: Matrix): TestVectorCase[] {
  const activations: [string, (x: Matrix) => Matrix, (x: Matrix, dy: Matrix) => Matrix][] = [
    ["geglu", geglu, gegluBackward],
    ["swiglu", swiglu, swigluBackward],
  ];
  return activations.map(([fn, forward, backward]) => ({
    name: `${fn}_${name}`,
    function: fn,
    description,
    params: {},
    inputs: { x: mat(x), dy: mat(dy) },
    outputs: {
      out: output(mat(forward(x)), `${fn}(x)`, GATED_TOLERANCE),
      dx: output(mat(backward(x, dy)), `${fn}Backward(x, dy) = [∂x | ∂gate]`, GATED_TOLERANCE),
    },
  }));
}

function gatedFamily(seed: number, shapes: Shape[]): TestVectorFamily {
  const cases: TestVectorCase[] = [
    ...gatedCases(
      "spec9",
      "SPEC §9: [0.5, -1, 2 | 0, 1, -2] → GEGLU [0, -0.841192, -0.090804]; with ∂out = 1, " +
        "∂x = [0, 0.841192, -0.045402], ∂gate = [0.25, -1.082964, -0.172198].",
      matrix(1, 6, [0.5, -1, 2, 0, 1, -2]),
      matrix(1, 3, [1, 1, 1]),
    ),
    ...gatedCases(
      "edges",
      "Gates at ±0, ±1e-30, ±10, ±30, ±100, ±1e4 (saturated activations), subnormal and zero x.",
      matrix(
        2,
        16,
        [
          [1, -1, 2, 0.5, 3, -3, MIN_SUBNORMAL, 0, -0, 0, 1e-30, -1e-30, 10, -10, 30, -30],
          [1, 1, -1, -1, 2, 2, 1e30, -0, 100, -100, 1e4, -1e4, 5, -5, 0.044715, -(2 ** -130)],
        ].flat(),
      ),
      matrix(2, 8, [1, -1, 0.5, 2, 1e-3, -0, 1, 3, 1, -2, 1, 1, 1e-20, 0, -1, 4]),
    ),
  ];
  shapes.forEach((s, k) => {
    const stream = STREAM.gated + 2 * k;
    cases.push(...gatedCases(
      `random_${shapeName(s)}`,
      `Irwin-Hall normal [x | gate] × 2 (seed ${seed}, stream ${stream}) and ∂out (stream ${
        stream + 1
      }).`,
      irwinHallMatrix(s.rows, s.cols, { seed, stream, scale: 2 }),
      irwinHallMatrix(s.rows, s.cols / 2, { seed, stream: stream + 1 }),
    ));
  });
  return {
    name: "gated",
    file: "gated.safetensors",
    description: "Gated activations, reference/gated.ts (SPEC §3): geglu, gegluBackward, swiglu, " +
      "swigluBackward on rows [x | gate].",
    cases,
  };
}

// ---- the set -------------------------------------------------------------------------------

/** The random shapes: 4×8, 12×20, 64×128, and 768×3072 with `large`. */
function randomShapes(large: boolean): Shape[] {
  const shapes = [{ rows: 4, cols: 8 }, { rows: 12, cols: 20 }, { rows: 64, cols: 128 }];
  if (large) shapes.push({ rows: 768, cols: 3072 });
  return shapes;
}

/**
 * Builds the test vectors of every reference function (see the module documentation for the
 * layout): for each function family the SPEC §9 hand-derived cases, edge cases (ties, signed
 * zeros, `±Inf`, subnormals and extremes, where the function accepts them), and seeded random
 * cases at 4×8, 12×20 and 64×128 (plus 768×3072 with `large`). Every output is computed by the
 * reference oracle; the set is a pure function of its options.
 *
 * Random inputs come from {@linkcode irwinHallMatrix} and {@linkcode uniformIntegerMatrix} under
 * `seed`, each tensor on its own Philox stream (named in its case description). MVUE cases use
 * `seed` as the sampling seed too, and carry both the seed/stream and the uniforms drawn.
 *
 * @param options `{ seed, large }`: the input seed (default 2024) and whether to add the
 * 768×3072 cases (default `false`; about 250 MB once encoded).
 * @returns The set: families in a fixed order, cases in a fixed order.
 * @throws {TypeError} If `options` is not an object or `large` is not a boolean.
 * @throws {RangeError} If `seed` is not an integer in `[0, 2^53)`.
 * @example
 * ```ts
 * import { buildTestVectors } from "./vectors.ts";
 * const set = buildTestVectors();
 * const prune = set.families.find((f) => f.name === "prune24")!;
 * const spec = prune.cases.find((c) => c.name === "spec9")!;
 * // SPEC §9: [0.1, -3, 2, 0.5] keeps positions 1 and 2.
 * if (Array.from(spec.outputs.mask.tensor.data.slice(0, 4)).join() !== "0,1,1,0") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function buildTestVectors(options?: BuildTestVectorsOptions): TestVectorSet {
  const action = "build test vectors";
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(
      `Cannot ${action}: options must be an object {seed, large}, got ${options}`,
    );
  }
  const seed = options?.seed ?? DEFAULT_TEST_VECTOR_SEED;
  const large = options?.large ?? false;
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`Cannot ${action}: the seed must be an integer in [0, 2^53), got ${seed}`);
  }
  if (typeof large !== "boolean") {
    throw new TypeError(`Cannot ${action}: large must be a boolean, got ${typeof large} ${large}`);
  }
  const shapes = randomShapes(large);
  const smallShapes = shapes.slice(0, 2);
  return {
    seed,
    large,
    families: [
      pruneFamily(seed, shapes, smallShapes),
      softFamily(seed, shapes, smallShapes),
      transposableFamily(seed, shapes, smallShapes),
      compressFamily(seed, shapes),
      philoxFamily(),
      mvueFamily(seed, shapes),
      decayFamily(seed, shapes),
      flipFamily(seed, shapes),
      fp8Family(seed, shapes),
      gatedFamily(seed, shapes),
    ],
  };
}

// ---- files ---------------------------------------------------------------------------------

/** How `index.json` and each file's `__metadata__` describe one tensor. */
export interface TestVectorTensorEntry {
  /** The tensor's name in the family's safetensors file. */
  tensor: string;
  /** Its safetensors dtype. */
  dtype: SafetensorsTensor["dtype"];
  /** Its shape. */
  shape: number[];
}

/** How `index.json` describes one output tensor. */
export interface TestVectorOutputEntry extends TestVectorTensorEntry {
  /** The reference call that produces it. */
  expression: string;
  /** How a port should compare. */
  tolerance: TestVectorTolerance;
}

/** How `index.json` describes one case. */
export interface TestVectorCaseEntry {
  /** The case name. */
  name: string;
  /** The reference function. */
  function: string;
  /** What it exercises. */
  description: string;
  /** The non-tensor arguments. */
  params: Record<string, TestVectorParam>;
  /** The input tensors. */
  inputs: Record<string, TestVectorTensorEntry>;
  /** The output tensors. */
  outputs: Record<string, TestVectorOutputEntry>;
}

/** How `index.json` describes one family (one file). */
export interface TestVectorFamilyEntry {
  /** The family name. */
  name: string;
  /** The safetensors file, relative to the index. */
  file: string;
  /** What it covers. */
  description: string;
  /** Its cases. */
  cases: TestVectorCaseEntry[];
}

/** The contents of `index.json`. */
export interface TestVectorIndex {
  /** Always {@linkcode TEST_VECTOR_FORMAT}. */
  format: string;
  /** Always {@linkcode TEST_VECTOR_VERSION}. */
  version: number;
  /** The input seed. */
  seed: number;
  /** Whether the 768×3072 cases are included. */
  large: boolean;
  /** Tensor naming, tolerance semantics and input generators, in words. */
  conventions: Record<string, string>;
  /** The families. */
  families: TestVectorFamilyEntry[];
}

/** The naming, comparison and generator conventions written into the index and every file. */
const CONVENTIONS: Record<string, string> = {
  tensors:
    "Tensor `<case>/input/<name>` or `<case>/output/<name>` in the family's safetensors file. " +
    "Matrices are row-major [rows, cols] F32; masks U8 0/1; pattern indices and FP8 codes U8; " +
    "compressed metadata and Philox words U32; scalars have shape [].",
  tolerance:
    "exact: equal values (NaN equals NaN, -0 equals 0). allclose: |actual - expected| <= " +
    "atol + rtol * |expected| for finite values; NaN only matches NaN, +-Inf only the same " +
    "infinity. The reference itself reproduces every tensor bit for bit.",
  generators:
    "irwinHallMatrix: entry i = f32((((u0 + u1) + u2) + u3 - 2) * sqrt(3) * scale) with " +
    "(u0..u3) = uniform4(seed, stream, i). uniformIntegerMatrix: entry i = low + floor(u_i * " +
    "(high - low + 1)) with u = uniforms(seed, stream, rows * cols). Both in float64, see " +
    "reference/rng.ts for Philox4x32-10 and the word-to-uniform map.",
};

function tensorEntry(name: string, t: SafetensorsTensor): TestVectorTensorEntry {
  return { tensor: name, dtype: t.dtype, shape: [...t.shape] };
}

function caseEntry(c: TestVectorCase): TestVectorCaseEntry {
  const inputs: Record<string, TestVectorTensorEntry> = {};
  for (const [name, t] of Object.entries(c.inputs)) {
    inputs[name] = tensorEntry(`${c.name}/input/${name}`, t);
  }
  const outputs: Record<string, TestVectorOutputEntry> = {};
  for (const [name, o] of Object.entries(c.outputs)) {
    outputs[name] = {
      ...tensorEntry(`${c.name}/output/${name}`, o.tensor),
      expression: o.expression,
      tolerance: { ...o.tolerance },
    };
  }
  return {
    name: c.name,
    function: c.function,
    description: c.description,
    params: { ...c.params },
    inputs,
    outputs,
  };
}

/**
 * The `index.json` object of a set: every case of every family with its function, parameters,
 * tensor names, dtypes, shapes, output expressions and tolerances.
 *
 * @param set A set from {@linkcode buildTestVectors}.
 * @returns A plain JSON-serialisable object.
 * @example
 * ```ts
 * import { buildTestVectors, testVectorIndex } from "./vectors.ts";
 * const index = testVectorIndex(buildTestVectors());
 * const prune = index.families.find((f) => f.name === "prune24")!;
 * if (prune.cases[0].outputs.mask.dtype !== "U8") throw new Error("unexpected");
 * ```
 */
export function testVectorIndex(set: TestVectorSet): TestVectorIndex {
  return {
    format: TEST_VECTOR_FORMAT,
    version: TEST_VECTOR_VERSION,
    seed: set.seed,
    large: set.large,
    conventions: { ...CONVENTIONS },
    families: set.families.map((f) => ({
      name: f.name,
      file: f.file,
      description: f.description,
      cases: f.cases.map(caseEntry),
    })),
  };
}

/**
 * Encodes one family as a safetensors file: tensors `<case>/input/<name>` and
 * `<case>/output/<name>`, and `__metadata__` with `format`, `version`, `family`, `description`,
 * `seed` and `cases` (the JSON of the family's case list, as in `index.json`, including the
 * parameters).
 *
 * @param family A family of a set from {@linkcode buildTestVectors}.
 * @param seed The set's seed, recorded in the metadata.
 * @returns The file's bytes.
 * @throws {RangeError} If two cases of the family share a name.
 * @example
 * ```ts
 * import { decodeSafetensors } from "../core/safetensors.ts";
 * import { buildTestVectors, encodeTestVectorFamily } from "./vectors.ts";
 * const set = buildTestVectors();
 * const bytes = encodeTestVectorFamily(set.families[0], set.seed);
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * if (metadata.family !== "prune24" || !tensors["spec9/output/mask"]) throw new Error("unexpected");
 * ```
 */
export function encodeTestVectorFamily(family: TestVectorFamily, seed: number): Uint8Array {
  const tensors: Record<string, SafetensorsTensor> = {};
  const seen = new Set<string>();
  for (const c of family.cases) {
    if (seen.has(c.name)) {
      throw new RangeError(
        `Cannot encode test vectors: family ${family.name} has two cases named "${c.name}"`,
      );
    }
    seen.add(c.name);
    for (const [name, t] of Object.entries(c.inputs)) tensors[`${c.name}/input/${name}`] = t;
    for (const [name, o] of Object.entries(c.outputs)) {
      tensors[`${c.name}/output/${name}`] = o.tensor;
    }
  }
  return encodeSafetensors(tensors, {
    format: TEST_VECTOR_FORMAT,
    version: String(TEST_VECTOR_VERSION),
    family: family.name,
    description: family.description,
    seed: String(seed),
    conventions: JSON.stringify(CONVENTIONS),
    cases: JSON.stringify(family.cases.map(caseEntry)),
  });
}
