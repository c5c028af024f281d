/**
 * The pure-TypeScript reference implementations of every 2:4 pruning function and gradient
 * estimator of SPEC §1–3: plain, deterministic, readable oracles that the WebGPU kernels — and other
 * ecosystems' ports (PyTorch, Triton, CUDA, JAX) — are checked against.
 *
 * Every function takes and returns a row-major float32 {@linkcode Matrix}; masks are `Uint8Array`s
 * of 0/1. Bad input throws a `RangeError`/`TypeError` whose message names the value.
 *
 * @example
 * ```ts
 * import { matrix, prune24, softThreshold24 } from "./mod.ts";
 * const w = matrix(1, 4, [0.1, -3, 2, 0.5]);
 * prune24(w).pruned.data;          // [0, -3, 2, 0]
 * softThreshold24(w).pruned.data;  // [0, -2.5, 1.5, 0]
 * ```
 *
 * @module
 */

export { type Matrix, matrix } from "./matrix.ts";
export { prune24, pruneNM, type PruneNMOptions, type PruneResult } from "./prune.ts";
export {
  softThreshold24,
  ssteScale,
  type SsteScaleOptions,
  type SsteScaleRecipe,
} from "./soft_threshold.ts";
export {
  transposableMask24,
  transposablePatternIndices,
  transposablePatterns,
} from "./transposable.ts";
export { compress24, type Compressed24, decompress24 } from "./compress.ts";
export { philox4x32, type Philox4x32Block, type Philox4x32Key, uniform4, uniforms } from "./rng.ts";
export {
  mvue24,
  type Mvue24Options,
  mvue24Probabilities,
  mvue24WithUniforms,
  MVUE_EPSILON,
  MVUE_MAX_GROUP_SUM,
} from "./mvue.ts";
export { maskedDecay } from "./masked_decay.ts";
export { flipCount, flipRate } from "./flip_rate.ts";
export {
  decodeFp8,
  encodeFp8,
  FP8_MAX,
  type Fp8Format,
  quantizeFp8,
  type QuantizeFp8Options,
  type QuantizeFp8Result,
} from "./fp8.ts";
export { geglu, gegluBackward, swiglu, swigluBackward } from "./gated.ts";
export {
  buildTestVectors,
  type BuildTestVectorsOptions,
  DEFAULT_TEST_VECTOR_SEED,
  irwinHallMatrix,
  type IrwinHallMatrixOptions,
  TEST_VECTOR_FORMAT,
  TEST_VECTOR_VERSION,
  type TestVectorCase,
  type TestVectorCaseEntry,
  type TestVectorFamily,
  type TestVectorFamilyEntry,
  type TestVectorIndex,
  testVectorIndex,
  type TestVectorOutput,
  type TestVectorOutputEntry,
  type TestVectorParam,
  type TestVectorSet,
  type TestVectorTensor,
  type TestVectorTensorEntry,
  type TestVectorTolerance,
  uniformIntegerMatrix,
  type UniformIntegerMatrixOptions,
} from "./vectors.ts";
