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
 * Over 600 lines on purpose: one class implementing the ~45 operations of one interface, each a
 * few lines of checks and a kernel call; split by op family, it would scatter that implementation.
 *
 * @module
 */

import type * as api from "../core/backend.ts";
import type { Backend, Tensor } from "../core/backend.ts";
import { describeAdapter, GpuRuntime, type GpuRuntimeOptions } from "./runtime.ts";
import { GpuStorage, GpuTensor } from "./tensor.ts";
import {
  encodeMatmul,
  type MatmulDims,
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
import { encodeMergeHeads, encodeSplitHeads } from "./kernels/heads.ts";
import { encodeLayerNorm, encodeLayerNormBackward } from "./kernels/layernorm.ts";
import { encodeCausalSoftmax, encodeSoftmaxBackward } from "./kernels/softmax.ts";
import { encodeAttentionForward } from "./kernels/attention_forward.ts";
import { type AttentionKeyPass, encodeAttentionBackward } from "./kernels/attention_backward.ts";
import { encodeEmbedding, encodeEmbeddingBackward } from "./kernels/embedding.ts";
import { encodeCrossEntropy, encodeCrossEntropyBackward } from "./kernels/cross_entropy.ts";
import {
  encodeColumnSum,
  encodeSum,
  encodeSumSquaresMany,
  sumSquaresSlotsFor,
} from "./kernels/reduce.ts";
import { adamwFloats, encodeAdamW } from "./kernels/adamw.ts";
import { type AdamWSlot, adamwSlotsFor, encodeAdamWMulti } from "./kernels/adamw_multi.ts";
import { encodeScaleClipped } from "./kernels/grad_clip.ts";
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
  type GatedActivation,
  type GatedBackwardEncoder,
  type GatedForwardEncoder,
} from "./kernels/gated.ts";
import { encodeTransposableMask24 } from "./kernels/transposable.ts";
import { SparseKernelChooser } from "./sparse_kernels.ts";
import {
  checkFill,
  checkFinite,
  checkIndexData,
  checkSumSquaresMany,
  checkTensorData,
  dims2,
  fmt,
  sameShape,
  TensorChecker,
  type TensorKind,
} from "../core/backend_checks.ts";

/** Which dense matmul kernel a {@linkcode GpuBackend} runs (see `kernels/matmul.ts`). */
export type MatmulKernel = "auto" | "wide" | "tiled" | "register" | "naive";

/**
 * How a {@linkcode GpuBackend} computes causal self-attention (SPEC §8.5): `"fused"` runs the
 * online-softmax kernels (no `[BH, T, T]` tensor), `"composed"` declines `causalAttention` so
 * `ops.causalSelfAttention` composes `matmul` and `causalSoftmax`; `"auto"` picks per adapter
 * and shape ({@linkcode GpuBackend.attentionPath}).
 */
export type AttentionPath = "auto" | "fused" | "composed";

/** Options of {@linkcode GpuBackend}. */
export interface GpuBackendOptions {
  /** The causal attention path (default `"auto"`; see {@linkcode AttentionPath}). */
  attention?: AttentionPath;
  /**
   * The fused backward's key-row pass: `"joint"` (default, dK and dV in one pass) or `"split"`
   * (two passes holding fewer registers; `kernels/attention_backward.ts`).
   */
  attentionKeyPass?: AttentionKeyPass;
  /**
   * The dense matmul kernel. `"auto"` (default): the register-blocked kernel on a fallback
   * (CPU-emulated) adapter, the wide kernel on a GPU. `"register"` reads its operands through
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
  /**
   * Products promised 2:4 (`MatmulOptions.sparse24`): `"auto"` (default) times the dense and the
   * compressed 2:4 path per shape and keeps the faster (`sparse_kernels.ts`, SPEC §8.6);
   * `"dense"` or `"sparse"` forces one path.
   */
  sparseKernels?: api.SparseKernelMode;
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
  /**
   * The adapter, the wgpu backend and the adapter ids ({@linkcode describeAdapter}), e.g.
   * "llvmpipe (LLVM 15.0.6, 256 bits) via Vulkan (vendor 0x10005, device 0, subgroups 8–8)":
   * what every run header, summary and table records.
   */
  readonly device: string;
  /** The runtime every kernel runs on. */
  readonly runtime: GpuRuntime;
  #temporaries = new Set<GpuStorage>();
  #tiling: MatmulTiling | "auto";
  #blocking: MatmulRegisterBlocking | undefined;
  #matmul: Exclude<MatmulKernel, "auto">;
  #attention: AttentionPath;
  #keyPass: AttentionKeyPass;
  #check = new TensorChecker<GpuTensor>(this, GPU_TENSORS);
  /**
   * Each logits storage's row log-sum-exp from `crossEntropy`, for its backward pass; dropped when
   * an operation writes the storage in place (`assign`, AdamW).
   */
  #savedLse = new WeakMap<GpuStorage, { lse: GpuTensor; rows: number; C: number }>();
  /** The dense-or-2:4 choice for products promised 2:4 (SPEC §8.6). */
  readonly sparseKernels: SparseKernelChooser;

