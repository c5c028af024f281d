/**
 * The input generators and tensor helpers of the test vectors (`./vectors.ts`): two Philox
 * generators any port can rerun bit for bit, tensor/tolerance constructors, and the Philox stream
 * of each family's random inputs.
 *
 * @module
 */

import type { EdgeGroups } from "./cases.ts";
import { type Matrix, matrix } from "./matrix.ts";
import { uniform4, uniforms } from "./rng.ts";
import type {
  TestVectorCase,
  TestVectorOutput,
  TestVectorParam,
  TestVectorTensor,
  TestVectorTolerance,
} from "./vectors.ts";

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

export const EXACT: TestVectorTolerance = { kind: "exact" };

export function allclose(atol: number, rtol: number): TestVectorTolerance {
  return { kind: "allclose", atol, rtol };
}

export function f32(shape: number[], data: ArrayLike<number>): TestVectorTensor {
  return { dtype: "F32", shape, data: Float32Array.from(data) };
}

export function f64(shape: number[], data: ArrayLike<number>): TestVectorTensor {
  return { dtype: "F64", shape, data: Float64Array.from(data) };
}

export function u8(shape: number[], data: ArrayLike<number>): TestVectorTensor {
  return { dtype: "U8", shape, data: Uint8Array.from(data) };
}

export function u32(shape: number[], data: ArrayLike<number>): TestVectorTensor {
  return { dtype: "U32", shape, data: Uint32Array.from(data) };
}

/** A matrix as an `F32 [rows, cols]` tensor (a copy; `-0` and NaN payloads kept). */
export function mat(m: Matrix): TestVectorTensor {
  return { dtype: "F32", shape: [m.rows, m.cols], data: m.data.slice() };
}

/** A 0/1 mask of a `[rows, cols]` matrix as a `U8 [rows, cols]` tensor. */
export function maskTensor(mask: Uint8Array, rows: number, cols: number): TestVectorTensor {
  return { dtype: "U8", shape: [rows, cols], data: mask.slice() };
}

export function output(
  tensor: TestVectorTensor,
  expression: string,
  tolerance: TestVectorTolerance,
): TestVectorOutput {
  return { tensor, expression, tolerance };
}

/** The exact `pruned` and `mask` outputs of a pruning call on `w` (`call` names it: `prune24(w)`). */
export function prunedOutputs(
  call: string,
  w: Matrix,
  result: { pruned: Matrix; mask: Uint8Array },
): Record<string, TestVectorOutput> {
  return {
    pruned: output(mat(result.pruned), `${call}.pruned`, EXACT),
    mask: output(maskTensor(result.mask, w.rows, w.cols), `${call}.mask`, EXACT),
  };
}

// ---- cases ---------------------------------------------------------------------------------

/** What a case builder computes from its arguments: the call and its tensors (`params` default none). */
export interface CaseCall {
  function: string;
  params?: Record<string, TestVectorParam>;
  inputs: Record<string, TestVectorTensor>;
  outputs: Record<string, TestVectorOutput>;
}

/**
 * A case builder `(name, description, ...args)`: the case named and described by the caller, the
 * rest from `call(...args)`.
 */
export function caseBuilder<A extends unknown[]>(
  call: (...args: A) => CaseCall,
): (name: string, description: string, ...args: A) => TestVectorCase {
  return (name, description, ...args) => {
    const { function: fn, params = {}, inputs, outputs } = call(...args);
    return { name, function: fn, description, params, inputs, outputs };
  };
}

/** A matrix made of rows of four (`rows` arrays, each a multiple of 4 long). */
export function rowsMatrix(rows: readonly (readonly number[])[]): Matrix {
  return matrix(rows.length, rows[0].length, rows.flat());
}

/** A `4 × 4k` matrix holding `k` 4×4 blocks side by side. */
export function blocksMatrix(blocks: readonly (readonly (readonly number[])[])[]): Matrix {
  const cols = 4 * blocks.length;
  const m = matrix(4, cols);
  blocks.forEach((block, b) => {
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) m.data[r * cols + 4 * b + c] = block[r][c];
    }
  });
  return m;
}

export interface Shape {
  rows: number;
  cols: number;
}

export function shapeName(s: Shape): string {
  return `${s.rows}x${s.cols}`;
}

/**
 * Offsets of the Philox streams of each family's random inputs (one stream per tensor; the
 * one-matrix families' `ties_*` cases run from 20 past theirs, {@linkcode matrixCases}).
 */
export const STREAM = {
  prune: 100,
  pruneNM: 150,
  soft: 200,
  beta: 250,
  transposable: 300,
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

/** A one-matrix function's inputs for {@linkcode matrixCases}. */
export interface MatrixCasesSpec {
  /** The `spec9` case: its description and input (the SPEC §9 cases). */
  spec9: [description: string, input: Matrix];
  /** The `edges` case: its description and input. */
  edges: [description: string, input: Matrix];
  /**
   * The first Philox stream of the `random_*` cases (one per shape; the `ties_*` cases take
   * `stream + 20` on), the integer range of the `ties_*` cases and a note for their descriptions.
   */
  random: [stream: number, low: number, high: number, tieNote?: string];
}

/** Groups of four, one per row, with what they exercise, as a {@linkcode MatrixCasesSpec} case. */
export function groupRows(edges: EdgeGroups): [description: string, input: Matrix] {
  return [`${edges.note}; one group per row.`, rowsMatrix(edges.groups)];
}

/**
 * The cases of a one-matrix function, in the order of the vectors: `spec9`, `edges`, then
 * `random_<shape>` (Irwin–Hall normal values) for every shape and `ties_<shape>` (integers in
 * `[low, high]`) for the two smallest shapes.
 */
export function matrixCases(
  makeCase: (name: string, description: string, w: Matrix) => TestVectorCase,
  seed: number,
  shapes: Shape[],
  spec: MatrixCasesSpec,
): TestVectorCase[] {
  const [randomStream, low, high, tieNote = ""] = spec.random;
  const tieStream = randomStream + 20;
  return [
    makeCase("spec9", ...spec.spec9),
    makeCase("edges", ...spec.edges),
    ...shapes.map((s, k) =>
      makeCase(
        `random_${shapeName(s)}`,
        `Irwin-Hall normal values (seed ${seed}, stream ${randomStream + k}).`,
        irwinHallMatrix(s.rows, s.cols, { seed, stream: randomStream + k }),
      )
    ),
    ...shapes.slice(0, 2).map((s, k) =>
      makeCase(
        `ties_${shapeName(s)}`,
        `Integers in [${low}, ${high}] (seed ${seed}, stream ${tieStream + k})${tieNote}.`,
        uniformIntegerMatrix(s.rows, s.cols, { seed, stream: tieStream + k, low, high }),
      )
    ),
  ];
}
