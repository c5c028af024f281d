/**
 * The WebGPU implementation of {@linkcode Backend}: every operation records one or a few kernel
 * dispatches into the runtime's shared compute pass and returns at once; only `read`/`readMany`
 * wait. It computes the same function as `ReferenceBackend`, op by op, in float32 (the reference
 * accumulates in float64 and rounds once, so results differ by float32 rounding only; the 2:4
 * operations are bit-exact where their float operations allow — see the kernel files).
 *
 * Memory: every returned tensor is a temporary in a pooled buffer until {@linkcode GpuBackend.keep};
 * {@linkcode GpuBackend.release} hands all temporaries back to the runtime's pool (recycled only
 * after the submit that used them) and flushes, so a training step that repeats the previous
 * one's operations finds every buffer in the pool and every pipeline in the cache: after the first
 * step, {@linkcode GpuBackend.poolMissCount} and {@linkcode GpuBackend.pipelineCount} stay constant.
 *
 * Differences from the reference that cannot be avoided without a host round trip: data-dependent
 * input errors (NaN handed to a pruning function, a non-finite row maximum in the causal softmax,
 * a mask holding a value other than 0/1) are not detected on the device. Index tensors are
 * checked, since the host keeps the indices it uploaded.
 *
 * @module
 */

import type {
  AdamWParams,
  Backend,
  DType,
  Fp8Format,
  LayerNormGrads,
  LayerNormResult,
  MatmulOptions,
  PrunedTensor,
  Tensor,
} from "../core/backend.ts";
import { GpuRuntime, type GpuRuntimeOptions } from "./runtime.ts";
import { GpuStorage, GpuTensor } from "./tensor.ts";
import {
  encodeMatmul,
  type MatmulRegisterBlocking,
  type MatmulTiling,
  TILING_128,
  TILING_64,
} from "./kernels/matmul.ts";
import { encodeBinary, encodeDropout, encodeFill, encodeUnary } from "./kernels/elementwise.ts";
import {
  encodeCopy,
  encodePadCols,
  encodePermute0213,
  encodeSliceCols,
  encodeTranspose,
} from "./kernels/layout.ts";
import { encodeLayerNorm, encodeLayerNormBackward } from "./kernels/layernorm.ts";
import { encodeCausalSoftmax, encodeSoftmaxBackward } from "./kernels/softmax.ts";
import { encodeEmbedding, encodeEmbeddingBackward } from "./kernels/embedding.ts";
import { encodeCrossEntropy, encodeCrossEntropyBackward } from "./kernels/cross_entropy.ts";
import { encodeColumnSum, encodeSum } from "./kernels/reduce.ts";
import { encodeAdamW } from "./kernels/adamw.ts";
import { encodePruneNM } from "./kernels/prune.ts";
import { encodeSoftThreshold24 } from "./kernels/soft_threshold.ts";
import { encodeMvue24 } from "./kernels/mvue.ts";
import { encodeMaskedDecay } from "./kernels/masked_decay.ts";
import { encodeFlipCount } from "./kernels/flip_rate.ts";
import { encodeQuantizeFp8 } from "./kernels/fp8.ts";
import {
  encodeGeglu,
  encodeGegluBackward,
  encodeSwiglu,
  encodeSwigluBackward,
} from "./kernels/gated.ts";
import { encodeTransposableMask24 } from "./kernels/transposable.ts";

/** Which dense matmul kernel a {@linkcode GpuBackend} runs (see `kernels/matmul.ts`). */
export type MatmulKernel = "auto" | "tiled" | "register" | "naive";

/** Options of {@linkcode GpuBackend}. */
export interface GpuBackendOptions {
  /**
   * The dense matmul kernel. `"auto"` (default): the register-blocked kernel on a fallback
   * (CPU-emulated) adapter, the tiled kernel on a GPU. `"register"` reads its operands through
   * textures (`matmulTextureSpec`; repacking operands whose texels would not be whole), and from
   * storage only where an operand exceeds the textures' capacity.
   */
  matmul?: MatmulKernel;
  /**
   * Tiling of the tiled kernel: a fixed {@linkcode MatmulTiling}, or `"auto"` (default): 128×128
   * tiles when a product has at least 64 of them, else 64×64.
   */
  matmulTiling?: MatmulTiling | "auto";
  /**
   * Blocking of the register kernel (default: `textureBlockingFor` of `kernels/matmul.ts` per
   * product; `REGISTER_16` where operands are read from storage).
   */
  matmulBlocking?: MatmulRegisterBlocking;
}

/**
 * The WebGPU {@linkcode Backend} (see the module notes).
 *
 * @example
 * ```ts
 * import { createGpuBackend } from "./backend.ts";
 * const be = await createGpuBackend();
 * const a = be.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const b = be.tensor(new Float32Array([1, 0, 0, 1]), [2, 2]);
 * const c = await be.read(be.matmul(a, b));
 * be.release();
 * be.destroy();
 * if (c.join() !== "1,2,3,4") throw new Error("unexpected product");
 * ```
 */
export class GpuBackend implements Backend {
  /** Always `"webgpu"`. */
  readonly name = "webgpu";
  /** The adapter's description. */
  readonly device: string;
  /** The runtime every kernel runs on. */
  readonly runtime: GpuRuntime;
  #temporaries = new Set<GpuStorage>();
  #tiling: MatmulTiling | "auto";
  #blocking: MatmulRegisterBlocking | undefined;
  #matmul: Exclude<MatmulKernel, "auto">;

