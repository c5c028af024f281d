/**
 * The backend interface: the only seam between the training stack (autograd, modules, optimizer,
 * sparse training methods) and the hardware. Two implementations exist — the pure-TypeScript
 * `ReferenceBackend` (any CPU; optionally float64 storage for finite-difference checks) and the
 * WebGPU `GpuBackend` — and nothing above this file branches on which one it has.
 *
 * Conventions:
 * - A {@linkcode Tensor} is an opaque handle to backend-owned storage of `float32` values (or
 *   `int32` for token indices), row-major, with a shape. Operations enqueue work and return new
 *   tensors synchronously; only {@linkcode Backend.read} waits for results.
 * - Masks are `f32` tensors holding exactly 0 or 1.
 * - Scalars produced on the device (a loss, a sum of squares, a flip count) are `[1]`-shaped
 *   tensors, so a training step needs one bulk read at its end.
 * - Memory: every tensor an operation creates is *temporary* until {@linkcode Backend.keep} marks
 *   it persistent. {@linkcode Backend.release} frees all temporaries (parameters, optimizer state and
 *   masks are kept; activations and gradients are temporaries of one step). Using a released tensor
 *   is an error.
 *
 * @module
 */

import type { Fp8Format } from "../reference/fp8.ts";

/** The two FP8 formats of SPEC 2.9 (re-exported from the reference). */
export type { Fp8Format };

/** Element type of a tensor. */
export type DType = "f32" | "i32";

/** An opaque, backend-owned n-dimensional array. */
export interface Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Number of elements (product of `shape`). */
  readonly size: number;
  /** Element type. */
  readonly dtype: DType;
}

/**
 * The tensor class the backends build on: a frozen shape and a dtype over one allocation `S`, which
 * the views `reshape` makes share (so keeping, releasing or disposing one applies to all).
 */
export class StoredTensor<S extends object> implements Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Number of elements (product of `shape`). */
  readonly size: number;
  /** Element type. */
  readonly dtype: DType;
  /** The allocation, shared with every view. */
  readonly storage: S;

  /**
   * Makes a tensor over `storage` (the caller checks that the storage holds `size` elements).
   *
   * @param storage The allocation.
   * @param shape The dimensions (copied and frozen).
   * @param dtype The element type.
   */
  constructor(storage: S, shape: readonly number[], dtype: DType) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((p, d) => p * d, 1);
    this.dtype = dtype;
  }
}

/** Options of {@linkcode Backend.matmul}. */
export interface MatmulOptions {
  /** Use `aᵀ` (a is stored `[K, M]`, or `[B, K, M]`). */
  transA?: boolean;
  /** Use `bᵀ` (b is stored `[N, K]`, or `[B, N, K]`). */
  transB?: boolean;
  /**
   * A triangular structure the caller promises, per product (causal attention), which a backend
   * may use to skip work; the result of every promised entry is the same either way:
   * `"lower-out"`: only `C[i, j]` with `j ≤ i` will be read (other entries are finite, otherwise
   * unspecified); `"lower-a"`: `op(A)[i, k] = 0` for `k > i`; `"upper-a"`: `op(A)[i, k] = 0` for
   * `k < i`. The reference backend computes every product in full.
   */
  triangular?: "lower-out" | "lower-a" | "upper-a";
  /**
   * A 2:4 structure the caller promises (2-D products; SPEC §1.5): `"a"`: every row of `op(A)`
   * holds at most two non-zeros in each aligned group of four along `K`; `"b"`: every column of
   * `op(B)` does. A backend may then multiply from the compressed operand (SPEC §8.6); the result
   * is the same product, summed in another float32 order. The reference backend computes the
   * dense product (the oracle).
   */
  sparse24?: "a" | "b";
}

/** How a backend runs the products promised 2:4 ({@linkcode MatmulOptions.sparse24}). */
export type SparseKernelMode = "auto" | "dense" | "sparse";

/** The path a backend took for one 2:4 product shape, and the timings it decided on. */
export interface SparseKernelChoice {
  /** `"sparse"` (compressed operand and the 2:4 kernel) or `"dense"`. */
  path: "dense" | "sparse";
  /** Milliseconds per product of the dense path, as timed (absent where nothing was timed). */
  denseMs?: number;
  /** Milliseconds per product of the sparse path with its compress/transpose passes. */
  sparseMs?: number;
}

/**
 * The per-shape choice between dense and compressed 2:4 kernels of a backend that has both
 * (SPEC §8.6). In `"auto"` mode a product shape runs dense on first use and is timed both ways at
 * the next {@linkcode SparseKernelTuner.tune} (the trainer calls it before each step, a checkpoint
 * save before saving), which fixes the faster path for the rest of the run; checkpoints save the
 * choices and restore them, so a resumed run takes the same path as an uninterrupted one.
 */
