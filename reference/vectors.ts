/**
 * Test vectors for ports in other ecosystems (SPEC §9): every reference oracle's inputs and
 * outputs as plain named tensors, one family per function family, each case the SPEC §9 cases,
 * edge cases or seeded Philox inputs. The schema and the set live here, the cases in
 * `_vector_cases_*.ts`, the generators in `_vector_inputs.ts`; `core/test_vectors.ts` encodes files.
 *
 * @module
 */

import { decayCases, flipCases, fp8Cases, gatedCases } from "./_vector_cases_numerics.ts";
import {
  compressCases,
  pruneCases,
  softCases,
  transposableCases,
} from "./_vector_cases_pruning.ts";
import { mvueCases, philoxCases } from "./_vector_cases_sampling.ts";
import type { Shape } from "./_vector_inputs.ts";
export {
  irwinHallMatrix,
  type IrwinHallMatrixOptions,
  uniformIntegerMatrix,
  type UniformIntegerMatrixOptions,
} from "./_vector_inputs.ts";
export type { Matrix } from "./matrix.ts";

/** One tensor of a case: `data` is the typed array matching `dtype`, row-major. */
export type TestVectorTensor =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "F64"; shape: number[]; data: Float64Array }
  | { dtype: "U8"; shape: number[]; data: Uint8Array }
  | { dtype: "U32"; shape: number[]; data: Uint32Array };

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
  tensor: TestVectorTensor;
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
  inputs: Record<string, TestVectorTensor>;
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

// ---- the set -------------------------------------------------------------------------------

/** The random shapes: 4×8, 12×20, 64×128, and 768×3072 with `large`. */
function randomShapes(large: boolean): Shape[] {
  const shapes = [{ rows: 4, cols: 8 }, { rows: 12, cols: 20 }, { rows: 64, cols: 128 }];
  if (large) shapes.push({ rows: 768, cols: 3072 });
  return shapes;
}

/**
 * The families in file order: name (also the file's base name, `prune24` →
 * `prune24.safetensors`), what they cover, and their cases.
 */
const FAMILIES: [
  name: string,
  description: string,
  cases: (seed: number, shapes: Shape[]) => TestVectorCase[],
][] = [
  [
    "prune24",
    "Hard N:M magnitude pruning, reference/prune.ts (SPEC §1.1): prune24, pruneNM.",
    pruneCases,
  ],
  [
    "soft_threshold24",
    "Soft-threshold 2:4 and the S-STE scale β, reference/soft_threshold.ts (SPEC §1.2, §1.3): " +
    "softThreshold24, ssteScale.",
    softCases,
  ],
  [
    "transposable24",
    "Transposable 2:4 masks, reference/transposable.ts (SPEC §1.4): transposableMask24, " +
    "transposablePatternIndices, transposablePatterns.",
    transposableCases,
  ],
  [
    "compress24",
    "Compressed 2:4 storage, reference/compress.ts (SPEC §1.5): compress24, decompress24. " +
    "Codes idx0 | idx1 << 2, eight per U32 word, group g in bits 4(g % 8)..4(g % 8)+3.",
    compressCases,
  ],
  [
    "philox",
    "The project's counter-based generator, reference/rng.ts (SPEC §2.7): philox4x32, " +
    "uniform4, uniforms. Counter of draw `index` in `stream`: (index, stream, 0, 0); key: " +
    "(seed mod 2^32, floor(seed / 2^32)).",
    () => philoxCases(),
  ],
  [
    "mvue24",
    "MVUE 2:4 for gradients, reference/mvue.ts (SPEC §2.7): mvue24, mvue24WithUniforms, " +
    "mvue24Probabilities. Seeded cases carry the uniforms they used, so a port can check its " +
    "selection without the Philox generator, and seed/stream for Philox bit parity.",
    mvueCases,
  ],
  [
    "masked_decay",
    "Masked decay on gradients, reference/masked_decay.ts (SPEC §2.2, §2.3): maskedDecay, " +
    "out = grad + α·(1 − mask)⊙w (α is a float64 parameter; the reference rounds once).",
    decayCases,
  ],
  [
    "flip_rate",
    "Mask flip rate, reference/flip_rate.ts (SPEC §2.4): flipCount, flipRate.",
    flipCases,
  ],
  [
    "fp8",
    "FP8 simulation, reference/fp8.ts (SPEC §2.9): decodeFp8 tables of all 256 codes, " +
    "encodeFp8 (round to nearest even, saturating), quantizeFp8 (per-tensor amax scaling). " +
    "e4m3 = OCP E4M3FN (max 448, no Inf), e5m2 (max 57344).",
    fp8Cases,
  ],
  [
    "gated",
    "Gated activations, reference/gated.ts (SPEC §3): geglu, gegluBackward, swiglu, " +
    "swigluBackward on rows [x | gate].",
    gatedCases,
  ],
];

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
  return {
    seed,
    large,
    families: FAMILIES.map(([name, description, cases]) => ({
      name,
      file: `${name}.safetensors`,
      description,
      cases: cases(seed, shapes),
    })),
  };
}

// ---- files ---------------------------------------------------------------------------------

/** How `index.json` and each file's `__metadata__` describe one tensor. */
export interface TestVectorTensorEntry {
  /** The tensor's name in the family's safetensors file. */
  tensor: string;
  /** Its safetensors dtype. */
  dtype: TestVectorTensor["dtype"];
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

/** How `index.json` describes one case: the {@linkcode TestVectorCase} with tensor entries. */
export interface TestVectorCaseEntry extends Omit<TestVectorCase, "inputs" | "outputs"> {
  /** The input tensors. */
  inputs: Record<string, TestVectorTensorEntry>;
  /** The output tensors. */
  outputs: Record<string, TestVectorOutputEntry>;
}

/**
 * How `index.json` describes one family (one file, `file` relative to the index): the
 * {@linkcode TestVectorFamily} with case entries.
 */
export interface TestVectorFamilyEntry extends Omit<TestVectorFamily, "cases"> {
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

function tensorEntry(name: string, t: TestVectorTensor): TestVectorTensorEntry {
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