  /**
   * Wraps a runtime (see {@linkcode createGpuBackend} for the usual way in).
   *
   * @param runtime The WebGPU runtime.
   * @param options Matmul kernel choices.
   * @throws {TypeError} If `options.matmul` is not a known kernel.
   */
  constructor(runtime: GpuRuntime, options: GpuBackendOptions = {}) {
    this.runtime = runtime;
    this.device = runtime.adapterName;
    this.#tiling = options.matmulTiling ?? "auto";
    this.#blocking = options.matmulBlocking;
    const kernel = options.matmul ?? "auto";
    if (!["auto", "tiled", "register", "naive"].includes(kernel)) {
      throw new TypeError(
        `Cannot create a GPU backend: matmul must be "auto", "tiled", "register" or "naive", got ${
          String(kernel)
        }`,
      );
    }
    this.#matmul = kernel === "auto" ? (runtime.isFallbackAdapter ? "register" : "tiled") : kernel;
  }

  /** Number of live temporary allocations (views share one); 0 right after {@linkcode release}. */
  get temporaryCount(): number {
    return this.#temporaries.size;
  }

  /** The dense matmul kernel in use (`"auto"` resolved for this adapter). */
  get matmulKernel(): Exclude<MatmulKernel, "auto"> {
    return this.#matmul;
  }

  /** Number of compute pipelines compiled so far. */
  get pipelineCount(): number {
    return this.runtime.pipelineCount;
  }

  /** Number of buffers the runtime had to create because its pool had none free. */
  get poolMissCount(): number {
    return this.runtime.poolMissCount;
  }

  /** Destroys the device and its pooled buffers; the backend is unusable afterwards. */
  destroy(): void {
    this.runtime.destroy();
  }

  // ---- memory ---------------------------------------------------------------------------------