export interface SparseKernelTuner {
  /** The mode the backend was created with. */
  readonly mode: SparseKernelMode;
  /** Times the product shapes used since the last call and fixes their paths (`"auto"` only). */
  tune(): Promise<void>;
  /** The decided paths, by product key (`"a"|"b" M×K·K×N` and transposes), in decision order. */
  choices(): Record<string, SparseKernelChoice>;
  /**
   * Fixes paths decided earlier (a resumed run), replacing any decision for the same key.
   *
   * @throws {TypeError} If a choice is not a {@linkcode SparseKernelChoice}.
   */
  restore(choices: Record<string, SparseKernelChoice>): void;
}

/** Options of {@linkcode Backend.softmaxBackward}. */
export interface SoftmaxBackwardOptions {
  /**
   * A factor applied to the result (default 1): the same float32 product `scale·r` a separate
   * `scale` of the result `r` would store (the backward pass of `softmax(scale·s)`).
   */
  scale?: number;
  /**
   * `p` is a {@linkcode Backend.causalSoftmax} output `[B, T, T]`, zero past the diagonal of every
   * row, and `dp` is finite there: a backend may skip those entries, whose result is 0 (up to its
   * sign) either way. The reference backend computes every entry in full.
   */
  causal?: boolean;
}

/** The shape of {@linkcode Backend.splitHeads}. */
export interface HeadsDims {
  /** Sequences `B` (`T` = rows / `B`). */
  batch: number;
  /** Heads per part (dividing the part width `d`). */
  heads: number;
  /** Parts `P` side by side in a row (1 to 7). */
  parts: number;
}

/**
 * Global-norm gradient clipping computed where the gradients are (SPEC §4, "gradient clipping, as computed"):
 * the factor `maxNorm / (√normSquared + 1e-6)` when that is below 1, else exactly 1, so the host
 * never waits for the norm. A backend that holds its tensors on the host computes it in float64
 * from the float32 `normSquared` (the value a read would return); the WebGPU backend in float32 on
 * the device. A non-finite `normSquared` makes {@linkcode Backend.adamw} leave `param`, `m` and `v`
 * unchanged (the trainer then reports the step as failed).
 */
export interface GradClip {
  /** `Σ‖g‖²` over every gradient of the step, a `[1]` tensor. */
  normSquared: Tensor;
  /** The clipping threshold (SPEC §4: 1.0), finite and positive. */
  maxNorm: number;
  /**
   * The factor was applied already (`scaleClipped`, before a masked decay): AdamW reads the
   * gradient as it is and only leaves everything unchanged when the norm is not finite.
   */
  applied?: boolean;
}

/** Hyper-parameters of one AdamW update ({@linkcode Backend.adamw}). */
export interface AdamWParams {
  /** Learning rate of this step. */
  lr: number;
  /** First-moment decay (0.9 in SPEC §4). */
  beta1: number;
  /** Second-moment decay (0.95 in SPEC §4). */
  beta2: number;
  /** Denominator epsilon (1e-8). */
  eps: number;
  /** Decoupled weight decay (0.1, or 0 for norms/biases/embeddings). */
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
  /**
   * A factor the gradient is multiplied by as it is read (gradient clipping fused into the update;
   * default 1), a number or the clipping factor of a {@linkcode GradClip}: the same float32
   * product `s·g` a separate `scale` (or `scaleClipped`) would have stored.
   */
  gradScale?: number | GradClip;
  /**
   * STEP's frozen second moment (SPEC 2.10): the 1-based step count at which `v` was frozen. When
   * given, `v` is left unchanged and `v̂ = v/(1−β2^varianceFrozenAt)`; must be in `[1, step]`.
   */
  varianceFrozenAt?: number;
}

/** One parameter's AdamW update ({@linkcode Backend.adamwMany}). */
export interface AdamWUpdate {
  /** The parameter (updated in place). */
  param: Tensor;
  /** Its gradient. */
  grad: Tensor;
  /** First moment (updated in place). */
  m: Tensor;
  /** Second moment (updated in place). */
  v: Tensor;
  /** The hyper-parameters. */
  hp: AdamWParams;
}

/** Result of a pruning operation on device tensors. */
export interface PrunedTensor {
  /** The pruned values, same shape as the input. */
  pruned: Tensor;
  /** 0/1 mask, same shape as the input. */
  mask: Tensor;
}