  /**
   * Wraps a runtime (see {@linkcode createGpuBackend} for the usual way in).
   *
   * @param runtime The WebGPU runtime.
   * @param options Matmul kernel choices.
   * @throws {TypeError} If `options.matmul` or `options.attention` is not a known choice.
   */
  constructor(runtime: GpuRuntime, options: GpuBackendOptions = {}) {
    const attention = options.attention ?? "auto";
    if (!["auto", "fused", "composed"].includes(attention)) {
      throw new TypeError(
        `Cannot create a GPU backend: attention must be "auto", "fused" or "composed", got ${
          String(attention)
        }`,
      );
    }
    this.#attention = attention;
    this.#keyPass = options.attentionKeyPass ?? "joint";
    if (!["joint", "split"].includes(this.#keyPass)) {
      throw new TypeError(
        `Cannot create a GPU backend: attentionKeyPass must be "joint" or "split", got ${
          String(this.#keyPass)
        }`,
      );
    }
    this.runtime = runtime;
    this.device = describeAdapter(runtime.adapter);
    this.#tiling = options.matmulTiling ?? "auto";
    this.#blocking = options.matmulBlocking;
    const kernel = options.matmul ?? "auto";
    if (!["auto", "wide", "tiled", "register", "naive"].includes(kernel)) {
      throw new TypeError(
        `Cannot create a GPU backend: matmul must be "auto", "wide", "tiled", "register" or "naive", got ${
          String(kernel)
        }`,
      );
    }
    this.#matmul = kernel === "auto" ? (runtime.isFallbackAdapter ? "register" : "wide") : kernel;
    this.sparseKernels = new SparseKernelChooser(
      runtime,
      options.sparseKernels ?? "auto",
      (a, b, dims) => this.#denseMatmul(a, b, dims),
    );
  }

  /** Number of live temporary allocations (views share one); 0 right after {@linkcode release}. */
  get temporaryCount(): number {
    return this.#temporaries.size;
  }

  /** The dense matmul kernel in use (`"auto"` resolved for this adapter). */
  get matmulKernel(): Exclude<MatmulKernel, "auto"> {
    return this.#matmul;
  }

  /**
   * The causal attention path this backend takes for `bh` slices of `[T, hd]` (the option, with
   * `"auto"` resolved: see {@linkcode FUSED_ATTENTION_MIN_T}); what run headers print.
   *
   * @param dims `{ bh, T, hd }`.
   * @returns `"fused"` or `"composed"`.
   */
  attentionPath(dims: { bh: number; T: number; hd: number }): "fused" | "composed" {
    if (this.#attention !== "auto") return this.#attention;
    const minT = FUSED_ATTENTION_MIN_T[this.runtime.isFallbackAdapter ? "fallback" : "gpu"];
    return dims.T >= minT ? "fused" : "composed";
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
    checkTensorData(data, shape);
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
    checkIndexData(data, shape);
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
    const size = checkFill(shape, value);
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
    const xs = ts.map((t) => this.#check.use(t, "read tensors"));
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
    const x = this.#check.use(t, "keep a tensor");
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
    const x = this.#check.use(t, "dispose a tensor");
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
    const x = this.#check.reshape(t, shape, "reshape");
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
    const [d, s] = this.#check.assign(dst, src, "assign");
    if (d.storage === s.storage) return;
    this.#savedLse.delete(d.storage); // new values: a saved log-sum-exp no longer applies
    encodeCopy(this.runtime, s.buffer, d.buffer, d.size);
    // Index tensors keep their host copy in step (the index checks read it).
    if (d.dtype === "i32") d.storage.hostIndices!.set(s.storage.hostIndices!);
  }

  // ---- linear algebra ---------------------------------------------------------------------------

  /**
   * `a·b` of 2-D `[M,K]·[K,N]` or batched 3-D `[B,M,K]·[B,K,N]` operands, optionally transposed,
   * accumulated in float32 (`kernels/matmul.ts`); the wide kernel honours `triangular` hints, and
   * a product promised 2:4 takes the path {@linkcode GpuBackend.sparseKernels} chooses.
   *
   * @throws {RangeError} If the ranks are not both 2 or both 3, the batch sizes differ or the inner
   * dimensions differ.
   * @throws {TypeError} If `transA`/`transB` are not booleans.
   */
  matmul(a: Tensor, b: Tensor, options: api.MatmulOptions = {}): Tensor {
    const operands = this.#check.matmul(a, b, options, "matmul");
    const { A, B, transA, transB, rank, batch, M, N, K } = operands;
    const dims = { batch, m: M, n: N, k: K, transA, transB };
    const sparse = options.sparse24;
    const out = sparse === undefined
      ? this.#denseMatmul(A.buffer, B.buffer, dims, options.triangular)
      : this.sparseKernels.encode(A.buffer, B.buffer, { ...dims, sparse });
    return this.#wrap(out, rank === 3 ? [batch, M, N] : [M, N], "f32");
  }

  #denseMatmul(
    a: GPUBuffer,
    b: GPUBuffer,
    dims: MatmulDims,
    triangular?: api.MatmulOptions["triangular"],
  ): GPUBuffer {
    const { batch, m, n } = dims;
    const tiling = this.#tiling === "auto"
      ? (batch * Math.ceil(m / 128) * Math.ceil(n / 128) >= 64 ? TILING_128 : TILING_64)
      : this.#tiling;
    return encodeMatmul(this.runtime, a, b, dims, {
      variant: this.#matmul,
      tiling,
      blocking: this.#blocking,
      triangular,
    });
  }

  /**
   * Transpose of a 2-D tensor.
   *
   * @throws {RangeError} If `a` is not 2-D.
   */
  transpose(a: Tensor): Tensor {
    const action = "transpose";
    const [x, rows, cols] = this.#floatMatrix(a, action);
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
    const t = this.#check.permute0213(x, dims, action);
    const [A, B, C, D] = dims;
    return this.#wrap(encodePermute0213(this.runtime, t.buffer, dims), [A, C, B, D], "f32");
  }

  /**
   * Columns `[start, start + width)` of a 2-D tensor.
   *
   * @throws {RangeError} If `x` is not 2-D or the range is not inside its columns.
   */
  sliceCols(x: Tensor, start: number, width: number): Tensor {
    const { t, rows, cols } = this.#check.columnBlock(x, start, width, "slice");
    const out = encodeSliceCols(this.runtime, t.buffer, rows, cols, start, width);
    return this.#wrap(out, [rows, width], "f32");
  }

  /**
   * Places a 2-D `[N, width]` tensor at column `start` of a zero `[N, cols]` tensor.
   *
   * @throws {RangeError} If `x` is not 2-D or `start + width > cols`.
   */
  padCols(x: Tensor, start: number, cols: number): Tensor {
    const { t, rows, width } = this.#check.columnBlock(x, start, cols, "pad");
    const out = encodePadCols(this.runtime, t.buffer, rows, width, start, cols);
    return this.#wrap(out, [rows, cols], "f32");
  }

  /**
   * Attention heads of packed rows `x [B·T, P·d]` in one dispatch (`kernels/heads.ts`): `P`
   * tensors `[B·heads, T, d/heads]`.
   *
   * @throws {RangeError} If `x` is not 2-D or `dims` do not divide its shape.
   */
  splitHeads(x: Tensor, dims: api.HeadsDims): Tensor[] {
    const { X, T, hd } = this.#check.splitHeads(x, dims, "split attention heads");
    const { batch, heads, parts } = dims;
    const bufs = encodeSplitHeads(this.runtime, X.buffer, { batch, T, heads, hd, parts });
    return bufs.map((b) => this.#wrap(b, [batch * heads, T, hd], "f32"));
  }

  /**
   * The inverse of {@linkcode GpuBackend.splitHeads}, in one dispatch.
   *
   * @throws {RangeError} If the parts are not 1 to 7 tensors of one shape `[B·h, T, hd]`.
   */
  mergeHeads(parts: readonly Tensor[], batch: number): Tensor {
    const { Ps, heads, T, hd } = this.#check.mergeHeads(parts, batch, "merge attention heads");
    const dims = { batch, T, heads, hd, parts: Ps.length };
    const buf = encodeMergeHeads(this.runtime, Ps.map((P) => P.buffer), dims);
    return this.#wrap(buf, [batch * T, Ps.length * heads * hd], "f32");
  }

  // ---- element-wise -----------------------------------------------------------------------------

  /**
   * `a + b` (same shape).
   *
   * @throws {RangeError} If the shapes differ.
   */
  add(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.#check.pair(a, b, "add");
    return this.#like(x, encodeBinary(this.runtime, "add", x.buffer, y.buffer, x.size));
  }

  /**
   * `a + s·b` (same shape; `s` used as float32).
   *
   * @throws {RangeError} If the shapes differ or `s` is not finite.
   */
  addScaled(a: Tensor, b: Tensor, s: number): Tensor {
    const action = "add scaled";
    const [x, y] = this.#check.pair(a, b, action);
    checkFinite(s, "s", action);
    return this.#like(x, encodeBinary(this.runtime, "addScaled", x.buffer, y.buffer, x.size, s));
  }

  /**
   * `a ⊙ b` (same shape).
   *
   * @throws {RangeError} If the shapes differ.
   */
  mul(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.#check.pair(a, b, "multiply");
    return this.#like(x, encodeBinary(this.runtime, "mul", x.buffer, y.buffer, x.size));
  }

  /**
   * `s·a` (`s` used as float32).
   *
   * @throws {RangeError} If `s` is not finite.
   */
  scale(a: Tensor, s: number): Tensor {
    const action = "scale";
    const x = this.#check.float(a, action);
    checkFinite(s, "s", action);
    return this.#like(x, encodeUnary(this.runtime, "scale", x.buffer, x.size, s));
  }

  /**
   * `f·g` with `f` the clipping factor of `clip`, computed in float32 on the device
   * (`kernels/grad_clip.ts`; NaN when the norm is not finite).
   *
   * @throws {RangeError} If `clip` is malformed.
   */
  scaleClipped(g: Tensor, clip: api.GradClip): Tensor {
    const action = "scale a gradient by its clipping factor";
    const x = this.#check.float(g, action);
    const n = this.#check.gradClip(clip, action);
    const out = this.runtime.alloc(4 * x.size);
    encodeScaleClipped(this.runtime, x.buffer, n.buffer, out, x.size, clip.maxNorm);
    return this.#like(x, out);
  }

  /** Exact-erf GELU `0.5·x·(1 + erf(x/√2))` (float32 erfc, see `kernels/elementwise.ts`). */
  gelu(x: Tensor): Tensor {
    const t = this.#check.float(x, "apply GELU");
    return this.#like(t, encodeUnary(this.runtime, "gelu", t.buffer, t.size));
  }

  /**
   * `dy ⊙ GELU'(x)`.
   *
   * @throws {RangeError} If the shapes differ.
   */
  geluBackward(x: Tensor, dy: Tensor): Tensor {
    const [t, g] = this.#check.pair(x, dy, "apply the GELU backward pass");
    return this.#like(t, encodeBinary(this.runtime, "geluBackward", t.buffer, g.buffer, t.size));
  }

  /**
   * GEGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not 2-D with an even number of columns.
   */
  geglu(x: Tensor): Tensor {
    return this.#gated("geglu", x);
  }

  /**
   * GEGLU backward → `[N, 2h]` = `[∂x | ∂gate]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not `[N, 2h]` or `dy` is not `[N, h]`.
   */
  gegluBackward(x: Tensor, dy: Tensor): Tensor {
    return this.#gatedBackward("geglu", x, dy);
  }

  /**
   * SwiGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not 2-D with an even number of columns.
   */
  swiglu(x: Tensor): Tensor {
    return this.#gated("swiglu", x);
  }

  /**
   * SwiGLU backward → `[N, 2h]` (`kernels/gated.ts`).
   *
   * @throws {RangeError} If `x` is not `[N, 2h]` or `dy` is not `[N, h]`.
   */
  swigluBackward(x: Tensor, dy: Tensor): Tensor {
    return this.#gatedBackward("swiglu", x, dy);
  }

  // A float 2-D operand with its dimensions: the first check of the matrix methods.
  #floatMatrix(t: Tensor, action: string): [GpuTensor, number, number] {
    const m = this.#check.float(t, action);
    const [rows, cols] = dims2(m, action);
    return [m, rows, cols];
  }

  // The four gated methods differ only in the activation: its name in errors and its encoders.
  #gated(activation: GatedActivation, x: Tensor): Tensor {
    const { name, forward } = GATED[activation];
    const t = this.#check.gatedInput(x, `apply ${name}`);
    const [n, h] = [t.shape[0], t.shape[1] / 2];
    return this.#wrap(forward(this.runtime, t.buffer, n, h), [n, h], "f32");
  }

  #gatedBackward(activation: GatedActivation, x: Tensor, dy: Tensor): Tensor {
    const { name, backward } = GATED[activation];
    const [t, g] = this.#check.gatedPair(x, dy, `apply the ${name} backward pass`);
    return this.#like(t, backward(this.runtime, t.buffer, g.buffer, g.shape[0], g.shape[1]));
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
    const t = this.#check.dropout(x, p, seed, stream, action);
    return this.#like(t, encodeDropout(this.runtime, t.buffer, t.size, p, seed, stream));
  }

