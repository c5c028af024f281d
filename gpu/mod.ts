/**
 * The WebGPU backend: the runtime (device, pipeline cache, buffer pool, one compute pass for many
 * dispatches), {@linkcode GpuBackend} — the `Backend` interface of the training stack on WGSL
 * kernels — and {@linkcode GpuKernels}, every reference function on the GPU under the same name
 * and result shape. Every kernel is tested against its `reference/` twin.
 *
 * @example
 * ```ts
 * import { createGpuBackend, GpuKernels, WebGpuUnavailableError } from "./mod.ts";
 * import { matrix } from "../reference/matrix.ts";
 * try {
 *   const gpu = await createGpuBackend();
 *   const kernels = new GpuKernels(gpu.runtime);
 *   const { mask } = await kernels.prune24(matrix(1, 4, [0.1, -3, 2, 0.5]));
 *   if (mask.join() !== "0,1,1,0") throw new Error("unexpected mask");
 *   gpu.destroy();
 * } catch (e) {
 *   if (!(e instanceof WebGpuUnavailableError)) throw e; // no adapter: use the ReferenceBackend
 * }
 * ```
 *
 * @module
 */

export {
  describeAdapter,
  type GpuAdapterRecord,
  GpuError,
  type GpuFeatures,
  GpuRuntime,
  type GpuRuntimeOptions,
  grid1d,
  type KernelSpec,
  MAX_WORKGROUPS_PER_DIM,
  WebGpuUnavailableError,
} from "./runtime.ts";
export {
  type AttentionPath,
  createGpuBackend,
  FUSED_ATTENTION_MIN_T,
  GpuBackend,
  type GpuBackendOptions,
  type MatmulKernel,
} from "./backend.ts";
export { GpuStorage, GpuTensor, type TensorState } from "./tensor.ts";
export { type GpuFp8Codes, type GpuGatedOptions, GpuKernels } from "./gpu_kernels.ts";
export type { GatedActivation, GatedLayout } from "./kernels/gated.ts";
export type { AttentionKeyPass } from "./kernels/attention_backward.ts";
export type { MatmulDims, MatmulRegisterBlocking, MatmulTiling } from "./kernels/matmul.ts";
export {
  type DenseMatmulEncoder,
  encodeCompressedMatmul,
  SPARSE_MARGIN,
  SparseKernelChooser,
  type SparseProductDims,
  sparseProductKey,
} from "./sparse_kernels.ts";