  /**
   * Uploads `data` as an `f32` tensor of `shape` (a `Float64Array` is rounded to float32).
   *
   * @throws {TypeError} If `data` is not a `Float32Array` or `Float64Array`.
   * @throws {RangeError} If `shape` is invalid or its size differs from `data.length`.
   */
  tensor(data: Float32Array | Float64Array, shape: readonly number[]): Tensor {
    const action = "create a tensor";
    if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
      throw new TypeError(
        `Cannot ${action}: data must be a Float32Array or Float64Array, got ${describe(data)}`,
      );
    }
    const size = checkShape(shape, action);
    if (size !== data.length) {
      throw new RangeError(
        `Cannot ${action}: shape ${fmt(shape)} holds ${size} values, data has ${data.length}`,
      );
    }
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    return this.#wrap(this.runtime.upload(f32), shape, "f32");
  }

  /**
   * Uploads token indices as an `i32` tensor of `shape` (the host keeps a copy for index checks).
   *
   * @throws {TypeError} If `data` is not an `Int32Array`.
   * @throws {RangeError} If `shape` is invalid or its size differs from `data.length`.
   */
  indices(data: Int32Array, shape: readonly number[]): Tensor {
    const action = "create an index tensor";
    if (!(data instanceof Int32Array)) {
      throw new TypeError(`Cannot ${action}: data must be an Int32Array, got ${describe(data)}`);
    }
    const size = checkShape(shape, action);
    if (size !== data.length) {
      throw new RangeError(
        `Cannot ${action}: shape ${fmt(shape)} holds ${size} values, data has ${data.length}`,
      );
    }
    const host = Int32Array.from(data);
    return this.#wrap(this.runtime.upload(host), shape, "i32", host);
  }

  /**
   * A tensor of `shape` filled with `value` (default 0) on the device.
   *
   * @throws {RangeError} If `shape` is invalid or `value` is NaN.
   * @throws {TypeError} If `value` is not a number.
   */
  full(shape: readonly number[], value = 0): Tensor {
    const action = "fill a tensor";
    const size = checkShape(shape, action);
    if (typeof value !== "number") {
      throw new TypeError(`Cannot ${action}: value must be a number, got ${typeof value}`);
    }
    if (Number.isNaN(value)) throw new RangeError(`Cannot ${action}: value is NaN`);
    const buf = this.runtime.alloc(4 * size);
    encodeFill(this.runtime, buf, size, f32Bits(value));
    return this.#wrap(buf, shape, "f32");
  }

  /**
   * Reads a tensor back as float32 (`i32` values are converted).
   *
   * @throws {Error} If the tensor was released (the promise rejects).
   * @throws {TypeError} If `t` is not a tensor of this backend (the promise rejects).
   */
  async read(t: Tensor): Promise<Float32Array> {
    return (await this.readMany([t]))[0];
  }

  /**
   * Reads several tensors back in one transfer.
   *
   * @throws {Error} If a tensor was released (the promise rejects).
   * @throws {TypeError} If an element is not a tensor of this backend (the promise rejects).
   */
  async readMany(ts: readonly Tensor[]): Promise<Float32Array[]> {
    const xs = ts.map((t) => this.#use(t, "read tensors"));
    const raw = await this.runtime.readMany(
      xs.map((x) => ({ buffer: x.buffer, bytes: 4 * x.size })),
    );
    return raw.map((b, i) =>
      xs[i].dtype === "i32" ? Float32Array.from(new Int32Array(b)) : new Float32Array(b)
    );
  }

  /**
   * Marks a tensor (and every view of its storage) persistent; returns it.
   *
   * @throws {Error} If the tensor was already released.
   * @throws {TypeError} If `t` is not a tensor of this backend.
   */
  keep<T extends Tensor>(t: T): T {
    const x = this.#use(t, "keep a tensor");
    x.storage.state = "kept";
    this.#temporaries.delete(x.storage);
    return t;
  }

  /**
   * Frees a tensor's storage now (every view of it becomes unusable); the buffer returns to the
   * pool after the next submit.
   *
   * @throws {Error} If the tensor was already released.
   * @throws {TypeError} If `t` is not a tensor of this backend.
   */
  dispose(t: Tensor): void {
    const x = this.#use(t, "dispose a tensor");
    this.#temporaries.delete(x.storage);
    x.storage.state = "released";
    this.runtime.free(x.storage.buffer);
  }

  /** Frees every temporary tensor (kept tensors survive) and submits the recorded work. */
  release(): void {
    for (const s of this.#temporaries) {
      s.state = "released";
      this.runtime.free(s.buffer);
    }
    this.#temporaries.clear();
    this.runtime.flush();
  }

  /**
   * A view of `t` with a new shape of the same size (shares storage; same dtype).
   *
   * @throws {RangeError} If `shape` is invalid or holds a different number of elements.
   */
  reshape(t: Tensor, shape: readonly number[]): Tensor {
    const action = "reshape";
    const x = this.#use(t, action);
    const size = checkShape(shape, action);
    if (size !== x.size) {
      throw new RangeError(
        `Cannot ${action} ${fmt(x.shape)} to ${fmt(shape)}: sizes differ, ${x.size} vs ${size}`,
      );
    }
    return x.view(shape);
  }

  /**
   * Copies `src` into `dst` in place (a copy kernel in the shared pass, ordered after the work
   * that produced `src`).
   *
   * @throws {RangeError} If the shapes differ.
   * @throws {TypeError} If the dtypes differ.
   */
  assign(dst: Tensor, src: Tensor): void {
    const action = "assign";
    const d = this.#use(dst, action), s = this.#use(src, action);
    sameShape(d, s, action);
    if (d.dtype !== s.dtype) {
      throw new TypeError(`Cannot ${action}: dtypes differ, ${d.dtype} vs ${s.dtype}`);
    }
    if (d.storage === s.storage) return;
    encodeCopy(this.runtime, s.buffer, d.buffer, d.size);
    // Index tensors keep their host copy in step (the index checks read it).
    if (d.dtype === "i32") d.storage.hostIndices!.set(s.storage.hostIndices!);
  }

  // ---- linear algebra ---------------------------------------------------------------------------

  /**
   * `a·b` of 2-D `[M,K]·[K,N]` or batched 3-D `[B,M,K]·[B,K,N]` operands, optionally transposed,
   * accumulated in float32 (tiled kernel, see `kernels/matmul.ts`).
   *
   * @throws {RangeError} If the ranks are not both 2 or both 3, the batch sizes differ or the inner
   * dimensions differ.
   * @throws {TypeError} If `transA`/`transB` are not booleans.
   */
  matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
    const action = "matmul";
    const A = this.#float(a, action, "a"), B = this.#float(b, action, "b");
    const transA = options.transA ?? false, transB = options.transB ?? false;
    if (typeof transA !== "boolean" || typeof transB !== "boolean") {
      throw new TypeError(`Cannot ${action}: transA and transB must be booleans`);
    }
    const rank = A.shape.length;
    const desc = () =>
      `a ${fmt(A.shape)}${transA ? " (transA)" : ""}, b ${fmt(B.shape)}${
        transB ? " (transB)" : ""
      }`;
    if ((rank !== 2 && rank !== 3) || B.shape.length !== rank) {
      throw new RangeError(
        `Cannot ${action}: operands must be both 2-D or both 3-D, got ${desc()}`,
      );
    }
    const batch = rank === 3 ? A.shape[0] : 1;
    if (rank === 3 && B.shape[0] !== batch) {
      throw new RangeError(`Cannot ${action}: batch sizes differ, ${desc()}`);
    }
    const [ar, ac] = A.shape.slice(-2), [br, bc] = B.shape.slice(-2);
    const M = transA ? ac : ar, K = transA ? ar : ac;
    const N = transB ? br : bc, K2 = transB ? bc : br;
    if (K !== K2) {
      throw new RangeError(`Cannot ${action}: inner dimensions differ (${K} vs ${K2}), ${desc()}`);
    }
    const tiling = this.#tiling === "auto"
      ? (batch * Math.ceil(M / 128) * Math.ceil(N / 128) >= 64 ? TILING_128 : TILING_64)
      : this.#tiling;
    const out = encodeMatmul(this.runtime, A.buffer, B.buffer, {
      batch,
      m: M,
      n: N,
      k: K,
      transA,
      transB,
    }, { variant: this.#matmul, tiling, blocking: this.#blocking });
    return this.#wrap(out, rank === 3 ? [batch, M, N] : [M, N], "f32");
  }

  /**
   * Transpose of a 2-D tensor.
   *
   * @throws {RangeError} If `a` is not 2-D.
   */
  transpose(a: Tensor): Tensor {
    const action = "transpose";
    const x = this.#float(a, action);
    const [rows, cols] = dims2(x, action);
    if (Math.ceil(rows / 16) > 65535 || Math.ceil(cols / 16) > 65535) {
      throw new RangeError(`Cannot ${action}: ${fmt(x.shape)} exceeds the dispatch grid`);
    }
    return this.#wrap(encodeTranspose(this.runtime, x.buffer, rows, cols), [cols, rows], "f32");
  }

  /**
   * Views `x` as `[A, B, C, D]` and swaps the middle axes; the result has shape `[A, C, B, D]`.
   *
   * @throws {RangeError} If `dims` are not four non-negative integers whose product is `x.size`.
   */
  permute0213(x: Tensor, dims: readonly [number, number, number, number]): Tensor {
    const action = "permute axes 1 and 2";
    const t = this.#float(x, action);
    if (!Array.isArray(dims) || dims.length !== 4) {
      throw new RangeError(`Cannot ${action}: dims must be [A, B, C, D], got ${String(dims)}`);
    }
    const size = checkShape(dims, action);
    if (size !== t.size) {
      throw new RangeError(
        `Cannot ${action}: dims ${fmt(dims)} hold ${size} values, the tensor ${
          fmt(t.shape)
        } has ${t.size}`,
      );
    }
    const [A, B, C, D] = dims;
    return this.#wrap(encodePermute0213(this.runtime, t.buffer, dims), [A, C, B, D], "f32");
  }

  /**
   * Columns `[start, start + width)` of a 2-D tensor.
   *
   * @throws {RangeError} If `x` is not 2-D or the range is not inside its columns.
   */
  sliceCols(x: Tensor, start: number, width: number): Tensor {
    const action = "slice columns";
    const t = this.#float(x, action);
    const [rows, cols] = dims2(t, action);
    checkIndex(start, "start", action);
    checkIndex(width, "width", action);
    if (start + width > cols) {
      throw new RangeError(
        `Cannot ${action}: columns [${start}, ${start + width}) exceed the ${cols} columns of ${
          fmt(t.shape)
        }`,
      );
    }
    const out = encodeSliceCols(this.runtime, t.buffer, rows, cols, start, width);
    return this.#wrap(out, [rows, width], "f32");
  }

  /**
   * Places a 2-D `[N, width]` tensor at column `start` of a zero `[N, cols]` tensor.
   *
   * @throws {RangeError} If `x` is not 2-D or `start + width > cols`.
   */
  padCols(x: Tensor, start: number, cols: number): Tensor {
    const action = "pad columns";
    const t = this.#float(x, action);
    const [rows, width] = dims2(t, action);
    checkIndex(start, "start", action);
    checkIndex(cols, "cols", action);
    if (start + width > cols) {
      throw new RangeError(
        `Cannot ${action}: ${fmt(t.shape)} placed at column ${start} needs ${
          start + width
        } columns, got ${cols}`,
      );
    }
    const out = encodePadCols(this.runtime, t.buffer, rows, width, start, cols);
    return this.#wrap(out, [rows, cols], "f32");
  }

  // ---- element-wise -----------------------------------------------------------------------------

  /**
   * `a + b` (same shape).
   *
   * @throws {RangeError} If the shapes differ.
   */
  add(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.#pair(a, b, "add");
    return this.#like(x, encodeBinary(this.runtime, "add", x.buffer, y.buffer, x.size));
  }

  /**
   * `a + s·b` (same shape; `s` used as float32).
   *
   * @throws {RangeError} If the shapes differ or `s` is not finite.
   */
  addScaled(a: Tensor, b: Tensor, s: number): Tensor {
    const action = "add scaled";
    const [x, y] = this.#pair(a, b, action);
    checkFinite(s, "s", action);
    return this.#like(x, encodeBinary(this.runtime, "addScaled", x.buffer, y.buffer, x.size, s));
  }

  /**
   * `a ⊙ b` (same shape).
   *
   * @throws {RangeError} If the shapes differ.
   */
  mul(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.#pair(a, b, "multiply");
    return this.#like(x, encodeBinary(this.runtime, "mul", x.buffer, y.buffer, x.size));
  }

  /**
   * `s·a` (`s` used as float32).
   *
   * @throws {RangeError} If `s` is not finite.
   */
  scale(a: Tensor, s: number): Tensor {
    const action = "scale";
    const x = this.#float(a, action);
    checkFinite(s, "s", action);
    return this.#like(x, encodeUnary(this.runtime, "scale", x.buffer, x.size, s));
  }

  /** Exact-erf GELU `0.5·x·(1 + erf(x/√2))` (float32 erfc, see `kernels/elementwise.ts`). */
  gelu(x: Tensor): Tensor {
    const t = this.#float(x, "apply GELU");
    return this.#like(t, encodeUnary(this.runtime, "gelu", t.buffer, t.size));
  }

  /**
   * `dy ⊙ GELU'(x)`.
   *
   * @throws {RangeError} If the shapes differ.
   */
  geluBackward(x: Tensor, dy: Tensor): Tensor {
    const [t, g] = this.#pair(x, dy, "apply the GELU backward pass");
    return this.#like(t, encodeBinary(this.runtime, "geluBackward", t.buffer, g.buffer, t.size));
  }

  /**
   * GEGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not 2-D with an even number of columns.
   */
  geglu(x: Tensor): Tensor {
    const t = this.#gatedInput(x, "apply GEGLU");
    const [n, h] = [t.shape[0], t.shape[1] / 2];
    return this.#wrap(encodeGeglu(this.runtime, t.buffer, n, h), [n, h], "f32");
  }

  /**
   * GEGLU backward → `[N, 2h]` = `[∂x | ∂gate]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not `[N, 2h]` or `dy` is not `[N, h]`.
   */
  gegluBackward(x: Tensor, dy: Tensor): Tensor {
    const [t, g] = this.#gatedPair(x, dy, "apply the GEGLU backward pass");
    const out = encodeGegluBackward(this.runtime, t.buffer, g.buffer, g.shape[0], g.shape[1]);
    return this.#like(t, out);
  }

  /**
   * SwiGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not 2-D with an even number of columns.
   */
  swiglu(x: Tensor): Tensor {
    const t = this.#gatedInput(x, "apply SwiGLU");
    const [n, h] = [t.shape[0], t.shape[1] / 2];
    return this.#wrap(encodeSwiglu(this.runtime, t.buffer, n, h), [n, h], "f32");
  }

  /**
   * SwiGLU backward → `[N, 2h]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not `[N, 2h]` or `dy` is not `[N, h]`.
   */
  swigluBackward(x: Tensor, dy: Tensor): Tensor {
    const [t, g] = this.#gatedPair(x, dy, "apply the SwiGLU backward pass");
    const out = encodeSwigluBackward(this.runtime, t.buffer, g.buffer, g.shape[0], g.shape[1]);
    return this.#like(t, out);
  }

  /**
   * Inverted dropout with the keep decision `uniform4(seed, stream, ⌊i/4⌋)[i % 4] ≥ p`, drawn on
   * the device by the same Philox generator as the reference (identical decisions).
   *
   * @throws {RangeError} If `p` is not in `[0, 1)`, `seed` is not an integer in `[0, 2^53)` or
   * `stream` not an integer in `[0, 2^32)`.
   */
  dropout(x: Tensor, p: number, seed: number, stream: number): Tensor {
    const action = "apply dropout";
    const t = this.#float(x, action);
    if (typeof p !== "number" || !(p >= 0 && p < 1)) {
      throw new RangeError(`Cannot ${action}: p must be in [0, 1), got ${p}`);
    }
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 53) {
      throw new RangeError(`Cannot ${action}: seed must be an integer in [0, 2^53), got ${seed}`);
    }
    if (!Number.isInteger(stream) || stream < 0 || stream >= 2 ** 32) {
      throw new RangeError(
        `Cannot ${action}: stream must be an integer in [0, 2^32), got ${stream}`,
      );
    }
    return this.#like(t, encodeDropout(this.runtime, t.buffer, t.size, p, seed, stream));
  }

  // ---- normalisation, attention, embedding, loss ------------------------------------------------

  /**
   * LayerNorm over the last axis of `x[N, d]` (biased variance, `rstd = 1/√(var + eps)`).
   *
   * @throws {RangeError} If `x` is not 2-D with `d ≥ 1`, `w` or `b` is not `[d]`, or `eps` is not a
   * positive finite number.
   */
  layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): LayerNormResult {
    const action = "apply LayerNorm";
    const X = this.#float(x, action, "x"), W = this.#float(w, action, "w");
    const B = this.#float(b, action, "b");
    const [n, d] = dims2(X, action);
    if (d < 1) {
      throw new RangeError(`Cannot ${action}: rows must not be empty, got ${fmt(X.shape)}`);
    }
    vector(W, d, action, "w", X);
    vector(B, d, action, "b", X);
    if (typeof eps !== "number" || !Number.isFinite(eps) || eps <= 0) {
      throw new RangeError(`Cannot ${action}: eps must be a positive finite number, got ${eps}`);
    }
    const r = encodeLayerNorm(this.runtime, X.buffer, W.buffer, B.buffer, n, d, eps);
    return {
      y: this.#wrap(r.y, [n, d], "f32"),
      mean: this.#wrap(r.mean, [n], "f32"),
      rstd: this.#wrap(r.rstd, [n], "f32"),
    };
  }

  /**
   * Backward of {@linkcode GpuBackend.layerNorm} from the saved `mean` and `rstd`.
   *
   * @throws {RangeError} If `x`/`dy` are not the same `[N, d]`, `w` is not `[d]`, or `mean`/`rstd`
   * are not `[N]`.
   */
  layerNormBackward(
    x: Tensor,
    w: Tensor,
    mean: Tensor,
    rstd: Tensor,
    dy: Tensor,
  ): LayerNormGrads {
    const action = "apply the LayerNorm backward pass";
    const X = this.#float(x, action, "x"), W = this.#float(w, action, "w");
    const Mu = this.#float(mean, action, "mean"), Rs = this.#float(rstd, action, "rstd");
    const G = this.#float(dy, action, "dy");
    const [n, d] = dims2(X, action);
    sameShape(X, G, action);
    vector(W, d, action, "w", X);
    vector(Mu, n, action, "mean", X);
    vector(Rs, n, action, "rstd", X);
    const r = encodeLayerNormBackward(
      this.runtime,
      X.buffer,
      W.buffer,
      Mu.buffer,
      Rs.buffer,
      G.buffer,
      n,
      d,
    );
    return {
      dx: this.#wrap(r.dx, [n, d], "f32"),
      dw: this.#wrap(r.dw, [d], "f32"),
      db: this.#wrap(r.db, [d], "f32"),
    };
  }

  /**
   * Causal softmax of `scale·s` over the rows of `[B, T, T]` scores (columns `> row` get 0).
   *
   * @throws {RangeError} If `s` is not `[B, T, T]` or `scale` is not finite.
   */
  causalSoftmax(s: Tensor, scale: number): Tensor {
    const action = "apply the causal softmax";
    const S = this.#float(s, action);
    if (S.shape.length !== 3 || S.shape[1] !== S.shape[2]) {
      throw new RangeError(`Cannot ${action}: scores must be [B, T, T], got ${fmt(S.shape)}`);
    }
    checkFinite(scale, "scale", action);
    const [batch, T] = S.shape;
    return this.#like(S, encodeCausalSoftmax(this.runtime, S.buffer, batch, T, scale));
  }

  /**
   * Softmax backward along the last axis: `p ⊙ (dp − Σ p⊙dp)` per row.
   *
   * @throws {RangeError} If the shapes differ.
   */
  softmaxBackward(p: Tensor, dp: Tensor): Tensor {
    const [P, G] = this.#pair(p, dp, "apply the softmax backward pass");
    const width = P.shape[P.shape.length - 1];
    const rows = width === 0 ? 0 : P.size / width;
    return this.#like(P, encodeSoftmaxBackward(this.runtime, P.buffer, G.buffer, rows, width));
  }

  /**
   * Rows of `table[V, d]` picked by `idx` (`i32`, `[N]`) → `[N, d]`.
   *
   * @throws {RangeError} If `table` is not 2-D, `idx` is not 1-D, or an index is outside `[0, V)`.
   * @throws {TypeError} If `idx` is not `i32` or `table` is not `f32`.
   */
  embedding(table: Tensor, idx: Tensor): Tensor {
    const action = "look up embeddings";
    const Tb = this.#float(table, action, "table"), I = this.#int(idx, action, "idx");
    const [vocab, d] = dims2(Tb, action);
    const ids = indexVector(I, vocab, action);
    const out = encodeEmbedding(this.runtime, Tb.buffer, I.buffer, ids.length, d);
    return this.#wrap(out, [ids.length, d], "f32");
  }

  /**
   * Scatter-add of `dy[N, d]` into a zero `[vocab, d]` by `idx`, each row summed in index order
   * `n = 0, 1, …` (deterministic, no atomics).
   *
   * @throws {RangeError} If `idx` is not `[N]`, `dy` not `[N, d]`, `vocab` not a non-negative
   * integer, or an index is outside `[0, vocab)`.
   * @throws {TypeError} If `idx` is not `i32`.
   */
  embeddingBackward(idx: Tensor, dy: Tensor, vocab: number): Tensor {
    const action = "apply the embedding backward pass";
    const I = this.#int(idx, action, "idx"), G = this.#float(dy, action, "dy");
    checkIndex(vocab, "vocab", action);
    const [n, d] = dims2(G, action);
    const ids = indexVector(I, vocab, action);
    if (ids.length !== n) {
      throw new RangeError(
        `Cannot ${action}: idx ${fmt(I.shape)} and dy ${fmt(G.shape)} have different row counts`,
      );
    }
    const out = encodeEmbeddingBackward(this.runtime, G.buffer, ids, vocab, d);
    return this.#wrap(out, [vocab, d], "f32");
  }

  /**
   * Mean cross-entropy of `logits[N, C]` against `targets` (`i32`, `[N]`) → `[1]`.
   *
   * @throws {RangeError} If `logits` is not `[N, C]` with `N, C ≥ 1`, `targets` is not `[N]`, or a
   * target is outside `[0, C)`.
   * @throws {TypeError} If `targets` is not `i32`.
   */
  crossEntropy(logits: Tensor, targets: Tensor): Tensor {
    const action = "compute the cross-entropy";
    const { Z, T, n, c } = this.#ceInputs(logits, targets, action);
    return this.#wrap(encodeCrossEntropy(this.runtime, Z.buffer, T.buffer, n, c), [1], "f32");
  }

  /**
   * `dLoss · (softmax(z) − onehot(target)) / N` → `[N, C]` (`dLoss` read on the device).
   *
   * @throws {RangeError} As {@linkcode GpuBackend.crossEntropy}, or if `dLoss` is not `[1]`.
   * @throws {TypeError} If `targets` is not `i32`.
   */
  crossEntropyBackward(logits: Tensor, targets: Tensor, dLoss: Tensor): Tensor {
    const action = "apply the cross-entropy backward pass";
    const { Z, T, n, c } = this.#ceInputs(logits, targets, action);
    const L = this.#float(dLoss, action, "dLoss");
    if (L.shape.length !== 1 || L.shape[0] !== 1) {
      throw new RangeError(`Cannot ${action}: dLoss must be [1], got ${fmt(L.shape)}`);
    }
    const out = encodeCrossEntropyBackward(this.runtime, Z.buffer, T.buffer, L.buffer, n, c);
    return this.#wrap(out, [n, c], "f32");
  }

  /**
   * Mean over the rows of `x[N, d]` → `[d]` (two-pass column sums times `1/N`).
   *
   * @throws {RangeError} If `x` is not 2-D with at least one row.
   */
  meanRows(x: Tensor): Tensor {
    const action = "average rows";
    const X = this.#float(x, action);
    const [n, d] = dims2(X, action);
    if (n < 1) throw new RangeError(`Cannot ${action}: no rows in ${fmt(X.shape)}`);
    return this.#wrap(encodeColumnSum(this.runtime, X.buffer, n, d, 1 / n), [d], "f32");
  }

  // ---- reductions -------------------------------------------------------------------------------

  /** `Σ x²` → `[1]` (two-pass, deterministic). */
  sumSquares(x: Tensor): Tensor {
    const X = this.#float(x, "sum squares");
    return this.#wrap(encodeSum(this.runtime, X.buffer, null, X.size), [1], "f32");
  }

  /**
   * `Σ a ⊙ b` → `[1]` (two-pass, deterministic).
   *
   * @throws {RangeError} If the shapes differ.
   */
  dot(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.#pair(a, b, "take a dot product");
    return this.#wrap(encodeSum(this.runtime, x.buffer, y.buffer, x.size), [1], "f32");
  }

  // ---- 2:4 sparsity -----------------------------------------------------------------------------

  /**
   * Hard N:M magnitude pruning along rows (`kernels/prune.ts`; NaN is not detected on the device).
   *
   * @throws {RangeError} If `w` is not 2-D, `n`/`m` are invalid (`m ≤ 16` on the GPU) or
   * `cols % m !== 0`.
   */
  pruneNM(w: Tensor, n: number, m: number): PrunedTensor {
    const W = this.#float(w, `prune to ${n}:${m}`);
    const [rows, cols] = dims2(W, `prune to ${n}:${m}`);
    const r = encodePruneNM(this.runtime, W.buffer, rows, cols, n, m);
    return { pruned: this.#like(W, r.pruned), mask: this.#like(W, r.mask) };
  }

  /**
   * Soft-threshold 2:4 pruning (`kernels/soft_threshold.ts`).
   *
   * @throws {RangeError} If `w` is not 2-D or `cols % 4 !== 0`.
   */
  softThreshold24(w: Tensor): PrunedTensor {
    const action = "soft-threshold to 2:4";
    const W = this.#float(w, action);
    const [rows, cols] = dims2(W, action);
    const r = encodeSoftThreshold24(this.runtime, W.buffer, rows, cols);
    return { pruned: this.#like(W, r.pruned), mask: this.#like(W, r.mask) };
  }

  /**
   * Transposable 2:4 mask, the exact per-block optimum over the 90 patterns with the SPEC's tie
   * order (`kernels/transposable.ts`).
   *
   * @throws {RangeError} If `w` is not 2-D with both dimensions multiples of 4.
   */
  transposableMask24(w: Tensor): Tensor {
    const action = "find a transposable 2:4 mask";
    const W = this.#float(w, action);
    const [rows, cols] = dims2(W, action);
    const r = encodeTransposableMask24(this.runtime, W.buffer, rows, cols);
    this.runtime.free(r.pruned);
    this.runtime.free(r.indices);
    return this.#like(W, r.mask);
  }

  /**
   * MVUE 2:4 along rows with Philox uniforms at (`seed`, `stream`, group): the same draws as the
   * reference (`kernels/mvue.ts`).
   *
   * @throws {RangeError} If `g` is not 2-D, `cols % 4 !== 0`, or the seed or stream is out of range.
   */
  mvue24(g: Tensor, seed: number, stream: number): Tensor {
    const action = "sample MVUE 2:4";
    const G = this.#float(g, action);
    const [rows, cols] = dims2(G, action);
    return this.#like(G, encodeMvue24(this.runtime, G.buffer, rows, cols, seed, stream));
  }

  /**
   * `grad + alpha·(1 − mask) ⊙ w` (`kernels/masked_decay.ts`).
   *
   * @throws {RangeError} If the shapes differ, a tensor is not 2-D, or `alpha` is negative or not
   * finite.
   */
  maskedDecay(grad: Tensor, w: Tensor, mask: Tensor, alpha: number): Tensor {
    const action = "apply masked decay";
    const G = this.#float(grad, action, "grad"), W = this.#float(w, action, "w");
    const M = this.#float(mask, action, "mask");
    dims2(G, action);
    dims2(W, action);
    dims2(M, action);
    sameShape(G, W, action);
    sameShape(G, M, action);
    const out = encodeMaskedDecay(this.runtime, G.buffer, W.buffer, M.buffer, G.size, alpha);
    return this.#like(G, out);
  }

  /**
   * Number of positions where two 0/1 masks differ → `[1]` (exact up to 2^24).
   *
   * @throws {RangeError} If the shapes differ.
   */
  flipCount(prev: Tensor, next: Tensor): Tensor {
    const [P, N] = this.#pair(prev, next, "count mask flips");
    const out = encodeFlipCount(this.runtime, P.buffer, N.buffer, P.size, { output: "f32" });
    return this.#wrap(out, [1], "f32");
  }

  /**
   * FP8 quantise–dequantise with per-tensor amax scaling (`kernels/fp8.ts`), any shape.
   *
   * @throws {TypeError} If `format` is neither `"e4m3"` nor `"e5m2"`.
   */
  quantizeFp8(x: Tensor, format: Fp8Format): Tensor {
    const X = this.#float(x, `quantize to FP8 ${format}`);
    const r = encodeQuantizeFp8(this.runtime, X.buffer, X.size, format);
    this.runtime.free(r.scale);
    return this.#like(X, r.dequantized);
  }

  // ---- optimizer --------------------------------------------------------------------------------

  /**
   * One AdamW step in place (the reference's order of operations, float32).
   *
   * @throws {RangeError} If the shapes differ, `param`, `m` and `v` share storage, or a
   * hyper-parameter is out of range (`lr, weightDecay ≥ 0`, `beta1, beta2 ∈ [0, 1)`, `eps > 0`,
   * `step` a positive integer).
   * @throws {TypeError} If `hp` is not an object.
   */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hp: AdamWParams): void {
    const action = "apply AdamW";
    const P = this.#float(param, action, "param"), G = this.#float(grad, action, "grad");
    const Mt = this.#float(m, action, "m"), V = this.#float(v, action, "v");
    sameShape(P, G, action);
    sameShape(P, Mt, action);
    sameShape(P, V, action);
    if (P.storage === Mt.storage || P.storage === V.storage || Mt.storage === V.storage) {
      throw new RangeError(`Cannot ${action}: param, m and v must be distinct tensors`);
    }
    if (hp === null || typeof hp !== "object") {
      throw new TypeError(`Cannot ${action}: hyper-parameters must be an object, got ${hp}`);
    }
    const { lr, beta1, beta2, eps, weightDecay, step } = hp;
    checkRange(lr, "lr", action, (x) => x >= 0, "a finite number ≥ 0");
    checkRange(beta1, "beta1", action, (x) => x >= 0 && x < 1, "in [0, 1)");
    checkRange(beta2, "beta2", action, (x) => x >= 0 && x < 1, "in [0, 1)");
    checkRange(eps, "eps", action, (x) => x > 0, "a finite number > 0");
    checkRange(weightDecay, "weightDecay", action, (x) => x >= 0, "a finite number ≥ 0");
    if (!Number.isInteger(step) || step < 1) {
      throw new RangeError(`Cannot ${action}: step must be a positive integer, got ${step}`);
    }
    encodeAdamW(this.runtime, P.buffer, G.buffer, Mt.buffer, V.buffer, P.size, hp);
  }

  // ---- private helpers --------------------------------------------------------------------------

  #wrap(
    buffer: GPUBuffer,
    shape: readonly number[],
    dtype: DType,
    hostIndices?: Int32Array,
  ): GpuTensor {
    const storage = new GpuStorage(this, buffer, hostIndices);
    this.#temporaries.add(storage);
    return new GpuTensor(storage, shape, dtype);
  }

  /** A new temporary `f32` tensor of `x`'s shape over `buffer`. */
  #like(x: GpuTensor, buffer: GPUBuffer): GpuTensor {
    return this.#wrap(buffer, x.shape, "f32");
  }

  #use(t: Tensor, action: string): GpuTensor {
    if (!(t instanceof GpuTensor)) {
      throw new TypeError(
        `Cannot ${action}: expected a tensor of a GpuBackend, got ${describe(t)}`,
      );
    }
    if (t.storage.owner !== this) {
      throw new TypeError(
        `Cannot ${action}: the tensor ${fmt(t.shape)} belongs to another GpuBackend instance`,
      );
    }
    if (t.released) {
      throw new Error(
        `Cannot use a released tensor ${
          fmt(t.shape)
        } (to ${action}): it was freed by release() or dispose(); keep() tensors that must outlive a step`,
      );
    }
    return t;
  }

  #float(t: Tensor, action: string, name = "the input"): GpuTensor {
    const x = this.#use(t, action);
    if (x.dtype !== "f32") {
      throw new TypeError(`Cannot ${action}: ${name} must be an f32 tensor, got ${x.dtype}`);
    }
    return x;
  }

  #int(t: Tensor, action: string, name: string): GpuTensor {
    const x = this.#use(t, action);
    if (x.dtype !== "i32") {
      throw new TypeError(`Cannot ${action}: ${name} must be an i32 tensor, got ${x.dtype}`);
    }
    return x;
  }

  #pair(a: Tensor, b: Tensor, action: string): [GpuTensor, GpuTensor] {
    const x = this.#float(a, action, "a"), y = this.#float(b, action, "b");
    sameShape(x, y, action);
    return [x, y];
  }

  #gatedInput(x: Tensor, action: string): GpuTensor {
    const t = this.#float(x, action, "x");
    const [, cols] = dims2(t, action);
    if (cols % 2 !== 0) {
      throw new RangeError(
        `Cannot ${action}: x must be [N, 2h] = [x | gate], got an odd width in ${fmt(t.shape)}`,
      );
    }
    return t;
  }

  #gatedPair(x: Tensor, dy: Tensor, action: string): [GpuTensor, GpuTensor] {
    const t = this.#gatedInput(x, action), g = this.#float(dy, action, "dy");
    if (g.shape.length !== 2 || g.shape[0] !== t.shape[0] || 2 * g.shape[1] !== t.shape[1]) {
      throw new RangeError(
        `Cannot ${action}: dy must be [N, h] for x [N, 2h] = ${fmt(t.shape)}, got ${fmt(g.shape)}`,
      );
    }
    return [t, g];
  }

  #ceInputs(logits: Tensor, targets: Tensor, action: string) {
    const Z = this.#float(logits, action, "logits"), T = this.#int(targets, action, "targets");
    const [n, c] = dims2(Z, action);
    if (n < 1 || c < 1) {
      throw new RangeError(
        `Cannot ${action}: logits must be [N, C] with N, C ≥ 1, got ${fmt(Z.shape)}`,
      );
    }
    const t = indexVector(T, c, action);
    if (t.length !== n) {
      throw new RangeError(
        `Cannot ${action}: targets ${fmt(T.shape)} do not match logits ${fmt(Z.shape)}`,
      );
    }
    return { Z, T, n, c };
  }
}

