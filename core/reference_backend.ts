/**
 * The reference implementation of {@linkcode Backend}: plain TypeScript loops on the CPU, obviously
 * correct rather than fast. Every operation accumulates in float64 (JavaScript numbers) and stores
 * its result in a `Float32Array` (rounding once per stored value: the float32 semantics the WebGPU
 * backend is checked against) or, with `precision: "f64"`, in a `Float64Array` with no rounding at
 * all (for finite-difference gradient checks). The 2:4 pruning and estimator operations delegate to
 * the pure-TypeScript oracles of `reference/`, so both backends are measured against one definition.
 *
 * The class holds memory management, the element-wise operations, reductions and AdamW, and the
 * documentation of every operation; the loops of the linear algebra, network and 2:4 operations are
 * in `_reference_linalg.ts`, `reference_nn.ts` and `reference_sparse.ts`, GELU's erfc in
 * `erfc.ts` (shared with the CPU backend). Over 600 lines because of that one documented class of
 * about 45 operations.
 *
 * @module
 */

import type {
  AdamWParams,
  AdamWUpdate,
  AddLayerNormResult,
  AttentionGrads,
  AttentionResult,
  AttentionSaved,
  Backend,
  DType,
  Fp8Format,
  GradClip,
  HeadsDims,
  LayerNormGrads,
  LayerNormResult,
  MatmulOptions,
  PrunedTensor,
  SoftmaxBackwardOptions,
  Tensor,
} from "./backend.ts";
import { erfc } from "./erfc.ts";
import { hostClipFactor } from "./optim.ts";
import {
  checkFill,
  checkFinite,
  checkIndexData,
  checkSumSquaresMany,
  checkTensorData,
  TensorChecker,
  type TensorKind,
} from "./backend_checks.ts";
import {
  floats,
  type FloatStorage,
  free,
  REFERENCE_TENSORS,
  type ReferenceContext,
  referenceContext,
  ReferenceTensor,
  Storage,
} from "./reference_storage.ts";
import * as linalg from "./_reference_linalg.ts";
import * as nn from "./reference_nn.ts";
import * as sparse from "./reference_sparse.ts";

/** Storage precision of a {@linkcode ReferenceBackend}. */
export type ReferencePrecision = "f32" | "f64";

