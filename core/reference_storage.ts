/**
 * The reference backend's storage and tensor classes, and the context its kernel files
 * (`_reference_linalg.ts`, `reference_nn.ts`, `reference_sparse.ts`) work through: the shared
 * input checks and allocation of temporaries. The CPU backend (`cpu/backend.ts`) stores its tensors
 * in the same classes, hence public to `core/` (not exported from `mod.ts`).
 *
 * @module
 */

import { type DType, StoredTensor, type Tensor } from "./backend.ts";
import type { Matrix } from "../reference/matrix.ts";
import { dims2, type TensorChecker, type TensorKind } from "./backend_checks.ts";

/** A tensor's values: float32 or, for gradient checks, float64 storage. */
export type FloatStorage = Float32Array | Float64Array;

/** One allocation. Views made by `reshape` share it, so the memory rules apply to all of them. */
export class Storage {
  /** The values (`i32` tensors hold an `Int32Array`). */
  data: FloatStorage | Int32Array;
  /** Whether the allocation was kept (survives `release`). */
  kept = false;
  /** Whether the allocation was freed. */
  released = false;
  /** Wraps `data`. */
  constructor(data: FloatStorage | Int32Array) {
    this.data = data;
  }
}

/** The reference backend's tensor: a shape over a {@linkcode Storage}, tagged with its owner. */
export class ReferenceTensor extends StoredTensor<Storage> {
  /** The backend that made it. */
  readonly owner: object;
  /** Makes a tensor of `owner` over `storage`. */
  constructor(owner: object, storage: Storage, shape: readonly number[], dtype: DType) {
    super(storage, shape, dtype);
    this.owner = owner;
  }
}

/** How the shared input checks see a {@linkcode ReferenceTensor}. */
export const REFERENCE_TENSORS: TensorKind<ReferenceTensor> = {
  backend: "ReferenceBackend",
  is: (t): t is ReferenceTensor => t instanceof ReferenceTensor,
  owner: (t) => t.owner,
  released: (t) => t.storage.released,
  indices: (t) => t.storage.data as Int32Array,
};

/** The typed array of an `f32` tensor. */
export function floats(t: ReferenceTensor): FloatStorage {
  return t.storage.data as FloatStorage;
}

/** Frees an allocation: later uses of its tensors throw. */
export function free(storage: Storage): void {
  storage.released = true;
  storage.kept = false;
  storage.data = new Float32Array(0);
}

/** What the kernel files need from a {@linkcode ReferenceBackend}: its checks and allocation. */
export interface ReferenceContext {
  /** The backend's shared input checks. */
  readonly check: TensorChecker<ReferenceTensor>;
  /** A fresh zero `f32` tensor of `shape` (a temporary), stored at the backend's precision. */
  alloc(shape: readonly number[]): ReferenceTensor;
  /** A fresh `f32` tensor of `shape` holding `values` (rounded to the storage precision). */
  filled(shape: readonly number[], values: ArrayLike<number>): ReferenceTensor;
  /** Checks that `t` is a 2-D `f32` tensor of this backend. */
  matrixInput(t: Tensor, action: string): ReferenceTensor;
  /** Float32 values of `t` (a copy), the input precision of the `reference/` oracles. */
  f32Copy(t: ReferenceTensor): Float32Array;
  /** A 2-D tensor as the `Matrix` the oracles take (float32 values). */
  toMatrix(t: ReferenceTensor): Matrix;
  /** A 0/1 mask tensor as the `Uint8Array` the oracles take. */
  toMask(t: ReferenceTensor, action: string): Uint8Array;
  /** An oracle's matrix as a tensor of `shape`. */
  fromMatrix(m: Matrix, shape: readonly number[]): Tensor;
  /** An oracle's mask as a tensor of `shape`. */
  fromMask(mask: Uint8Array, shape: readonly number[]): Tensor;
}

/** Builds the {@linkcode ReferenceContext} of a backend from its checker and allocator. */
export function referenceContext(
  check: TensorChecker<ReferenceTensor>,
  alloc: (shape: readonly number[]) => ReferenceTensor,
): ReferenceContext {
  const filled = (shape: readonly number[], values: ArrayLike<number>) => {
    const t = alloc(shape);
    floats(t).set(values);
    return t;
  };
  const f32Copy = (t: ReferenceTensor) => Float32Array.from(t.storage.data);
  return {
    check,
    alloc,
    filled,
    matrixInput(t, action) {
      const x = check.float(t, action);
      dims2(x, action);
      return x;
    },
    f32Copy,
    toMatrix: (t) => ({ rows: t.shape[0], cols: t.shape[1], data: f32Copy(t) }),
    toMask(t, action) {
      const d = t.storage.data, out = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) {
        if (d[i] !== 0 && d[i] !== 1) {
          throw new RangeError(
            `Cannot ${action}: a mask must hold only 0 and 1, got ${d[i]} at flat index ${i}`,
          );
        }
        out[i] = d[i];
      }
      return out;
    },
    fromMatrix: (m, shape) => filled(shape, m.data),
    fromMask: (mask, shape) => filled(shape, mask),
  };
}