/** Result of {@linkcode Backend.layerNorm}. */
export interface LayerNormResult {
  /** Normalised, scaled and shifted output `[N, d]`. */
  y: Tensor;
  /** Per-row mean `[N]` (saved for the backward pass). */
  mean: Tensor;
  /** Per-row reciprocal standard deviation `[N]` (saved for the backward pass). */
  rstd: Tensor;
}

/** Result of {@linkcode Backend.addLayerNorm}: the sum and its LayerNorm. */
export interface AddLayerNormResult extends LayerNormResult {
  /** `x + r` `[N, d]` (the residual stream). */
  sum: Tensor;
}

/** Result of {@linkcode Backend.layerNormBackward}. */
export interface LayerNormGrads {
  /** Gradient of the input `[N, d]`. */
  dx: Tensor;
  /** Gradient of the scale `[d]`. */
  dw: Tensor;
  /** Gradient of the shift `[d]`. */
  db: Tensor;
}

/** Result of {@linkcode Backend.causalAttention}. */
export interface AttentionResult {
  /** `softmax_causal(scale·q·kᵀ)·v`, `[BH, T, hd]`. */
  out: Tensor;
  /** Per-row log-sum-exp of the scaled visible scores, `[BH, T]` (saved for the backward pass). */
  lse: Tensor;
}

/** What {@linkcode Backend.causalAttentionBackward} needs of its forward call. */
export interface AttentionSaved extends AttentionResult {
  /** Queries `[BH, T, hd]`. */
  q: Tensor;
  /** Keys `[BH, T, hd]`. */
  k: Tensor;
  /** Values `[BH, T, hd]`. */
  v: Tensor;
  /** The factor applied to the scores (`1/√hd`). */
  scale: number;
}

/** Result of {@linkcode Backend.causalAttentionBackward}: the gradients of `q`, `k`, `v`. */
export interface AttentionGrads {
  /** `∂L/∂q`, `[BH, T, hd]`. */
  dq: Tensor;
  /** `∂L/∂k`, `[BH, T, hd]`. */
  dk: Tensor;
  /** `∂L/∂v`, `[BH, T, hd]`. */
  dv: Tensor;
}

/**
 * A compute backend: a couple of dozen tensor operations, enough for GPT-2 training with every
 * 2:4 method of SPEC §2. Every operation validates shapes and throws a `RangeError` naming them.
 */
export interface Backend {
  /** `"reference"` or `"webgpu"`. */
  readonly name: string;
  /** Human-readable device description (CPU, or the WebGPU adapter). */
  readonly device: string;
  /**
   * The dense-or-2:4 kernel choice for products promised 2:4 ({@linkcode MatmulOptions.sparse24}),
   * where the backend has compressed kernels (absent: every product is dense).
   */
  readonly sparseKernels?: SparseKernelTuner;

  // ---- memory -------------------------------------------------------------------------------
  /** Uploads `data` as a tensor of `shape` (float32; a Float64Array is rounded). */
  tensor(data: Float32Array | Float64Array, shape: readonly number[]): Tensor;
  /** Uploads token indices as an `i32` tensor of `shape`. */
  indices(data: Int32Array, shape: readonly number[]): Tensor;
  /** A tensor of `shape` filled with `value` (default 0). */
  full(shape: readonly number[], value?: number): Tensor;
  /** Reads a tensor back (float32 values; `i32` tensors are converted). */
  read(t: Tensor): Promise<Float32Array>;
  /** Reads several tensors back in one transfer. */
  readMany(ts: readonly Tensor[]): Promise<Float32Array[]>;
  /** Marks a tensor persistent (survives {@linkcode Backend.release}); returns it. */
  keep<T extends Tensor>(t: T): T;
  /** Frees a persistent or temporary tensor now. */
  dispose(t: Tensor): void;
  /** Frees every temporary tensor (call once per training step, after its last read). */
  release(): void;
  /** A view (or copy) of `t` with a new shape of the same size. */
  reshape(t: Tensor, shape: readonly number[]): Tensor;
  /** Copies `src` into the persistent tensor `dst` in place (same shape). */
  assign(dst: Tensor, src: Tensor): void;