/**
 * Creates a WebGPU backend on the best available adapter.
 *
 * @param options Adapter preference (see `GpuRuntime.create`).
 * @returns The backend.
 * @throws {WebGpuUnavailableError} If WebGPU or an adapter is missing.
 * @example
 * ```ts
 * import { createGpuBackend } from "./backend.ts";
 * const be = await createGpuBackend();
 * const s = await be.read(be.sumSquares(be.tensor(new Float32Array([3, 4]), [2])));
 * be.destroy();
 * if (s[0] !== 25) throw new Error("unexpected");
 * ```
 */
export async function createGpuBackend(options?: GpuRuntimeOptions): Promise<GpuBackend> {
  return new GpuBackend(await GpuRuntime.create(options));
}

// ---- module helpers -----------------------------------------------------------------------------

function f32Bits(v: number): number {
  return new Uint32Array(Float32Array.of(v).buffer)[0];
}

/** The host copy of a 1-D `i32` tensor's indices, each checked to lie in `[0, limit)`. */
function indexVector(t: GpuTensor, limit: number, action: string): Int32Array {
  if (t.shape.length !== 1) {
    throw new RangeError(`Cannot ${action}: indices must be 1-D [N], got ${fmt(t.shape)}`);
  }
  const ids = t.storage.hostIndices;
  if (!ids) {
    throw new TypeError(
      `Cannot ${action}: the index tensor must come from indices() (the host keeps its values)`,
    );
  }
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= limit) {
      throw new RangeError(
        `Cannot ${action}: index ${ids[i]} at position ${i} is outside [0, ${limit})`,
      );
    }
  }
  return ids;
}

