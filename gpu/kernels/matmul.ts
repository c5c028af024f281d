/**
 * Dense fp32 matrix products `C = op(A)·op(B)`, 2-D and batched, for all four transpose
 * combinations — the hot operation of training. Four variants live side by side (llm.c's
 * `dev/cuda` zoo; `experiments/matmul_zoo.ts` times them), and {@linkcode encodeMatmul} picks one:
 * - `matmul_naive.ts`: one thread per output, a plain K loop — the obviously-correct baseline.
 * - `matmul_tiled.ts`: workgroup tiles staged in shared memory, `vec4` register tiles (any shape).
 * - `matmul_wide.ts`: wider K slices, double-buffered staging, split-K and causal triangles —
 *   discrete GPUs (1.3–2× the tiled kernel on the H100, `experiments/zoo/gemm_speed.ts`).
 * - `matmul_register.ts`: per-thread register blocks straight from storage, operands repacked K-major.
 * - `matmul_texture.ts`: the register kernel fed from textures — software adapters (llvmpipe).
 *
 * All accumulate in float32 in ascending k per output, so they differ from a float64 reference only
 * by float32 rounding (`|error| ≲ K·2^-24·Σ|a||b|`, SPEC §8.3). FLOPs of one call: `2·B·M·N·K`;
 * bytes moved at least `4·B·(M·K + K·N + M·N)`.
 *
 * @module
 */

import type { GpuRuntime } from "../runtime.ts";
import type { MatmulDims, MatmulRegisterBlocking } from "./_matmul_shared.ts";
import { encodeNaiveMatmul } from "./matmul_naive.ts";
import { encodeRegisterMatmul, REGISTER_16 } from "./matmul_register.ts";
import { encodeTextureMatmul, textureBlockingFor } from "./matmul_texture.ts";
import { encodeTiledMatmul, type MatmulTiling, TILING_64 } from "./matmul_tiled.ts";
import { encodeWideMatmul, type MatmulTriangular } from "./matmul_wide.ts";

export type { MatmulDims, MatmulRegisterBlocking } from "./_matmul_shared.ts";
export { matmulNaiveSpec } from "./matmul_naive.ts";
export {
  type MatmulTriangular,
  matmulWideSpec,
  type WideOptions,
  widePlan,
  wideTilingFor,
} from "./matmul_wide.ts";
export {
  fillsTiles,
  matmulTiledSpec,
  type MatmulTiling,
  TILING_128,
  TILING_64,
} from "./matmul_tiled.ts";
export { matmulPackSpec, matmulRegisterSpec, REGISTER_16, REGISTER_32 } from "./matmul_register.ts";
export {
  type MatmulOperandLayout,
  matmulTextureSpec,
  TEXTURE_16,
  TEXTURE_32,
  textureBlockingFor,
} from "./matmul_texture.ts";

/** Options of {@linkcode encodeMatmul}. */
export interface EncodeMatmulOptions {
  /** Kernel version (default `"tiled"`). */
  variant?: "tiled" | "naive" | "register" | "wide";
  /** A triangular structure the caller promises; the wide kernel skips the work it excludes. */
  triangular?: MatmulTriangular;
  /** Tiling of the tiled kernel (default {@linkcode TILING_64}). */
  tiling?: MatmulTiling;
  /** Blocking of the register kernel (default {@linkcode REGISTER_16}). */
  blocking?: MatmulRegisterBlocking;
  /**
   * Where the register kernel reads its operands: `"texture"` (default; see
   * {@linkcode matmulTextureSpec}, storage where an operand exceeds the textures) or `"storage"`
   * ({@linkcode matmulRegisterSpec}).
   */
  operands?: "texture" | "storage";
}

/**
 * Records `C = op(A)·op(B)` for `dims.batch` stacked products into the runtime's pass.
 *
 * @param rt The runtime.
 * @param a A, `[B, M, K]` (or `[B, K, M]` with `transA`), float32.
 * @param b B, `[B, K, N]` (or `[B, N, K]` with `transB`), float32.
 * @param dims The shape and transposes.
 * @param options Kernel version and tiling.
 * @returns A new pooled buffer holding C `[B, M, N]`; the caller frees it.
 * @throws {RangeError} If a dimension is not a non-negative integer or the batch exceeds the
 * per-dimension workgroup limit.
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeMatmul } from "./matmul.ts";
 * const rt = await GpuRuntime.create();
 * const a = rt.upload(new Float32Array([1, 2, 3, 4])); // [[1, 2], [3, 4]]
 * const b = rt.upload(new Float32Array([5, 6, 7, 8])); // [[5, 6], [7, 8]]
 * const dims = { batch: 1, m: 2, n: 2, k: 2, transA: false, transB: true };
 * const c = new Float32Array(await rt.read(encodeMatmul(rt, a, b, dims), 16));
 * rt.destroy();
 * if (c.join() !== "17,23,39,53") throw new Error(`unexpected ${c}`); // a·bᵀ
 * ```
 */
export function encodeMatmul(
  rt: GpuRuntime,
  a: GPUBuffer,
  b: GPUBuffer,
  dims: MatmulDims,
  options: EncodeMatmulOptions = {},
): GPUBuffer {
  const { batch, m, n, k } = dims;
  for (const [name, v] of Object.entries({ batch, m, n, k })) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(
        `Cannot multiply matrices: ${name} must be a non-negative integer, got ${v}`,
      );
    }
  }
  if (batch > 65535) {
    throw new RangeError(`Cannot multiply matrices: at most 65535 batched products, got ${batch}`);
  }
  const c = rt.alloc(4 * batch * m * n);
  if (batch * m * n === 0) return c;
  if (options.variant === "naive") {
    encodeNaiveMatmul(rt, a, b, c, dims);
  } else if (options.variant === "register") {
    const textured = (options.operands ?? "texture") === "texture" &&
      encodeTextureMatmul(rt, a, b, c, dims, options.blocking ?? textureBlockingFor(dims));
    if (!textured) encodeRegisterMatmul(rt, a, b, c, dims, options.blocking ?? REGISTER_16);
  } else if (options.variant === "wide") {
    encodeWideMatmul(rt, a, b, c, dims, { triangular: options.triangular });
  } else {
    encodeTiledMatmul(rt, a, b, c, dims, options.tiling ?? TILING_64);
  }
  return c;
}