  // ---- linear algebra -----------------------------------------------------------------------
  /**
   * Matrix product of 2-D `[M,K]·[K,N]` or batched 3-D `[B,M,K]·[B,K,N]` operands, with optional
   * transposes ({@linkcode MatmulOptions}). Accumulates in at least float32.
   */
  matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor;
  /** Transpose of a 2-D tensor. */
  transpose(a: Tensor): Tensor;
  /**
   * Views `x` as `[A, B, C, D]` (`dims`) and swaps the middle two axes, giving `[A, C, B, D]`
   * (splits/merges attention heads).
   */
  permute0213(x: Tensor, dims: readonly [number, number, number, number]): Tensor;
  /** Columns `[start, start + width)` of a 2-D tensor. */
  sliceCols(x: Tensor, start: number, width: number): Tensor;
  /** Places a 2-D `[N, width]` tensor at column `start` of a zero `[N, cols]` tensor. */
  padCols(x: Tensor, start: number, cols: number): Tensor;
  /**
   * Splits attention heads out of packed rows: `x [B·T, P·d]` holds `P` parts of width `d` side
   * by side (`[q | k | v]`: `P = 3`); part `i` → `[B·heads, T, d/heads]`, its columns viewed
   * `[B, T, heads, hd]` with the middle axes swapped (`permute0213` of `sliceCols`). `P` is at most
   * 7 (one storage binding per part on WebGPU).
   */
  splitHeads(x: Tensor, dims: HeadsDims): Tensor[];
  /** The inverse of {@linkcode Backend.splitHeads}: `P` tensors `[B·heads, T, hd]` → `[B·T, P·d]`. */
  mergeHeads(parts: readonly Tensor[], batch: number): Tensor;

  // ---- element-wise -------------------------------------------------------------------------
  /** `a + b` (same shape). */
  add(a: Tensor, b: Tensor): Tensor;
  /** `a + s·b` (same shape). */
  addScaled(a: Tensor, b: Tensor, s: number): Tensor;
  /** `a ⊙ b` (same shape). */
  mul(a: Tensor, b: Tensor): Tensor;
  /** `s·a`. */
  scale(a: Tensor, s: number): Tensor;
  /** `f·g` with `f` the clipping factor of `clip` ({@linkcode GradClip}; `g` itself when `f = 1`). */
  scaleClipped(g: Tensor, clip: GradClip): Tensor;
  /** GELU with the exact erf, `0.5·x·(1 + erf(x/√2))`. */
  gelu(x: Tensor): Tensor;
  /** `dy ⊙ GELU'(x)`. */
  geluBackward(x: Tensor, dy: Tensor): Tensor;
  /** GEGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]`. */
  geglu(x: Tensor): Tensor;
  /** GEGLU backward → `[N, 2h]` = `[∂x | ∂gate]`. */
  gegluBackward(x: Tensor, dy: Tensor): Tensor;
  /** SwiGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]`. */
  swiglu(x: Tensor): Tensor;
  /** SwiGLU backward → `[N, 2h]`. */
  swigluBackward(x: Tensor, dy: Tensor): Tensor;
  /**
   * Inverted dropout: zeroes each element with probability `p` and scales the rest by `1/(1−p)`,
   * with the keep decision drawn from the counter-based RNG: element `i` keeps iff
   * `uniform4(seed, stream, floor(i/4))[i % 4] >= p` (`reference/rng.ts`). Applying it again with
   * the same arguments to `dy` is its backward pass.
   */
  dropout(x: Tensor, p: number, seed: number, stream: number): Tensor;