function dims2(t: GpuTensor, action: string): [number, number] {
  if (t.shape.length !== 2) {
    throw new RangeError(`Cannot ${action}: expected a 2-D tensor, got ${fmt(t.shape)}`);
  }
  return [t.shape[0], t.shape[1]];
}

function vector(t: GpuTensor, length: number, action: string, name: string, x: GpuTensor): void {
  if (t.shape.length !== 1 || t.shape[0] !== length) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be [${length}] for x ${fmt(x.shape)}, got ${fmt(t.shape)}`,
    );
  }
}

function checkShape(shape: readonly number[], action: string): number {
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new RangeError(
      `Cannot ${action}: a shape must be a non-empty array of dimensions, got ${String(shape)}`,
    );
  }
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `Cannot ${action}: dimensions must be non-negative integers, got ${fmt(shape)}`,
      );
    }
    size *= d;
  }
  return size;
}

function checkIndex(n: number, name: string, action: string): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Cannot ${action}: ${name} must be a non-negative integer, got ${n}`);
  }
}

function checkFinite(s: number, name: string, action: string): void {
  if (typeof s !== "number" || !Number.isFinite(s)) {
    throw new RangeError(`Cannot ${action}: ${name} must be a finite number, got ${s}`);
  }
}

function checkRange(
  x: number,
  name: string,
  action: string,
  ok: (x: number) => boolean,
  what: string,
): void {
  if (typeof x !== "number" || !Number.isFinite(x) || !ok(x)) {
    throw new RangeError(`Cannot ${action}: ${name} must be ${what}, got ${x}`);
  }
}

function sameShape(a: GpuTensor, b: GpuTensor, action: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new RangeError(`Cannot ${action}: shapes differ, ${fmt(a.shape)} vs ${fmt(b.shape)}`);
  }
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x !== "object") return typeof x;
  return (x as object).constructor?.name ?? "object";
}
