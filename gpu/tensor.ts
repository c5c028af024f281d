/**
 * The WebGPU backend's tensor: a shape and an element type over a pooled GPU buffer. Views made
 * by `reshape` share their base's {@linkcode GpuStorage}, so keeping, releasing or disposing any
 * of them applies to all.
 *
 * @module
 */

import { StoredTensor } from "../core/backend.ts";

/** Lifetime state of a storage: a temporary of the current step, kept, or freed. */
export type TensorState = "temporary" | "kept" | "released";

/** One pooled GPU allocation shared by a tensor and its views. */
export class GpuStorage {
  /** The buffer (from the runtime's pool; at least `4·size` bytes, a multiple of 16). */
  readonly buffer: GPUBuffer;
  /** Lifetime state. */
  state: TensorState = "temporary";
  /** Host copy of the values of an `i32` tensor uploaded from the host (for index checks). */
  readonly hostIndices: Int32Array | undefined;
  /** The backend that owns the storage (tensors of other backends are rejected). */
  readonly owner: object;

  /**
   * Wraps a buffer.
   *
   * @param owner The owning backend.
   * @param buffer The pooled buffer.
   * @param hostIndices Host copy of an `i32` tensor's values, if it came from the host.
   */
  constructor(owner: object, buffer: GPUBuffer, hostIndices?: Int32Array) {
    this.owner = owner;
    this.buffer = buffer;
    this.hostIndices = hostIndices;
  }
}

/** A tensor of the WebGPU backend (see the module notes). */
export class GpuTensor extends StoredTensor<GpuStorage> {
  /** Lifetime state of the underlying storage. */
  get state(): TensorState {
    return this.storage.state;
  }

  /** Whether the tensor survives `release()`. */
  get kept(): boolean {
    return this.storage.state === "kept";
  }

  /** Whether the tensor was freed; any further use throws. */
  get released(): boolean {
    return this.storage.state === "released";
  }

  /**
   * The GPU buffer.
   *
   * @throws {Error} If the tensor was released.
   */
  get buffer(): GPUBuffer {
    if (this.storage.state === "released") {
      throw new Error(
        `Cannot use a released tensor [${
          this.shape.join(", ")
        }]: it was freed by release() or dispose(); keep() tensors that must outlive a step`,
      );
    }
    return this.storage.buffer;
  }

  /**
   * A view with another shape over the same storage (the caller checks the size).
   *
   * @param shape The new dimensions.
   * @returns The view.
   */
  view(shape: readonly number[]): GpuTensor {
    return new GpuTensor(this.storage, shape, this.dtype);
  }
}