  // ---- normalisation, attention, embedding, loss --------------------------------------------
  /** LayerNorm over the last axis of `[N, d]` with scale `w[d]` and shift `b[d]`. */
  layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): LayerNormResult;
  /**
   * A residual add and the LayerNorm of its result: `sum = x + r` (the value `add(x, r)` gives)
   * and `layerNorm(sum, w, b, eps)`, in one operation where a backend can.
   */
  addLayerNorm(x: Tensor, r: Tensor, w: Tensor, b: Tensor, eps: number): AddLayerNormResult;
  /** Backward of {@linkcode Backend.layerNorm}. */
  layerNormBackward(
    x: Tensor,
    w: Tensor,
    mean: Tensor,
    rstd: Tensor,
    dy: Tensor,
  ): LayerNormGrads;
  /**
   * {@linkcode Backend.layerNormBackward} with `dx = acc + ∂x`: the input's gradient summed with a
   * gradient `acc` it has already (the value of `add(acc, ∂x)`), in one operation where a backend
   * can (a residual stream's gradient).
   */
  layerNormBackwardAdd(
    x: Tensor,
    w: Tensor,
    mean: Tensor,
    rstd: Tensor,
    dy: Tensor,
    acc: Tensor,
  ): LayerNormGrads;
  /**
   * Row softmax of `scale·s` over `[B, T, T]` attention scores with a causal mask (entries with
   * column > row get probability 0).
   */
  causalSoftmax(s: Tensor, scale: number): Tensor;
  /**
   * Softmax backward per row: `scale·(p ⊙ (dp − Σ p⊙dp))` (same shape as `p`; `scale` and the
   * causal hint from {@linkcode SoftmaxBackwardOptions}).
   */
  softmaxBackward(p: Tensor, dp: Tensor, options?: SoftmaxBackwardOptions): Tensor;
  /**
   * Optional fused causal attention (SPEC §8.5): `softmax_causal(scale·q·kᵀ)·v` per slice of
   * `q`, `k`, `v` `[BH, T, hd]` and each row's log-sum-exp, without the `[BH, T, T]` scores.
   * Returns `undefined` where the backend prefers the composed operations (`matmul`,
   * `causalSoftmax`) for this shape; a backend that offers it offers
   * {@linkcode Backend.causalAttentionBackward} too.
   */
  causalAttention?(q: Tensor, k: Tensor, v: Tensor, scale: number): AttentionResult | undefined;
  /**
   * Backward pass of {@linkcode Backend.causalAttention} from its inputs and outputs (SPEC §8.5):
   * the probabilities are recomputed from the saved log-sum-exp, with `D = rowsum(dOut ⊙ out)`.
   */
  causalAttentionBackward?(saved: AttentionSaved, dOut: Tensor): AttentionGrads;
  /** Rows of `table[V, d]` picked by `idx` (`i32`, `[N]`) → `[N, d]`. */
  embedding(table: Tensor, idx: Tensor): Tensor;
  /** Scatter-add of `dy[N, d]` into a zero `[V, d]` by `idx` (deterministic order). */
  embeddingBackward(idx: Tensor, dy: Tensor, vocab: number): Tensor;
  /** Mean cross-entropy of `logits[N, C]` against `targets` (`i32`, `[N]`) → `[1]`. */
  crossEntropy(logits: Tensor, targets: Tensor): Tensor;
  /** `dLoss · ∂(mean CE)/∂logits` → `[N, C]`; `dLoss` is a `[1]` tensor. */
  crossEntropyBackward(logits: Tensor, targets: Tensor, dLoss: Tensor): Tensor;
  /** Mean over rows of a 2-D `[N, d]` tensor → `[d]` (e.g. pooling). */
  meanRows(x: Tensor): Tensor;

  // ---- reductions ---------------------------------------------------------------------------
  /** `Σ x²` → `[1]`. */
  sumSquares(x: Tensor): Tensor;
  /**
   * `Σ_t Σ x_t²` over several tensors → `[1]`: the value of `ts.map(sumSquares)` added in order by
   * `add` (a global gradient norm, in fewer GPU dispatches).
   */
  sumSquaresMany(ts: readonly Tensor[]): Tensor;
  /** `Σ a ⊙ b` → `[1]`. */
  dot(a: Tensor, b: Tensor): Tensor;

  // ---- 2:4 sparsity (SPEC §1–2; same semantics as the `reference/` functions) -------------
  /** Hard N:M magnitude pruning along rows of a 2-D tensor (SPEC 1.1; ties: higher index). */
  pruneNM(w: Tensor, n: number, m: number): PrunedTensor;
  /** Soft-threshold 2:4 pruning (SPEC 1.2). */
  softThreshold24(w: Tensor): PrunedTensor;
  /** Transposable 2:4 mask, exact 90-pattern optimum per 4×4 block (SPEC 1.4). */
  transposableMask24(w: Tensor): Tensor;
  /**
   * MVUE 2:4 along rows (SPEC 2.7) with uniforms from the counter-based RNG at
   * (`seed`, `stream`, group index).
   */
  mvue24(g: Tensor, seed: number, stream: number): Tensor;
  /** `grad + alpha·(1 − mask) ⊙ w` (SPEC 2.2/2.3). */
  maskedDecay(grad: Tensor, w: Tensor, mask: Tensor, alpha: number): Tensor;
  /** Number of positions where two masks differ → `[1]` (SPEC 2.4). */
  flipCount(prev: Tensor, next: Tensor): Tensor;
  /** FP8 quantise–dequantise with per-tensor amax scaling (SPEC 2.9). */
  quantizeFp8(x: Tensor, format: Fp8Format): Tensor;

  // ---- optimizer ----------------------------------------------------------------------------
  /**
   * One AdamW step in place on the persistent tensors `param`, `m`, `v` (decoupled weight decay,
   * bias-corrected moments): `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
   * `p ← p − lr·(m̂/(√v̂ + eps) + wd·p)`.
   */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hp: AdamWParams): void;
  /**
   * {@linkcode Backend.adamw} for each update in order, with the same results; the WebGPU backend
   * updates several parameters per dispatch.
   */
  adamwMany(updates: readonly AdamWUpdate[]): void;
}