/** Options of the {@linkcode ReferenceBackend} constructor. */
export interface ReferenceBackendOptions {
  /**
   * `"f32"` (default): values are stored as float32, every stored result rounded once, the
   * semantics the GPU backend must match. `"f64"`: values are stored as float64 and never rounded
   * (the 2:4 operations still round their input to float32, being float32 functions).
   */
  precision?: ReferencePrecision;
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * The pure-TypeScript {@linkcode Backend}: the oracle the WebGPU backend is compared against and
 * the backend of finite-difference gradient checks (`precision: "f64"`).
 *
 * Memory: every tensor an operation returns is a temporary until {@linkcode ReferenceBackend.keep};
 * {@linkcode ReferenceBackend.release} and {@linkcode ReferenceBackend.dispose} free storage, and any
 * later use of a freed tensor throws an `Error` ("Cannot use a released tensor ..."), so lifetime
 * bugs surface here before they corrupt a GPU buffer pool. {@linkcode ReferenceBackend.reshape}
 * returns a view of the same storage: keeping, releasing or disposing either one applies to both.
 * A tensor of another backend instance is rejected with a `TypeError`.
 *
 * Errors: a wrong shape or an out-of-range argument throws a `RangeError` naming the shapes or the
 * value; a wrong dtype (`f32` vs `i32`) or a foreign tensor throws a `TypeError`.
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * const be = new ReferenceBackend();
 * const a = be.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * const b = be.tensor(new Float32Array([1, 0, 0, 1]), [2, 2]);
 * const c = await be.read(be.matmul(a, b));
 * if (c.join() !== "1,2,3,4") throw new Error("unexpected product");
 * be.release();
 * ```
 */
export class ReferenceBackend implements Backend {
  /** `"reference"` (`"cpu"` in the `CpuBackend` subclass). */
  readonly name: string = "reference";
  /** `"CPU (pure TypeScript, f32)"` or `"CPU (pure TypeScript, f64)"`. */
  readonly device: string;
  /** The storage precision chosen at construction. */
  readonly precision: ReferencePrecision;
  #temporaries = new Set<Storage>();
  /**
   * The input checks of this backend's tensors.
   *
   * @internal For subclasses (`CpuBackend`); not part of the public API.
   */
  protected readonly check: TensorChecker<ReferenceTensor> = new TensorChecker(
    this,
    this.tensorKind(),
  );
  /**
   * What the kernel files (`_reference_linalg.ts`, …) work through: the checks and zeroed
   * temporaries.
   *
   * @internal For subclasses; not part of the public API.
   */
  protected readonly ctx: ReferenceContext = referenceContext(this.check, (shape) => {
    const t = this.alloc(shape);
    t.storage.data.fill(0); // a subclass's storage may come from a pool
    return t;
  });

  /**
   * Creates a backend.
   *
   * @param options `{ precision }`: `"f32"` (default) or `"f64"`.
   * @throws {RangeError} If `precision` is neither `"f32"` nor `"f64"`.
   */
  constructor(options: ReferenceBackendOptions = {}) {
    const precision = options.precision ?? "f32";
    if (precision !== "f32" && precision !== "f64") {
      throw new RangeError(
        `Cannot create a reference backend: precision must be "f32" or "f64", got ${
          String(precision)
        }`,
      );
    }
    this.precision = precision;
    this.device = `CPU (pure TypeScript, ${precision})`;
  }

  /** Number of live temporary allocations (views share one); 0 right after {@linkcode release}. */
  get temporaryCount(): number {
    return this.#temporaries.size;
  }

  // ---- memory ---------------------------------------------------------------------------------

  /**
   * Uploads `data` as an `f32` tensor of `shape` (copied; rounded to float32 in `"f32"` mode).
   *
   * @throws {TypeError} If `data` is not a `Float32Array` or `Float64Array`.
   * @throws {RangeError} If `shape` is invalid or its size differs from `data.length`.
   */
  tensor(data: Float32Array | Float64Array, shape: readonly number[]): Tensor {
    checkTensorData(data, shape);
    const t = this.alloc(shape);
    floats(t).set(data);
    return t;
  }

  /**
   * Uploads token indices as an `i32` tensor of `shape` (copied).
   *
   * @throws {TypeError} If `data` is not an `Int32Array`.
   * @throws {RangeError} If `shape` is invalid or its size differs from `data.length`.
   */
  indices(data: Int32Array, shape: readonly number[]): Tensor {
    checkIndexData(data, shape);
    return this.#register(new Storage(Int32Array.from(data)), shape, "i32");
  }

  /**
   * A tensor of `shape` filled with `value` (default 0).
   *
   * @throws {RangeError} If `shape` is invalid or `value` is NaN.
   * @throws {TypeError} If `value` is not a number.
   */
  full(shape: readonly number[], value = 0): Tensor {
    checkFill(shape, value);
    const res = this.alloc(shape);
    floats(res).fill(value);
    return res;
  }

  /**
   * Reads a tensor back as float32 (`i32` values and `"f64"` storage are converted).
   *
   * @throws {Error} If the tensor was released (the promise rejects).
   * @throws {TypeError} If `t` is not a tensor of this backend (the promise rejects).
   */
  read(t: Tensor): Promise<Float32Array> {
    try {
      return Promise.resolve(Float32Array.from(this.check.use(t, "read a tensor").storage.data));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Reads several tensors back.
   *
   * @throws {Error} If a tensor was released (the promise rejects).
   * @throws {TypeError} If an element is not a tensor of this backend (the promise rejects).
   */
  readMany(ts: readonly Tensor[]): Promise<Float32Array[]> {
    try {
      const out = ts.map((t) => Float32Array.from(this.check.use(t, "read tensors").storage.data));
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Reads a tensor back synchronously as float64, without rounding: the full value of `"f64"`
   * storage, for finite-difference checks. (Not part of {@linkcode Backend}.)
   *
   * @param t A live tensor of this backend.
   * @returns A fresh copy of its values.
   * @throws {Error} If the tensor was released.
   * @throws {TypeError} If `t` is not a tensor of this backend.
   * @example
   * ```ts
   * import { ReferenceBackend } from "./reference_backend.ts";
   * const be = new ReferenceBackend({ precision: "f64" });
   * const x = be.tensor(new Float64Array([0.1]), [1]);
   * if (be.readF64(x)[0] !== 0.1) throw new Error("rounded");
   * ```
   */
  readF64(t: Tensor): Float64Array {
    return Float64Array.from(this.check.use(t, "read a tensor").storage.data);
  }

  /**
   * Marks a tensor (and every view of its storage) persistent; returns it.
   *
   * @throws {Error} If the tensor was already released.
   * @throws {TypeError} If `t` is not a tensor of this backend.
   */
  keep<T extends Tensor>(t: T): T {
    const { storage } = this.check.use(t, "keep a tensor");
    storage.kept = true;
    this.#temporaries.delete(storage);
    return t;
  }

  /**
   * Frees a tensor's storage now (every view of it becomes unusable).
   *
   * @throws {Error} If the tensor was already released.
   * @throws {TypeError} If `t` is not a tensor of this backend.
   */
  dispose(t: Tensor): void {
    const { storage } = this.check.use(t, "dispose a tensor");
    this.#temporaries.delete(storage);
    this.freeStorage(storage);
  }

  /** Frees every temporary tensor; kept tensors survive. */
  release(): void {
    for (const storage of this.#temporaries) this.freeStorage(storage);
    this.#temporaries.clear();
  }

  /**
   * A view of `t` with a new shape of the same size (shares storage; same dtype).
   *
   * @throws {RangeError} If `shape` is invalid or holds a different number of elements.
   */
  reshape(t: Tensor, shape: readonly number[]): Tensor {
    const x = this.check.reshape(t, shape, "reshape");
    return new ReferenceTensor(this, x.storage, shape, x.dtype);
  }

  /**
   * Copies `src` into `dst` in place.
   *
   * @throws {RangeError} If the shapes differ.
   * @throws {TypeError} If the dtypes differ.
   */
  assign(dst: Tensor, src: Tensor): void {
    const [d, s] = this.check.assign(dst, src, "assign");
    d.storage.data.set(s.storage.data);
  }

  // ---- linear algebra ---------------------------------------------------------------------------

  /**
   * `a·b` of 2-D `[M,K]·[K,N]` or batched 3-D `[B,M,K]·[B,K,N]` operands, optionally transposed;
   * every output is a float64 dot product (summed in ascending `k`) rounded once.
   *
   * @throws {RangeError} If the ranks are not both 2 or both 3, the batch sizes differ or the inner
   * dimensions differ.
   */
  matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
    return linalg.matmul(this.ctx, a, b, options);
  }

  /**
   * Transpose of a 2-D tensor.
   *
   * @throws {RangeError} If `a` is not 2-D.
   */
  transpose(a: Tensor): Tensor {
    return linalg.transpose(this.ctx, a);
  }

  /**
   * Views `x` as `[A, B, C, D]` and swaps the middle axes; the result has shape `[A, C, B, D]`.
   *
   * @throws {RangeError} If `dims` are not four non-negative integers whose product is `x.size`.
   */
  permute0213(x: Tensor, dims: readonly [number, number, number, number]): Tensor {
    return linalg.permute0213(this.ctx, x, dims);
  }

  /**
   * Columns `[start, start + width)` of a 2-D tensor.
   *
   * @throws {RangeError} If `x` is not 2-D or the range is not inside its columns.
   */
  sliceCols(x: Tensor, start: number, width: number): Tensor {
    return linalg.sliceCols(this.ctx, x, start, width);
  }

  /**
   * Places a 2-D `[N, width]` tensor at column `start` of a zero `[N, cols]` tensor.
   *
   * @throws {RangeError} If `x` is not 2-D or `start + width > cols`.
   */
  padCols(x: Tensor, start: number, cols: number): Tensor {
    return linalg.padCols(this.ctx, x, start, cols);
  }

  /**
   * Attention heads of packed rows `x [B·T, P·d]`: `P` tensors `[B·heads, T, d/heads]`.
   *
   * @throws {RangeError} If `x` is not 2-D or `dims` do not divide its shape.
   */
  splitHeads(x: Tensor, dims: HeadsDims): Tensor[] {
    return linalg.splitHeads(this.ctx, x, dims);
  }

  /**
   * The inverse of {@linkcode ReferenceBackend.splitHeads}.
   *
   * @throws {RangeError} If the parts are not 1 to 7 tensors of one shape `[B·h, T, hd]`.
   */
  mergeHeads(parts: readonly Tensor[], batch: number): Tensor {
    return linalg.mergeHeads(this.ctx, parts, batch);
  }

  // ---- element-wise -----------------------------------------------------------------------------

  /**
   * `a + b` (same shape).
   *
   * @throws {RangeError} If the shapes differ.
   */
  add(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.check.pair(a, b, "add");
    const res = this.alloc(x.shape), out = floats(res);
    for (let i = 0; i < out.length; i++) out[i] = x.storage.data[i] + y.storage.data[i];
    return res;
  }

  /**
   * `a + s·b` (same shape).
   *
   * @throws {RangeError} If the shapes differ or `s` is not finite.
   */
  addScaled(a: Tensor, b: Tensor, s: number): Tensor {
    const action = "add scaled";
    const [x, y] = this.check.pair(a, b, action);
    checkFinite(s, "s", action);
    const res = this.alloc(x.shape), out = floats(res);
    const xd = x.storage.data, yd = y.storage.data;
    for (let i = 0; i < out.length; i++) out[i] = xd[i] + s * yd[i];
    return res;
  }

  /**
   * `a ⊙ b` (same shape).
   *
   * @throws {RangeError} If the shapes differ.
   */
  mul(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.check.pair(a, b, "multiply");
    const res = this.alloc(x.shape), out = floats(res);
    for (let i = 0; i < out.length; i++) out[i] = x.storage.data[i] * y.storage.data[i];
    return res;
  }

  /**
   * `s·a`.
   *
   * @throws {RangeError} If `s` is not finite.
   */
  scale(a: Tensor, s: number): Tensor {
    const action = "scale";
    const x = this.check.float(a, action);
    checkFinite(s, "s", action);
    const res = this.alloc(x.shape), out = floats(res);
    for (let i = 0; i < out.length; i++) out[i] = s * x.storage.data[i];
    return res;
  }

  /**
   * `f·g` with `f` the clipping factor of `clip` (`optim.ts`'s `hostClipFactor`; NaN when the
   * norm is not finite); `g`'s values when `f = 1`.
   *
   * @throws {RangeError} If `clip` is malformed.
   */
  scaleClipped(g: Tensor, clip: GradClip): Tensor {
    const action = "scale a gradient by its clipping factor";
    const x = this.check.float(g, action);
    const f = hostClipFactor(this.check.gradClip(clip, action).storage.data[0], clip.maxNorm) ??
      NaN;
    const res = this.alloc(x.shape), out = floats(res);
    for (let i = 0; i < out.length; i++) {
      out[i] = f === 1 ? x.storage.data[i] : f * x.storage.data[i];
    }
    return res;
  }

  /**
   * Exact GELU `0.5·x·(1 + erf(x/√2))`, evaluated as `0.5·x·erfc(−x/√2)` so that the negative
   * tail keeps full relative accuracy (erfc from W. J. Cody's rational Chebyshev approximations,
   * Math. Comp. 23 (1969) 631–637, about 1e-16 relative). `GELU(−Inf)` is its limit 0.
   */
  gelu(x: Tensor): Tensor {
    const t = this.check.float(x, "apply GELU");
    const res = this.alloc(t.shape), out = floats(res);
    const d = t.storage.data;
    for (let i = 0; i < out.length; i++) {
      const v = d[i];
      out[i] = v === -Infinity ? 0 : 0.5 * v * erfc(-v * SQRT1_2);
    }
    return res;
  }

  /**
   * `dy ⊙ GELU'(x)` with the exact derivative `Φ(x) + x·φ(x)` (its limits 0 and 1 at `∓Inf`).
   *
   * @throws {RangeError} If the shapes differ.
   */
  geluBackward(x: Tensor, dy: Tensor): Tensor {
    const [t, g] = this.check.pair(x, dy, "apply the GELU backward pass");
    const res = this.alloc(t.shape), out = floats(res);
    const d = t.storage.data, gd = g.storage.data;
    for (let i = 0; i < out.length; i++) {
      const v = d[i];
      const deriv = Number.isFinite(v)
        ? 0.5 * erfc(-v * SQRT1_2) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v)
        : v > 0
        ? 1
        : 0;
      out[i] = gd[i] * deriv;
    }
    return res;
  }

  /**
   * GEGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]` (the `reference/gated.ts` oracle).
   *
   * @throws {RangeError} If `x` is not 2-D with an even number of columns.
   */
  geglu(x: Tensor): Tensor {
    return nn.gated(this.ctx, "geglu", x);
  }

  /**
   * GEGLU backward → `[N, 2h]` = `[∂x | ∂gate]` (the `reference/gated.ts` oracle).
   *
   * @throws {RangeError} If `x` is not `[N, 2h]` or `dy` is not `[N, h]`.
   */
  gegluBackward(x: Tensor, dy: Tensor): Tensor {
    return nn.gatedBackward(this.ctx, "geglu", x, dy);
  }

  /**
   * SwiGLU (SPEC 3) on `[N, 2h]` rows `[x | gate]` → `[N, h]` (the `reference/gated.ts` oracle).
   *
   * @throws {RangeError} If `x` is not 2-D with an even number of columns.
   */
  swiglu(x: Tensor): Tensor {
    return nn.gated(this.ctx, "swiglu", x);
  }

  /**
   * SwiGLU backward → `[N, 2h]` (the `reference/gated.ts` oracle).
   *
   * @throws {RangeError} If `x` is not `[N, 2h]` or `dy` is not `[N, h]`.
   */
  swigluBackward(x: Tensor, dy: Tensor): Tensor {
    return nn.gatedBackward(this.ctx, "swiglu", x, dy);
  }

  /**
   * Inverted dropout: element `i` is kept iff `uniform4(seed, stream, floor(i/4))[i % 4] >= p` and
   * then becomes `x / (1 − p)`; dropped elements become 0.
   *
   * @throws {RangeError} If `p` is not in `[0, 1)`, `seed` is not an integer in `[0, 2^53)` or
   * `stream` not an integer in `[0, 2^32)`.
   */
  dropout(x: Tensor, p: number, seed: number, stream: number): Tensor {
    return nn.dropout(this.ctx, x, p, seed, stream);
  }

  // ---- normalisation, attention, embedding, loss ------------------------------------------------

  /**
   * LayerNorm over the last axis of `x[N, d]`: `y = (x − mean)·rstd·w + b` with the biased
   * variance, `rstd = 1/√(var + eps)`.
   *
   * @throws {RangeError} If `x` is not 2-D with `d ≥ 1`, `w` or `b` is not `[d]`, or `eps` is not a
   * positive finite number.
   */
  layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): LayerNormResult {
    return nn.layerNorm(this.ctx, x, w, b, eps);
  }

  /**
   * `sum = add(x, r)`, then {@linkcode ReferenceBackend.layerNorm} of it (through this backend's
   * own `add` and `layerNorm`).
   *
   * @throws {RangeError} As `add` and `layerNorm`.
   */
  addLayerNorm(...args: Parameters<Backend["addLayerNorm"]>): AddLayerNormResult {
    const [x, r, w, b, eps] = args;
    const sum = this.add(x, r);
    return { sum, ...this.layerNorm(sum, w, b, eps) };
  }

  /**
   * Backward of {@linkcode ReferenceBackend.layerNorm} from the saved `mean` and `rstd`:
   * `x̂ = (x − mean)·rstd`, `g = dy ⊙ w`,
   * `dx = rstd·(g − mean(g) − x̂·mean(g ⊙ x̂))`, `dw = Σ_rows dy ⊙ x̂`, `db = Σ_rows dy`.
   *
   * @throws {RangeError} If `x`/`dy` are not the same `[N, d]`, `w` is not `[d]`, or `mean`/`rstd`
   * are not `[N]`.
   */
  layerNormBackward(...args: Parameters<Backend["layerNormBackward"]>): LayerNormGrads {
    return nn.layerNormBackward(this.ctx, ...args);
  }

  /**
   * {@linkcode ReferenceBackend.layerNormBackward}, then `dx ← add(acc, dx)` (through this
   * backend's own `layerNormBackward` and `add`, so a subclass's faster ones serve here too).
   *
   * @throws {RangeError} As `layerNormBackward`, or if `acc` is not `x`'s shape.
   */
  layerNormBackwardAdd(...args: Parameters<Backend["layerNormBackwardAdd"]>): LayerNormGrads {
    const [x, w, mean, rstd, dy, acc] = args;
    const grads = this.layerNormBackward(x, w, mean, rstd, dy);
    return { ...grads, dx: this.add(acc, grads.dx) };
  }

  /**
   * Causal softmax of `scale·s` over the rows of `[B, T, T]` scores: row `r` normalises columns
   * `0..r` (max-subtracted) and gives probability 0 to columns `> r`.
   *
   * @throws {RangeError} If `s` is not `[B, T, T]`, `scale` is not finite, or a row's largest
   * visible scaled score is not finite (no probability distribution exists).
   */
  causalSoftmax(s: Tensor, scale: number): Tensor {
    return nn.causalSoftmax(this.ctx, s, scale);
  }

  /**
   * Softmax backward along the last axis: `scale·(p ⊙ (dp − Σ p⊙dp))` per row, each entry in full
   * (the causal hint changes nothing here).
   *
   * @throws {RangeError} If the shapes differ, `scale` is not finite, or `causal` is set and `p`
   * is not `[B, T, T]`.
   */
  softmaxBackward(p: Tensor, dp: Tensor, options: SoftmaxBackwardOptions = {}): Tensor {
    return nn.softmaxBackward(this.ctx, p, dp, options);
  }

  /**
   * Fused causal attention (SPEC §8.5), the oracle of the fast backends' kernels: per query row the
   * visible scores `scale·q_i·k_j` (`j ≤ i`) in float64, their log-sum-exp, and
   * `Σ_j exp(s_ij − lse_i)·v_j`; each output rounded once.
   *
   * @throws {RangeError} If `q`, `k`, `v` are not one `[BH, T, hd]` shape, `scale` is not finite,
   * or a row's largest score is not finite.
   */
  causalAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): AttentionResult | undefined {
    return nn.causalAttention(this.ctx, q, k, v, scale);
  }

  /**
   * Backward pass of {@linkcode ReferenceBackend.causalAttention} (SPEC §8.5), in float64 from the
   * saved `out` and `lse`; each gradient rounded once.
   *
   * @throws {RangeError} If the shapes do not match the forward's.
   */
  causalAttentionBackward(saved: AttentionSaved, dOut: Tensor): AttentionGrads {
    return nn.causalAttentionBackward(this.ctx, saved, dOut);
  }

  /**
   * Rows of `table[V, d]` picked by `idx` (`i32`, `[N]`) → `[N, d]`.
   *
   * @throws {RangeError} If `table` is not 2-D, `idx` is not 1-D, or an index is outside `[0, V)`.
   * @throws {TypeError} If `idx` is not `i32` or `table` is not `f32`.
   */
  embedding(table: Tensor, idx: Tensor): Tensor {
    return nn.embedding(this.ctx, table, idx);
  }

  /**
   * Scatter-add of `dy[N, d]` into a zero `[vocab, d]` by `idx`, accumulating in float64 in
   * index order `n = 0, 1, …` and rounding once.
   *
   * @throws {RangeError} If `idx` is not `[N]`, `dy` not `[N, d]`, `vocab` not a non-negative
   * integer, or an index is outside `[0, vocab)`.
   * @throws {TypeError} If `idx` is not `i32`.
   */
  embeddingBackward(idx: Tensor, dy: Tensor, vocab: number): Tensor {
    return nn.embeddingBackward(this.ctx, idx, dy, vocab);
  }

  /**
   * Mean cross-entropy of `logits[N, C]` against `targets` (`i32`, `[N]`) → `[1]`, each row's
   * loss `logsumexp(z) − z[target]` with a max-subtracted log-sum-exp.
   *
   * @throws {RangeError} If `logits` is not `[N, C]` with `N, C ≥ 1`, `targets` is not `[N]`, or a
   * target is outside `[0, C)`.
   * @throws {TypeError} If `targets` is not `i32`.
   */
  crossEntropy(logits: Tensor, targets: Tensor): Tensor {
    return nn.crossEntropy(this.ctx, logits, targets);
  }

  /**
   * `dLoss · (softmax(z) − onehot(target)) / N` → `[N, C]`.
   *
   * @throws {RangeError} As {@linkcode ReferenceBackend.crossEntropy}, or if `dLoss` is not `[1]`.
   * @throws {TypeError} If `targets` is not `i32`.
   */
  crossEntropyBackward(logits: Tensor, targets: Tensor, dLoss: Tensor): Tensor {
    return nn.crossEntropyBackward(this.ctx, logits, targets, dLoss);
  }

  /**
   * Mean over the rows of `x[N, d]` → `[d]`.
   *
   * @throws {RangeError} If `x` is not 2-D with at least one row.
   */
  meanRows(x: Tensor): Tensor {
    return nn.meanRows(this.ctx, x);
  }

  // ---- reductions -------------------------------------------------------------------------------

  /** `Σ x²` → `[1]`. */
  sumSquares(x: Tensor): Tensor {
    const d = this.check.float(x, "sum squares").storage.data;
    let sum = 0;
    for (let i = 0; i < d.length; i++) sum += d[i] * d[i];
    return this.ctx.filled([1], [sum]);
  }

  /**
   * `ts.map(sumSquares)` added in order by `add` → `[1]`.
   *
   * @throws {RangeError} If `ts` is empty.
   */
  sumSquaresMany(ts: readonly Tensor[]): Tensor {
    checkSumSquaresMany(ts);
    return ts.map((t) => this.sumSquares(t)).reduce((a, b) => this.add(a, b));
  }

  /**
   * `Σ a ⊙ b` → `[1]`.
   *
   * @throws {RangeError} If the shapes differ.
   */
  dot(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.check.pair(a, b, "take a dot product");
    const xd = x.storage.data, yd = y.storage.data;
    let sum = 0;
    for (let i = 0; i < xd.length; i++) sum += xd[i] * yd[i];
    return this.ctx.filled([1], [sum]);
  }

  // ---- 2:4 sparsity -----------------------------------------------------------------------------

  /**
   * Hard N:M magnitude pruning along rows (the `reference/prune.ts` oracle).
   *
   * @throws {RangeError} If `w` is not 2-D, `n`/`m` are invalid, `cols % m !== 0` or `w` holds NaN.
   */
  pruneNM(w: Tensor, n: number, m: number): PrunedTensor {
    return sparse.pruneNM(this.ctx, w, n, m);
  }

  /**
   * Soft-threshold 2:4 pruning (the `reference/soft_threshold.ts` oracle).
   *
   * @throws {RangeError} If `w` is not 2-D, `cols % 4 !== 0` or `w` holds NaN.
   */
  softThreshold24(w: Tensor): PrunedTensor {
    return sparse.softThreshold24(this.ctx, w);
  }

  /**
   * Transposable 2:4 mask (the `reference/transposable.ts` oracle).
   *
   * @throws {RangeError} If `w` is not 2-D with both dimensions multiples of 4, or holds NaN.
   */
  transposableMask24(w: Tensor): Tensor {
    return sparse.transposableMask24(this.ctx, w);
  }

  /**
   * MVUE 2:4 along rows with uniforms at (`seed`, `stream`, group) (the `reference/mvue.ts`
   * oracle).
   *
   * @throws {RangeError} If `g` is not 2-D, `cols % 4 !== 0`, `g` is not finite, or the seed or
   * stream is out of range.
   */
  mvue24(g: Tensor, seed: number, stream: number): Tensor {
    return sparse.mvue24(this.ctx, g, seed, stream);
  }

  /**
   * `grad + alpha·(1 − mask) ⊙ w` (the `reference/masked_decay.ts` oracle).
   *
   * @throws {RangeError} If the shapes differ, a tensor is not 2-D, or `mask` holds a value other
   * than 0 and 1.
   */
  maskedDecay(grad: Tensor, w: Tensor, mask: Tensor, alpha: number): Tensor {
    return sparse.maskedDecay(this.ctx, grad, w, mask, alpha);
  }

  /**
   * Number of positions where two 0/1 masks differ → `[1]` (the `reference/flip_rate.ts` oracle).
   *
   * @throws {RangeError} If the shapes differ or a mask holds a value other than 0 and 1.
   */
  flipCount(prev: Tensor, next: Tensor): Tensor {
    return sparse.flipCount(this.ctx, prev, next);
  }

  /**
   * FP8 quantise–dequantise with per-tensor amax scaling (the `reference/fp8.ts` oracle), any
   * shape.
   *
   * @throws {TypeError} If `format` is neither `"e4m3"` nor `"e5m2"`.
   * @throws {RangeError} If `x` holds NaN or ±Inf.
   */
  quantizeFp8(x: Tensor, format: Fp8Format): Tensor {
    return sparse.quantizeFp8(this.ctx, x, format);
  }

  // ---- optimizer --------------------------------------------------------------------------------

  /**
   * One AdamW step in place: `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
   * `p ← p − lr·(m̂/(√v̂ + eps) + wd·p)` with `m̂ = m/(1−β1^t)`, `v̂ = v/(1−β2^t)`; the update of
   * `p` uses the stored (rounded) `m` and `v`. With `gradScale`, `g` is first `s·g` rounded as a
   * separate `scale` would store it. With `varianceFrozenAt = t₀` (STEP, SPEC 2.10) `v` is not
   * updated and `v̂ = v/(1−β2^t₀)`.
   *
   * @throws {RangeError} If the shapes differ, `param`, `m` and `v` share storage, or a
   * hyper-parameter is out of range (`lr, weightDecay ≥ 0`, `beta1, beta2 ∈ [0, 1)`, `eps > 0`,
   * `step` a positive integer).
   */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hp: AdamWParams): void {
    const action = "apply AdamW";
    const { P, G, M: Mt, V } = this.check.adamw(param, grad, m, v, hp, action);
    const { lr, beta1, beta2, eps, weightDecay, step, varianceFrozenAt } = hp;
    const frozen = varianceFrozenAt !== undefined;
    const c1 = 1 - beta1 ** step, c2 = 1 - beta2 ** (varianceFrozenAt ?? step);
    const pd = P.storage.data, gd = G.storage.data, md = Mt.storage.data, vd = V.storage.data;
    // gradScale: the product a separate scale() would have stored, at the storage precision.
    const s = this.gradScale(hp, action);
    if (s === null) return; // a non-finite clipped norm: the step fails, nothing moves
    const round = this.precision === "f32" ? Math.fround : (x: number) => x;
    for (let i = 0; i < pd.length; i++) {
      const g = s === 1 ? gd[i] : round(s * gd[i]);
      md[i] = beta1 * md[i] + (1 - beta1) * g;
      if (!frozen) vd[i] = beta2 * vd[i] + (1 - beta2) * g * g;
      const mHat = md[i] / c1, vHat = vd[i] / c2;
      pd[i] = pd[i] - lr * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * pd[i]);
    }
  }

  /** {@linkcode ReferenceBackend.adamw} for each update in order. */
  adamwMany(updates: readonly AdamWUpdate[]): void {
    for (const u of updates) this.adamw(u.param, u.grad, u.m, u.v, u.hp);
  }

  // ---- private helpers --------------------------------------------------------------------------

  /**
   * AdamW's gradient factor: 1, a number, or a clip's factor (`null`: a non-finite norm).
   *
   * @internal For subclasses; not part of the public API.
   */
  protected gradScale(hp: AdamWParams, action: string): number | null {
    const s = hp.gradScale ?? 1;
    if (typeof s === "number") return s;
    const n = hostClipFactor(this.check.gradClip(s, action).storage.data[0], s.maxNorm);
    return n === null || !s.applied ? n : 1;
  }

  // ---- storage (the hooks a subclass with its own allocation overrides) ----------------------

  /**
   * How the shared checks recognise this backend's tensors (and name it in errors).
   *
   * @internal For subclasses; not part of the public API.
   */
  protected tensorKind(): TensorKind<ReferenceTensor> {
    return REFERENCE_TENSORS;
  }

  /**
   * A new float array of `size` values for a temporary: zeroed, at the backend's precision.
   *
   * @internal For subclasses (a pooled allocator may return old contents).
   */
  protected newStorage(size: number): FloatStorage {
    return this.precision === "f32" ? new Float32Array(size) : new Float64Array(size);
  }

  /**
   * Frees an allocation: later uses of its tensors throw.
   *
   * @internal For subclasses (a pooled allocator takes the array back first).
   */
  protected freeStorage(storage: Storage): void {
    free(storage);
  }

  /**
   * A temporary `f32` tensor of `shape` on {@linkcode newStorage}, or on `data` (an array of the
   * shape's size that the subclass already holds, e.g. a result computed ahead).
   *
   * @internal For subclasses; not part of the public API.
   */
  protected alloc(shape: readonly number[], data?: Float32Array): ReferenceTensor {
    const size = shape.reduce((p, d) => p * d, 1);
    if (data !== undefined && data.length !== size) {
      throw new RangeError(
        `Cannot allocate a tensor of shape [${shape.join(", ")}] on given storage: its length ` +
          `must be ${size}, got ${data.length}`,
      );
    }
    return this.#register(new Storage(data ?? this.newStorage(size)), shape, "f32");
  }

  #register(storage: Storage, shape: readonly number[], dtype: DType): ReferenceTensor {
    this.#temporaries.add(storage);
    return new ReferenceTensor(this, storage, shape, dtype);
  }
}