  // ---- normalisation, attention, embedding, loss ------------------------------------------------

  /**
   * LayerNorm over the last axis of `x[N, d]` (biased variance, `rstd = 1/√(var + eps)`).
   *
   * @throws {RangeError} If `x` is not 2-D with `d ≥ 1`, `w` or `b` is not `[d]`, or `eps` is not a
   * positive finite number.
   */
  layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): api.LayerNormResult {
    return this.#layerNorm([x, w, b, eps], undefined, "apply LayerNorm");
  }

  /**
   * `sum = x + r` and its LayerNorm in one kernel (`layernorm-forward-add`: the sum is formed in
   * each pass over the row and stored once).
   *
   * @throws {RangeError} As {@linkcode GpuBackend.layerNorm}, or if `r` is not `x`'s shape.
   */
  addLayerNorm(...args: Parameters<Backend["addLayerNorm"]>): api.AddLayerNormResult {
    const [x, r, w, b, eps] = args;
    const result = this.#layerNorm([x, w, b, eps], r, "add and apply LayerNorm");
    return { ...result, sum: result.sum! };
  }

  #layerNorm(
    args: Parameters<Backend["layerNorm"]>,
    branch: Tensor | undefined,
    action: string,
  ): api.LayerNormResult & { sum?: Tensor } {
    const { X, W, B, n, d } = this.#check.layerNorm(args, action);
    const R = branch === undefined ? undefined : this.#check.float(branch, action, "r");
    if (R !== undefined) sameShape(X, R, action);
    const eps = args[3];
    const r = encodeLayerNorm(this.runtime, X.buffer, W.buffer, B.buffer, n, d, eps, R?.buffer);
    return {
      y: this.#wrap(r.y, [n, d], "f32"),
      mean: this.#wrap(r.mean, [n], "f32"),
      rstd: this.#wrap(r.rstd, [n], "f32"),
      ...(r.sum ? { sum: this.#wrap(r.sum, [n, d], "f32") } : {}),
    };
  }

  /**
   * Backward of {@linkcode GpuBackend.layerNorm} from the saved `mean` and `rstd`.
   *
   * @throws {RangeError} If `x`/`dy` are not the same `[N, d]`, `w` is not `[d]`, or `mean`/`rstd`
   * are not `[N]`.
   */
  layerNormBackward(...args: Parameters<Backend["layerNormBackward"]>): api.LayerNormGrads {
    return this.#layerNormBackward(args, undefined, "apply the LayerNorm backward pass");
  }

  /**
   * {@linkcode GpuBackend.layerNormBackward} with `dx = acc + ∂x`, summed in the `dx` kernel.
   *
   * @throws {RangeError} As `layerNormBackward`, or if `acc` is not `x`'s shape.
   */
  layerNormBackwardAdd(
    ...args: Parameters<Backend["layerNormBackwardAdd"]>
  ): api.LayerNormGrads {
    const [x, w, mean, rstd, dy, acc] = args;
    return this.#layerNormBackward(
      [x, w, mean, rstd, dy],
      acc,
      "apply the LayerNorm backward pass",
    );
  }

  #layerNormBackward(
    args: Parameters<Backend["layerNormBackward"]>,
    acc: Tensor | undefined,
    action: string,
  ): api.LayerNormGrads {
    const { X, W, Mu, Rs, G, n, d } = this.#check.layerNormBackward(args, action);
    const A = acc === undefined ? undefined : this.#check.float(acc, action, "acc");
    if (A !== undefined) sameShape(X, A, action);
    const r = encodeLayerNormBackward(
      this.runtime,
      X.buffer,
      W.buffer,
      Mu.buffer,
      Rs.buffer,
      G.buffer,
      n,
      d,
      A?.buffer,
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
    const { S, batch, T } = this.#check.causalSoftmax(s, scale, action);
    return this.#like(S, encodeCausalSoftmax(this.runtime, S.buffer, batch, T, scale));
  }

  /**
   * Softmax backward along the last axis: `scale·(p ⊙ (dp − Σ p⊙dp))` per row; with `causal`, only
   * the lower triangle of each `[T, T]` slice is read (see {@linkcode api.SoftmaxBackwardOptions}).
   *
   * @throws {RangeError} If the shapes differ, `scale` is not finite, or `causal` is set and `p`
   * is not `[B, T, T]`.
   */
  softmaxBackward(p: Tensor, dp: Tensor, options: api.SoftmaxBackwardOptions = {}): Tensor {
    const { P, G, rows, width } = this.#check.softmaxBackward(
      p,
      dp,
      options,
      "apply the softmax backward pass",
    );
    const buf = encodeSoftmaxBackward(this.runtime, P.buffer, G.buffer, { rows, width }, options);
    return this.#like(P, buf);
  }

  /**
   * Fused causal attention (SPEC §8.5, `kernels/attention_forward.ts`): the output and each row's
   * log-sum-exp, without the `[BH, T, T]` scores; `undefined` where
   * {@linkcode GpuBackend.attentionPath} is `"composed"`.
   *
   * @throws {RangeError} If `q`, `k`, `v` are not one `[BH, T, hd]` shape or `scale` is not
   * finite.
   */
  causalAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): api.AttentionResult | undefined {
    const action = "compute fused causal attention";
    const { Q, K, V, bh, T, hd } = this.#check.attention(q, k, v, scale, action);
    if (this.attentionPath({ bh, T, hd }) === "composed") return undefined;
    const r = encodeAttentionForward(this.runtime, [Q.buffer, K.buffer, V.buffer], {
      bh,
      T,
      hd,
    }, scale);
    return { out: this.#wrap(r.out, [bh, T, hd], "f32"), lse: this.#wrap(r.lse, [bh, T], "f32") };
  }

  /**
   * Backward pass of {@linkcode GpuBackend.causalAttention} (SPEC §8.5,
   * `kernels/attention_backward.ts`): `dq`, `dk`, `dv` from the saved output and log-sum-exp.
   *
   * @throws {RangeError} If the shapes do not match the forward's.
   */
  causalAttentionBackward(saved: api.AttentionSaved, dOut: Tensor): api.AttentionGrads {
    const action = "compute the fused causal attention backward pass";
    const { Q, K, V, O, L, G, bh, T, hd } = this.#check.attentionBackward(saved, dOut, action);
    const r = encodeAttentionBackward(
      this.runtime,
      { q: Q.buffer, k: K.buffer, v: V.buffer, out: O.buffer, lse: L.buffer },
      G.buffer,
      { bh, T, hd },
      saved.scale,
      this.#keyPass,
    );
    const shape = [bh, T, hd];
    return {
      dq: this.#wrap(r.dq, shape, "f32"),
      dk: this.#wrap(r.dk, shape, "f32"),
      dv: this.#wrap(r.dv, shape, "f32"),
    };
  }

  /**
   * Rows of `table[V, d]` picked by `idx` (`i32`, `[N]`) → `[N, d]`.
   *
   * @throws {RangeError} If `table` is not 2-D, `idx` is not 1-D, or an index is outside `[0, V)`.
   * @throws {TypeError} If `idx` is not `i32` or `table` is not `f32`.
   */
  embedding(table: Tensor, idx: Tensor): Tensor {
    const action = "look up embeddings";
    const { Tb, I, ids, d } = this.#check.embedding(table, idx, action);
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
    const { G, ids, d } = this.#check.embeddingBackward(idx, dy, vocab, action);
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
    const { Z, T, n, c } = this.#check.crossEntropy(logits, targets, action);
    const { loss, lse } = encodeCrossEntropy(this.runtime, Z.buffer, T.buffer, n, c);
    this.#savedLse.set(Z.storage, { lse: this.#wrap(lse, [n], "f32"), rows: n, C: c });
    return this.#wrap(loss, [1], "f32");
  }

  /**
   * `dLoss · (softmax(z) − onehot(target)) / N` → `[N, C]` (`dLoss` read on the device).
   *
   * @throws {RangeError} As {@linkcode GpuBackend.crossEntropy}, or if `dLoss` is not `[1]`.
   * @throws {TypeError} If `targets` is not `i32`.
   */
  crossEntropyBackward(logits: Tensor, targets: Tensor, dLoss: Tensor): Tensor {
    const action = "apply the cross-entropy backward pass";
    const { Z, T, L, n, c } = this.#check.crossEntropyBackward(logits, targets, dLoss, action);
    // The forward's saved log-sum-exp of these logits (same rows), if it is still alive.
    const saved = this.#savedLse.get(Z.storage);
    const lse = saved && saved.rows === n && saved.C === c && saved.lse.storage.state !== "released"
      ? saved.lse.buffer
      : undefined;
    const dims = { rows: n, C: c, lse };
    const out = encodeCrossEntropyBackward(this.runtime, Z.buffer, T.buffer, L.buffer, dims);
    return this.#wrap(out, [n, c], "f32");
  }

  /**
   * Mean over the rows of `x[N, d]` → `[d]` (two-pass column sums times `1/N`).
   *
   * @throws {RangeError} If `x` is not 2-D with at least one row.
   */
  meanRows(x: Tensor): Tensor {
    const action = "average rows";
    const { X, n, d } = this.#check.meanRows(x, action);
    return this.#wrap(encodeColumnSum(this.runtime, X.buffer, n, d, 1 / n), [d], "f32");
  }

  // ---- reductions -------------------------------------------------------------------------------

  /** `Σ x²` → `[1]` (two-pass, deterministic). */
  sumSquares(x: Tensor): Tensor {
    const X = this.#check.float(x, "sum squares");
    return this.#wrap(encodeSum(this.runtime, X.buffer, null, X.size), [1], "f32");
  }

  /**
   * `Σ_t Σ x_t²` → `[1]` in `n + 2` dispatches (`kernels/reduce.ts`), the same float32 value as
   * `ts.map(sumSquares)` added in order by `add`.
   *
   * @throws {RangeError} If `ts` is empty.
   */
  sumSquaresMany(ts: readonly Tensor[]): Tensor {
    checkSumSquaresMany(ts);
    const xs = ts.map((t) => this.#check.float(t, "sum squares over tensors"));
    const slots = sumSquaresSlotsFor(this.runtime.limits.maxStorageBuffersPerShaderStage);
    const tensors = xs.map((x) => ({ buffer: x.buffer, count: x.size }));
    const out = encodeSumSquaresMany(this.runtime, tensors, slots);
    return this.#wrap(out, [1], "f32");
  }

  /**
   * `Σ a ⊙ b` → `[1]` (two-pass, deterministic).
   *
   * @throws {RangeError} If the shapes differ.
   */
  dot(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.#check.pair(a, b, "take a dot product");
    return this.#wrap(encodeSum(this.runtime, x.buffer, y.buffer, x.size), [1], "f32");
  }

  // ---- 2:4 sparsity -----------------------------------------------------------------------------

  /**
   * Hard N:M magnitude pruning along rows (`kernels/prune.ts`; NaN is not detected on the device).
   *
   * @throws {RangeError} If `w` is not 2-D, `n`/`m` are invalid (`m ≤ 16` on the GPU) or
   * `cols % m !== 0`.
   */
  pruneNM(w: Tensor, n: number, m: number): api.PrunedTensor {
    const [W, rows, cols] = this.#floatMatrix(w, `prune to ${n}:${m}`);
    const r = encodePruneNM(this.runtime, W.buffer, rows, cols, n, m);
    return { pruned: this.#like(W, r.pruned), mask: this.#like(W, r.mask) };
  }

  /**
   * Soft-threshold 2:4 pruning (`kernels/soft_threshold.ts`).
   *
   * @throws {RangeError} If `w` is not 2-D or `cols % 4 !== 0`.
   */
  softThreshold24(w: Tensor): api.PrunedTensor {
    const action = "soft-threshold to 2:4";
    const [W, rows, cols] = this.#floatMatrix(w, action);
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
    const [W, rows, cols] = this.#floatMatrix(w, action);
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
    const [G, rows, cols] = this.#floatMatrix(g, action);
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
    const G = this.#check.float(grad, action, "grad"), W = this.#check.float(w, action, "w");
    const M = this.#check.float(mask, action, "mask");
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
    const [P, N] = this.#check.pair(prev, next, "count mask flips");
    const masks = { prev: P.buffer, next: N.buffer, size: P.size };
    const out = encodeFlipCount(this.runtime, masks, { output: "f32" });
    return this.#wrap(out, [1], "f32");
  }

  /**
   * FP8 quantise–dequantise with per-tensor amax scaling (`kernels/fp8.ts`), any shape.
   *
   * @throws {TypeError} If `format` is neither `"e4m3"` nor `"e5m2"`.
   */
  quantizeFp8(x: Tensor, format: api.Fp8Format): Tensor {
    const X = this.#check.float(x, `quantize to FP8 ${format}`);
    const r = encodeQuantizeFp8(this.runtime, { x: X.buffer, size: X.size }, { format });
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
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hp: api.AdamWParams): void {
    const action = "apply AdamW";
    const { P, G, M: Mt, V } = this.#check.adamw(param, grad, m, v, hp, action);
    this.#savedLse.delete(P.storage); // updated in place
    const clip = typeof hp.gradScale === "object"
      ? {
        normSquared: this.#check.gradClip(hp.gradScale, action).buffer,
        maxNorm: hp.gradScale.maxNorm,
        applied: hp.gradScale.applied,
      }
      : hp.gradScale;
    encodeAdamW(this.runtime, P.buffer, G.buffer, Mt.buffer, V.buffer, P.size, {
      ...hp,
      gradScale: clip,
    });
  }

  /**
   * {@linkcode GpuBackend.adamw} for each update, several parameters per dispatch
   * (`kernels/adamw_multi.ts`, as many as the device's storage bindings allow; the same results):
   * the updates that share one clip (or none) go together.
   *
   * @throws {RangeError} If an update's operands or hyper-parameters are invalid (nothing is
   * recorded then).
   */
  adamwMany(updates: readonly api.AdamWUpdate[]): void {
    const action = "apply AdamW";
    const slots: AdamWSlot[] = [];
    let norm: GPUBuffer | undefined;
    const flush = () => {
      if (slots.length === 0) return;
      encodeAdamWMulti(this.runtime, slots, norm ?? slots[0].buffers[1], this.#adamwSlots);
      slots.length = 0;
      norm = undefined;
    };
    const checked = updates.map(({ param, grad, m, v, hp }) => ({
      ...this.#check.adamw(param, grad, m, v, hp, action),
      hp,
    }));
    for (const { P, G, M: Mt, V, hp } of checked) {
      this.#savedLse.delete(P.storage); // updated in place
      const clip = typeof hp.gradScale === "object" ? hp.gradScale : undefined;
      const n = clip ? this.#check.gradClip(clip, action).buffer : undefined;
      if (n !== undefined && norm !== undefined && n !== norm) flush();
      if (n !== undefined) norm = n;
      slots.push({
        buffers: [P.buffer, G.buffer, Mt.buffer, V.buffer],
        count: P.size,
        mode: clip ? (clip.applied ? 2 : 1) : 0,
        floats: adamwFloats(hp),
      });
    }
    flush();
  }

  /** Parameters per AdamW dispatch on this device. */
  get #adamwSlots(): number {
    return adamwSlotsFor(this.runtime.limits.maxStorageBuffersPerShaderStage);
  }

  // ---- private helpers --------------------------------------------------------------------------

  #wrap(
    buffer: GPUBuffer,
    shape: readonly number[],
    dtype: api.DType,
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

/** How the shared input checks see a {@linkcode GpuTensor}. */
// Each gated activation's name in error messages and its two encoders.
const GATED: Record<
  GatedActivation,
  { name: string; forward: GatedForwardEncoder; backward: GatedBackwardEncoder }
> = {
  geglu: { name: "GEGLU", forward: encodeGeglu, backward: encodeGegluBackward },
  swiglu: { name: "SwiGLU", forward: encodeSwiglu, backward: encodeSwigluBackward },
};

/**
 * Shortest sequence for which `"auto"` takes the fused attention kernels, per adapter kind
 * (`Infinity`: never), from same-run measurements of `experiments/speed.ts` table 4. On llvmpipe
 * (shared 2-core machine, 2026-12-06) fused forward + backward ran 0.06–0.49× the composed path at
 * B×H×T×hd = 1×4×256×64, 1×2×512×32, 2×4×64×16 (either key pass); on a discrete GPU it stays off
 * until an H100 run of table 4 shows it faster at the training shape.
 */
export const FUSED_ATTENTION_MIN_T: { fallback: number; gpu: number } = {
  fallback: Infinity,
  gpu: Infinity,
};

const GPU_TENSORS: TensorKind<GpuTensor> = {
  backend: "GpuBackend",
  is: (t): t is GpuTensor => t instanceof GpuTensor,
  owner: (t) => t.storage.owner,
  released: (t) => t.released,
  indices: (t, action) => {
    // The host keeps the values of the index tensors it uploaded; the device's are out of reach.
    const ids = t.storage.hostIndices;
    if (!ids) {
      throw new TypeError(
        `Cannot ${action}: the index tensor must come from indices() (the host keeps its values)`,
      );
    }
    return ids;
  },
};
