/**
 * What the dense matmul variants share: the product's shape, the register blocking and small
 * WGSL fragments (their specs are cached by `cachedSpec`, `_sparse.ts`). Private to
 * `gpu/kernels/`; see `matmul.ts` for the family.
 *
 * @module
 */

import type { GpuRuntime } from "../runtime.ts";

/** Shape and layout of one matrix product. */
export interface MatmulDims {
  /** Number of independent products (1 for 2-D). */
  batch: number;
  /** Rows of `op(A)` and C. */
  m: number;
  /** Columns of `op(B)` and C. */
  n: number;
  /** The reduction length. */
  k: number;
  /** A is stored `[K, M]` (per batch) and used transposed. */
  transA: boolean;
  /** B is stored `[N, K]` (per batch) and used transposed. */
  transB: boolean;
}

/**
 * The entry point each dense variant file exports (`encode…Matmul`, chosen by `encodeMatmul`):
 * records `c = op(a)·op(b)` for `dims` into the runtime's pass with the variant's `config` (its
 * tiling, blocking or options; `void` for none).
 */
export type MatmulEncoder<C, R = void> = (
  rt: GpuRuntime,
  a: GPUBuffer,
  b: GPUBuffer,
  c: GPUBuffer,
  dims: MatmulDims,
  config: C,
) => R;

/** Blocking of the register kernels (storage- and texture-fed; see `matmul_register.ts`). */
export interface MatmulRegisterBlocking {
  /** Rows of C per thread (multiple of 4). */
  threadM: number;
  /** Columns of C per thread (multiple of 4). */
  threadN: number;
  /** Threads per workgroup. */
  workgroup: number;
}

/**
 * Checks a register kernel's blocking.
 *
 * @throws {RangeError} If the thread block is not made of multiples of 4 or the workgroup is empty.
 */
export function assertBlocking(blocking: MatmulRegisterBlocking, kernel: string): void {
  const { threadM: TM, threadN: TN, workgroup: WG } = blocking;
  if (TM % 4 !== 0 || TN % 4 !== 0 || TM < 4 || TN < 4 || !(WG >= 1) || !Number.isInteger(WG)) {
    throw new RangeError(
      `Cannot build the ${kernel} matmul kernel: inconsistent blocking ${JSON.stringify(blocking)}`,
    );
  }
}

/** Most workgroups along one dispatch dimension. */
export const MAX_GROUPS = 65535;

/** The key fragment naming the transposes: `nn`, `nt`, `tn` or `tt`. */
export function transKey(d: { transA: boolean; transB: boolean }): string {
  return `${d.transA ? "t" : "n"}${d.transB ? "t" : "n"}`;
}

/** The uniform of the naive and tiled kernels. */
export const PARAMS_STRUCT = `struct Params { M: u32, N: u32, K: u32, batch: u32 }`;

/**
 * Workgroups of a register kernel for an `m×n` product: one thread per `threadM × threadN` block.
 *
 * @throws {RangeError} If more than {@linkcode MAX_GROUPS} are needed.
 */
export function registerGroups(m: number, n: number, blocking: MatmulRegisterBlocking): number {
  const tiles = Math.ceil(m / blocking.threadM) * Math.ceil(n / blocking.threadN);
  const groups = Math.ceil(tiles / blocking.workgroup);
  if (groups > MAX_GROUPS) {
    throw new RangeError(
      `Cannot multiply matrices: ${m}×${n} needs ${groups} workgroups of the register kernel (at most ${MAX_GROUPS})`,
    );
  }
  return groups;
}
