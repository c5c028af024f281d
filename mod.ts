/**
 * twofour — 2:4 sparse pre-training of Transformers in Deno + TypeScript, on a CPU or on a GPU
 * through WebGPU.
 *
 * - The reference oracles of every pruning function and estimator (`./reference`): `prune24`,
 *   `pruneNM`, `softThreshold24`, `ssteScale`, `transposableMask24`, `compress24`/`decompress24`,
 *   `mvue24`, `maskedDecay`, `flipRate`, `quantizeFp8`, `geglu`/`swiglu`, the counter-based RNG, and
 *   test vectors for other ecosystems.
 * - The training stack (`./core`): the `Backend` interface with the `ReferenceBackend` and the
 *   BLAS-backed `CpuBackend` (`createCpuBackend()`), autograd,
 *   `SparseLinear` with every method of SPEC 2.8, GPT-2, AdamW, the `Trainer`, checkpoints, data.
 * - The WebGPU backend (`./gpu`): `createGpuBackend()` and the kernels behind it.
 *
 * @example
 * ```ts
 * import { matrix, prune24, transposableMask24 } from "./mod.ts";
 * const w = matrix(4, 4, [0.1, -3, 2, 0.5, 4, 0.2, -0.3, 1, 0.5, 1, -2, 3, -1, 2, 0.1, 0.2]);
 * const { mask } = transposableMask24(w); // 2 per row and column of the 4×4 block
 * if (prune24(w).mask.reduce((a, b) => a + b, 0) !== 8) throw new Error("2 of 4 per row");
 * if (mask.reduce((a, b) => a + b, 0) !== 8) throw new Error("2 per row and column");
 * ```
 *
 * @module
 */

export * from "./reference/mod.ts";
export * from "./core/mod.ts";
export * from "./gpu/mod.ts";
