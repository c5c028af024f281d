/**
 * The CPU fast path of {@linkcode Backend}: every GEMM through oneDNN (`dnnl_sgemm`, batches
 * through its matmul primitive) or a system BLAS's `cblas_sgemm` (`gemm.ts` chooses), the
 * element-wise, normalisation and loss operations as typed-array loops over pooled `Float32Array`
 * storage, FP8, MVUE, 2:4 pruning, soft thresholding and flip counts as allocation-free copies of
 * the oracles' arithmetic, and the other 2:4 operations through the `reference/` oracles (as
 * `ReferenceBackend` runs them). Chosen by measurement (`experiments/cpu_zoo.ts`); created by
 * {@linkcode createCpuBackend}, which reports a missing library instead of failing so callers can
 * fall back.
 *
 * Over 600 lines: one class overriding the reference backend's operations that have a fast CPU form,
 * plus the helper-thread split those operations share.
 *
 * @module
 */

import type {
  AdamWParams,
  AdamWUpdate,
  Fp8Format,
  LayerNormResult,
  MatmulOptions,
  PrunedTensor,
  SoftmaxBackwardOptions,
  Tensor,
} from "../backend.ts";
import { checkFinite, dims2, type TensorKind } from "../backend_checks.ts";
import { fastExp } from "./_exp.ts";
import { ReferenceTensor, type Storage } from "../reference_storage.ts";
import { ReferenceBackend } from "../reference_backend.ts";
import * as refNN from "../reference_nn.ts";
import {
  type AdamWTensors,
  addRange,
  CLAIMED,
  IDLE,
  type KernelName,
  KERNELS,
  SEQ,
  STATE,
} from "./_kernels.ts";
import { EXP_PIECE } from "./_exp_wasm.ts";
import { mvue24Range, quantizeFp8Into } from "./_sparse.ts";
import { assertGroupedCols, assertMatrix } from "../../reference/matrix.ts";
import { assertFp8Format } from "../../reference/checks.ts";
import { batchedSgemm, type Blas } from "./blas.ts";
import { loadGemm, type LoadGemmOptions } from "./gemm.ts";

/**
 * The CPU backend's tensors are the reference backend's classes (a shape over a `Storage`) owned by
 * a `CpuBackend`, so the reference's kernel files run on them unchanged.
 */
type CpuTensor = ReferenceTensor;
type CpuStorage = Storage;

const CPU_TENSORS: TensorKind<CpuTensor> = {
  backend: "CpuBackend",
  is: (t): t is CpuTensor => t instanceof ReferenceTensor && t.owner instanceof CpuBackend,
  owner: (t) => t.owner,
  released: (t) => t.storage.released,
  indices: (t) => t.storage.data as Int32Array,
};

/** Elements (times their per-element weight) below which a hand-off costs more than it saves. */
const PARALLEL_MIN_WORK = 1 << 16;
/** How long to wait for the helper thread (plus 1 µs per unit of work) before doing its share here. */
const HELPER_TIMEOUT_MS = 10_000;

/**
 * What a cross-entropy leaves for its backward pass (one logits tensor): its row statistics and
 * the gradient for `dLoss = 1` (the usual seed), computed in the same sweep.
 */
interface SoftmaxCache {
  storage: CpuStorage;
  data: Storage["data"];
  version: number;
  /** The targets the gradient is for. */
  targets: Int32Array;
  /** `(softmax(z) − onehot(t))/N` (SPEC §10.6); null once handed to a backward pass. */
  grads: Float32Array | null;
  /** `Σ exp(z − max)` per row. */
  sums: Float64Array;
  /** `max z` per row. */
  maxes: Float64Array;
}

/** Thrown by {@linkcode createCpuBackend} when no BLAS library can be opened. */
export class CpuBackendUnavailableError extends Error {
  /**
   * Creates the error.
   *
   * @param message Why (the library search and how to install one).
   */
  constructor(message: string) {
    super(message);
    this.name = "CpuBackendUnavailableError";
  }
}

/** Options of {@linkcode createCpuBackend}. */
export type CpuBackendOptions = LoadGemmOptions;

/**
 * Opens the GEMM libraries (`gemm.ts`: oneDNN and OpenBLAS by default) and creates a
 * {@linkcode CpuBackend} on them, printing a line when one is missing.
 *
 * @param options Engine, library paths and thread count (`TWOFOUR_GEMM`, `TWOFOUR_BLAS`).
 * @returns The backend.
 * @throws {CpuBackendUnavailableError} If no BLAS library loads or FFI is not permitted; the
 * message says which paths were tried and what to install.
 * @example
 * ```ts ignore
 * import { createCpuBackend } from "./backend.ts";
 * const be = await createCpuBackend();
 * console.log(be.device);
 * ```
 */
export function createCpuBackend(options: CpuBackendOptions = {}): Promise<CpuBackend> {
  const gemm = loadGemm(options);
  if (!("blas" in gemm)) return Promise.reject(new CpuBackendUnavailableError(gemm.message));
  if (gemm.note) console.log(`cpu backend: ${gemm.note}`);
  return Promise.resolve(new CpuBackend(gemm.blas, { threads: options.threads }));
}

/**
 * The CPU {@linkcode Backend}: BLAS GEMMs, tight loops for the rest, same semantics as
 * {@linkcode ReferenceBackend} (float32 storage; reductions and element-wise arithmetic in
 * float64, rounded once per stored value). Where it differs from the reference, by at most the
 * bounds the parity suite derives: the GEMMs (BLAS sums float32 products in its own order), `exp`
 * in softmax (float64, within 5e-15 of `Math.exp`: WebAssembly SIMD, two lanes, or
 * table-driven scalar), the cross-entropy's float32 exponentials (SIMD, four lanes, within
 * 4.3 float32 rounding units: SPEC §10.6), and GELU and its derivative (tabulated Taylor
 * polynomials, within 1e-14 of the exact values: SPEC §10.6). The cross-entropy's backward reuses
 * its forward's exponentials (kept until the logits are freed or written).
 *
 * A subclass of the reference backend: it inherits memory management and the operations it runs
 * through the reference's loops and oracles, and overrides the fast ones. Memory: as the reference
 * (temporaries until `keep`, `release` frees them, using a freed tensor throws), but storage is
 * float32 in shared memory and freed storage goes back to a pool by size, so a repeated training
 * step allocates nothing after its first.
 */
export class CpuBackend extends ReferenceBackend {
  /** Always `"cpu"`. */
  override readonly name = "cpu";
  /** `"CPU (<BLAS library description>, N threads)"`. */
  declare readonly device: string;
  /** The BLAS library in use. */
  readonly blas: Blas;
  #pool = new Map<number, Float32Array[]>();
  /** In-place writes (`assign`, `adamw`) per allocation, so caches notice a changed input. */
  #versions = new WeakMap<Storage, number>();
  #softmaxCache: SoftmaxCache | null = null;
  /** `GELU'` of each GELU input since its forward, for the backward (by storage). */
  #geluCache = new Map<CpuStorage, { data: Float32Array; version: number; derivs: Float64Array }>();
  #f64Pool = new Map<number, Float64Array[]>();
  #helper: Worker | null = null;
  #noHelper = false;
  #control = new Int32Array(new SharedArrayBuffer(8));
  #helperSeq = 0;
  #helperCalls = 0;

  /** Threads the element-wise work may use (this one and, from 2, one helper). */
  readonly threads: number;

  /**
   * Creates a backend on a loaded BLAS.
   *
   * @param blas A loaded BLAS ({@linkcode loadBlas}); {@linkcode createCpuBackend} opens one.
   * @param options `{ threads }` for the element-wise work (default: the CPU count); from 2, the
   * heaviest loops (cross-entropy exponentials, GELU) split with one helper thread.
   */
  constructor(blas: Blas, options: { threads?: number } = {}) {
    super();
    this.blas = blas;
    this.threads = Math.max(1, Math.floor(options.threads ?? navigator.hardwareConcurrency));
    this.device = `CPU (${blas.version}, ${blas.threads || "?"} BLAS threads, ${this.threads} ` +
      `threads for element-wise work)`;
  }

  /** Calls whose work the helper thread shared so far (for tests and benchmarks). */
  get helperCalls(): number {
    return this.#helperCalls;
  }

  // ---- memory ---------------------------------------------------------------------------------

  /** Copies `src` into `dst` in place (and notes the write for the caches). */
  override assign(dst: Tensor, src: Tensor): void {
    super.assign(dst, src);
    this.#bump((dst as CpuTensor).storage);
  }

  // ---- linear algebra ---------------------------------------------------------------------------

  /** `op(a)·op(b)` through the GEMM engine (one batched call where it has one), float32 sums. */
  override matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
    const { A, B, transA, transB, rank, batch, M, N, K } = this.check.matmul(
      a,
      b,
      options,
      "matmul",
    );
    const res = this.alloc(rank === 3 ? [batch, M, N] : [M, N]), out = f32(res);
    if (M === 0 || N === 0) return res;
    if (K === 0) {
      out.fill(0);
      return res;
    }
    batchedSgemm(this.blas, transA, transB, batch, M, N, K, f32(A), f32(B), out);
    return res;
  }

  /** Transpose of a 2-D tensor. */
  override transpose(a: Tensor): Tensor {
    const action = "transpose";
    const x = this.check.float(a, action);
    const [rows, cols] = dims2(x, action);
    const res = this.alloc([cols, rows]), out = f32(res), d = f32(x);
    // 32×32 blocks keep both the rows read and the rows written in cache.
    for (let r0 = 0; r0 < rows; r0 += 32) {
      for (let c0 = 0; c0 < cols; c0 += 32) {
        const r1 = Math.min(rows, r0 + 32), c1 = Math.min(cols, c0 + 32);
        for (let r = r0; r < r1; r++) {
          for (let c = c0; c < c1; c++) out[c * rows + r] = d[r * cols + c];
        }
      }
    }
    return res;
  }

  /** Views `x` as `[A, B, C, D]` and swaps the middle axes → `[A, C, B, D]`. */
  override permute0213(x: Tensor, dims: readonly [number, number, number, number]): Tensor {
    const t = this.check.permute0213(x, dims, "permute axes 1 and 2");
    const [A, B, C, D] = dims;
    const res = this.alloc([A, C, B, D]), out = f32(res), d = f32(t);
    for (let a = 0; a < A; a++) {
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          const src = ((a * B + b) * C + c) * D, dst = ((a * C + c) * B + b) * D;
          for (let e = 0; e < D; e++) out[dst + e] = d[src + e];
        }
      }
    }
    return res;
  }

  /** Columns `[start, start + width)` of a 2-D tensor. */
  override sliceCols(x: Tensor, start: number, width: number): Tensor {
    const { t, rows, cols } = this.check.columnBlock(x, start, width, "slice");
    const res = this.alloc([rows, width]), out = f32(res), d = f32(t);
    for (let r = 0; r < rows; r++) {
      out.set(d.subarray(r * cols + start, r * cols + start + width), r * width);
    }
    return res;
  }

  /** Places `[N, width]` at column `start` of a zero `[N, cols]` tensor. */
  override padCols(x: Tensor, start: number, cols: number): Tensor {
    const { t, rows, width } = this.check.columnBlock(x, start, cols, "pad");
    const res = this.alloc([rows, cols]), out = f32(res), d = f32(t);
    // Native fill and copy (memset, memcpy) beat an element loop here.
    out.fill(0);
    for (let r = 0; r < rows; r++) {
      out.set(d.subarray(r * width, (r + 1) * width), r * cols + start);
    }
    return res;
  }

  // ---- element-wise -----------------------------------------------------------------------------

  /** `a + b` (float32 SIMD sums: the reference's float64 sums rounded once). */
  override add(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.check.pair(a, b, "add");
    const res = this.alloc(x.shape), out = f32(res), xd = f32(x), yd = f32(y);
    // One thread: memory-bound and short, the helper's wake-up would cost more than its half saves.
    addRange(xd, yd, out, 0, out.length);
    return res;
  }

  /** `a + s·b`. */
  override addScaled(a: Tensor, b: Tensor, s: number): Tensor {
    const action = "add scaled";
    const [x, y] = this.check.pair(a, b, action);
    checkFinite(s, "s", action);
    const res = this.alloc(x.shape), out = f32(res), xd = f32(x), yd = f32(y);
    for (let i = 0; i < out.length; i++) out[i] = xd[i] + s * yd[i];
    return res;
  }

  /** `a ⊙ b`. */
  override mul(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.check.pair(a, b, "multiply");
    const res = this.alloc(x.shape), out = f32(res), xd = f32(x), yd = f32(y);
    for (let i = 0; i < out.length; i++) out[i] = xd[i] * yd[i];
    return res;
  }

  /** `s·a`. */
  override scale(a: Tensor, s: number): Tensor {
    const action = "scale";
    const x = this.check.float(a, action);
    checkFinite(s, "s", action);
    const res = this.alloc(x.shape), out = f32(res), xd = f32(x);
    for (let i = 0; i < out.length; i++) out[i] = s * xd[i];
    return res;
  }

  /**
   * Exact GELU `x·Φ(x)` (tabulated Taylor polynomials, SPEC §10.6); `GELU'(x)` is kept for the
   * backward pass until `x` is freed or changed.
   */
  override gelu(x: Tensor): Tensor {
    const t = this.check.float(x, "apply GELU");
    const res = this.alloc(t.shape), out = f32(res), d = f32(t), derivs = this.#f64(d.length);
    this.#parallel("geluRange", (i0, i1) => [d, out, derivs, i0, i1], d.length);
    this.#dropGelu(t.storage);
    this.#geluCache.set(t.storage, { data: d, version: this.#version(t.storage), derivs });
    return res;
  }

  /** `dy ⊙ GELU'(x)`, `GELU'(x) = Φ(x) + x·φ(x)` (the forward's values when `x` is unchanged). */
  override geluBackward(x: Tensor, dy: Tensor): Tensor {
    const [t, g] = this.check.pair(x, dy, "apply the GELU backward pass");
    const res = this.alloc(t.shape), out = f32(res), d = f32(t), gd = f32(g);
    const kept = this.#geluCache.get(t.storage);
    const derivs = kept && kept.data === d && kept.version === this.#version(t.storage)
      ? kept.derivs
      : new Float64Array(0);
    this.#parallel("geluBackwardRange", (i0, i1) => [d, gd, out, derivs, i0, i1], d.length);
    return res;
  }

  // ---- normalisation, attention, embedding, loss ------------------------------------------------

  /** Causal softmax of `scale·s` over `[B, T, T]` (columns past the row get 0). */
  override causalSoftmax(s: Tensor, scale: number): Tensor {
    const action = "apply the causal softmax";
    const { S, batch, T } = this.check.causalSoftmax(s, scale, action);
    if (T > EXP_PIECE) return refNN.causalSoftmax(this.ctx, s, scale, fastExp);
    const res = this.alloc(S.shape), out = f32(res), d = f32(S);
    // Rows split by work (about T/2 values each) with the helper thread.
    const args = (q0: number, q1: number) => [d, out, T, scale, action, q0, q1];
    this.#parallel("causalSoftmaxRows", args, batch * T, T);
    return res;
  }

  /**
   * LayerNorm over the last axis (the reference's arithmetic, rows' sums four at a time; rows split
   * with the helper thread).
   */
  override layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): LayerNormResult {
    const { X, W, B, n, d } = this.check.layerNorm([x, w, b, eps], "apply LayerNorm");
    const y = this.alloc([n, d]), mean = this.alloc([n]), rstd = this.alloc([n]);
    const xd = f32(X), params = { w: f32(W), b: f32(B), eps };
    const out = { y: f32(y), mean: f32(mean), rstd: f32(rstd) };
    this.#parallel("layerNormRows", (r0, r1) => [xd, params, out, d, r0, r1], n, d);
    return { y, mean, rstd };
  }

  /**
   * `scale·(p ⊙ (dp − Σ p·dp))` along the last axis (the reference's arithmetic, four rows at a
   * time; rows split with the helper thread; every entry in full, the causal hint unused).
   */
  override softmaxBackward(p: Tensor, dp: Tensor, options: SoftmaxBackwardOptions = {}): Tensor {
    const action = "apply the softmax backward pass";
    const { P, G, rows, width } = this.check.softmaxBackward(p, dp, options, action);
    const res = this.alloc(P.shape), out = f32(res), pd = f32(P), gd = f32(G);
    const scale = options.scale ?? 1;
    const args = (r0: number, r1: number) => [pd, gd, out, width, scale, r0, r1];
    this.#parallel("softmaxBackwardRows", args, rows, width);
    return res;
  }

  /**
   * The embedding's scatter-add `dW[ids[r]] += dy[r]` → `[vocab, d]`: as the reference, each row
   * sums its positions in order in float64 and rounds once, but float64 accumulators only for the
   * rows the ids touch (not a zeroed float64 table of the whole vocabulary).
   */
  override embeddingBackward(idx: Tensor, dy: Tensor, vocab: number): Tensor {
    const action = "apply the embedding backward pass";
    const { G, ids, n, d } = this.check.embeddingBackward(idx, dy, vocab, action);
    const gd = f32(G), slots = new Int32Array(vocab).fill(-1), rows: number[] = [];
    for (const id of ids) {
      if (slots[id] < 0) slots[id] = rows.push(id) - 1;
    }
    const acc = this.#f64(n * d).fill(0, 0, rows.length * d); // at most n rows
    for (let r = 0; r < n; r++) {
      const dst = slots[ids[r]] * d, src = r * d;
      for (let c = 0; c < d; c++) acc[dst + c] += gd[src + c];
    }
    const res = this.alloc([vocab, d]), out = f32(res);
    out.fill(0);
    rows.forEach((id, slot) => {
      for (let c = 0; c < d; c++) out[id * d + c] = acc[slot * d + c];
    });
    this.#freeF64(acc);
    return res;
  }

  /**
   * No fused attention: the CPU prefers the composed operations (BLAS products and
   * {@linkcode CpuBackend.causalSoftmax}) over the reference's float64 oracle it would inherit.
   */
  override causalAttention(): undefined {
    return undefined;
  }

  /**
   * Mean cross-entropy of `logits[N, C]` against `targets` → `[1]`; the gradient for `dLoss = 1`
   * is computed in the same sweep and kept for the backward pass.
   */
  override crossEntropy(logits: Tensor, targets: Tensor): Tensor {
    const { Z, t, n, c } = this.check.crossEntropy(logits, targets, "compute the cross-entropy");
    const { sums, maxes } = this.#softmaxOf(Z, t, n, c), z = f32(Z);
    let total = 0;
    for (let r = 0; r < n; r++) total += maxes[r] + Math.log(sums[r]) - z[r * c + t[r]];
    const res = this.alloc([1]);
    res.storage.data[0] = total / n;
    return res;
  }

  /**
   * `dLoss·(softmax(z) − onehot(target))/N`: for `dLoss = 1` after the forward pass on the same
   * logits and targets, the forward's gradient itself (no copy); otherwise computed here.
   */
  override crossEntropyBackward(logits: Tensor, targets: Tensor, dLoss: Tensor): Tensor {
    const { Z, L, t, n, c } = this.check.crossEntropyBackward(
      logits,
      targets,
      dLoss,
      "apply the cross-entropy backward pass",
    );
    const factor = L.storage.data[0] / n, cached = this.#cachedSoftmax(Z, t);
    if (cached?.grads && factor === 1 / n) {
      const grads = cached.grads; // the forward's gradient becomes the result's storage
      cached.grads = null;
      return this.alloc([n, c], grads);
    }
    const res = this.alloc([n, c]), sums = this.#f64(n), maxes = this.#f64(n);
    this.#crossEntropyRows(Z, t, { grads: f32(res), sums, maxes }, factor);
    this.#freeF64(sums);
    this.#freeF64(maxes);
    return res;
  }

  // ---- reductions -------------------------------------------------------------------------------

  /** `Σ x²` → `[1]`. */
  override sumSquares(x: Tensor): Tensor {
    const d = f32(this.check.float(x, "sum squares"));
    let sum = 0;
    for (let i = 0; i < d.length; i++) sum += d[i] * d[i];
    const res = this.alloc([1]);
    res.storage.data[0] = sum;
    return res;
  }

  /** `Σ a ⊙ b` → `[1]`. */
  override dot(a: Tensor, b: Tensor): Tensor {
    const [x, y] = this.check.pair(a, b, "take a dot product");
    const xd = f32(x), yd = f32(y);
    let sum = 0;
    for (let i = 0; i < xd.length; i++) sum += xd[i] * yd[i];
    const res = this.alloc([1]);
    res.storage.data[0] = sum;
    return res;
  }

  // ---- 2:4 sparsity (the reference's oracles) ----------------------------------------------------

  /**
   * Hard N:M magnitude pruning along rows: 2:4 in one pass (the oracle's ranks: the larger
   * magnitude wins, the higher index on ties), other N:M and every input the oracle rejects
   * (NaN, ragged groups) through the reference's oracle.
   */
  override pruneNM(w: Tensor, n: number, m: number): PrunedTensor {
    return (n === 2 && m === 4 && this.#prune24(w, false)) || super.pruneNM(w, n, m);
  }

  /**
   * Soft-threshold 2:4 pruning: the 2:4 mask as `pruneNM`, kept values shrunk by the group's
   * second-smallest magnitude (as the oracle, in one pass; NaN and ragged groups through it).
   */
  override softThreshold24(w: Tensor): PrunedTensor {
    return this.#prune24(w, true) || super.softThreshold24(w);
  }

  /** MVUE 2:4 along rows with uniforms at (`seed`, `stream`, group) (the oracle's arithmetic). */
  override mvue24(g: Tensor, seed: number, stream: number): Tensor {
    const action = "sample MVUE 2:4";
    const G = this.check.float(g, action);
    const [rows, cols] = dims2(G, action), x = f32(G);
    assertMatrix({ rows, cols, data: x }, action);
    assertGroupedCols({ rows, cols, data: x }, 4, action);
    const res = this.alloc(G.shape);
    // Values and group sums are checked as the groups are sampled (the oracle's errors).
    // One thread: splitting the groups with the helper measured 1.02× with the scalar loop; with the
    // WebAssembly kernel (about 1.7 ms a call) the two-thread T-SR-STE step took 0.88–0.98× as long
    // in three runs, within the loaded machine's noise.
    mvue24Range(x, cols, seed, stream, f32(res), action, 0, x.length);
    return res;
  }

  /** Number of positions where two 0/1 masks differ → `[1]` (other values: the oracle's error). */
  override flipCount(prev: Tensor, next: Tensor): Tensor {
    const [P, N] = this.check.pair(prev, next, "count mask flips");
    const p = f32(P), q = f32(N);
    // Arithmetic, not branches (random 0/1 patterns mispredict): `(a − b)²` counts a flip and
    // `(a(a − 1))²` is 0 only for 0 and 1 (NaN and ±Infinity make it NaN or Infinity).
    let count = 0, invalid = 0;
    for (let i = 0; i < p.length; i++) {
      const a = p[i], b = q[i], d = a - b, ea = a * (a - 1), eb = b * (b - 1);
      count += d * d;
      invalid += ea * ea + eb * eb;
    }
    if (invalid !== 0) return super.flipCount(prev, next);
    const res = this.alloc([1]);
    res.storage.data[0] = count;
    return res;
  }

  /** FP8 quantise–dequantise with per-tensor amax scaling (the oracle's arithmetic), any shape. */
  override quantizeFp8(x: Tensor, format: Fp8Format): Tensor {
    const X = this.check.float(x, `quantize to FP8 ${format}`);
    // Leading axes become rows so the oracle's checks name a position.
    const cols = X.shape[X.shape.length - 1],
      rows = X.shape.slice(0, -1).reduce((p, d) => p * d, 1);
    assertFp8Format(format, "quantize to FP8");
    assertMatrix({ rows, cols, data: f32(X) }, "quantize to FP8");
    const res = this.alloc(X.shape);
    quantizeFp8Into(f32(X), cols, format, f32(res)); // values checked by its amax pass
    return res;
  }

  // ---- optimizer --------------------------------------------------------------------------------

  /** One AdamW step in place (as the reference: bias-corrected moments, decoupled decay). */
  override adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hp: AdamWParams): void {
    this.adamwMany([{ param, grad, m, v, hp }]);
  }

  /**
   * {@linkcode CpuBackend.adamw} for each update, in one pass split with the helper thread (one
   * hand-off for all the parameters, not one per tensor). An update failing its checks throws
   * after the ones before it are applied, as the reference's loop does.
   */
  override adamwMany(updates: readonly AdamWUpdate[]): void {
    const steps: AdamWTensors[] = [], written: Storage[] = [];
    let failure: unknown = null;
    try {
      for (const u of updates) {
        const step = this.#adamwStep(u);
        if (step) {
          steps.push(step.arrays);
          written.push(...step.written);
        }
      }
    } catch (e) {
      failure = e;
    }
    const starts = [0];
    for (const step of steps) starts.push(starts[starts.length - 1] + step.pd.length);
    // Weight 4: a division and a square root per element.
    const total = starts[steps.length], args = (i0: number, i1: number) => [steps, starts, i0, i1];
    if (total > 0) this.#parallel("adamwSteps", args, total, 4);
    for (const storage of written) this.#bump(storage);
    if (failure !== null) throw failure;
  }

  /** One update's arrays and scalars; null when a non-finite clipped norm moves nothing. */
  #adamwStep(u: AdamWUpdate): { arrays: AdamWTensors; written: Storage[] } | null {
    const { P, G, M: Mt, V } = this.check.adamw(u.param, u.grad, u.m, u.v, u.hp, "apply AdamW");
    const { lr, beta1, beta2, eps, weightDecay, step, varianceFrozenAt } = u.hp;
    // STEP (SPEC 2.10): a frozen v is not written and is bias-corrected with its freezing step.
    const frozen = varianceFrozenAt !== undefined;
    const c1 = 1 - beta1 ** step, c2 = 1 - beta2 ** (varianceFrozenAt ?? step);
    // The product a separate scale() would have stored; a non-finite clipped norm moves nothing.
    const s = this.gradScale(u.hp, "apply AdamW");
    if (s === null) return null;
    const h = { lr, beta1, beta2, eps, weightDecay, c1, c2, frozen, s };
    const arrays = { pd: f32(P), gd: f32(G), md: f32(Mt), vd: f32(V), h };
    return { arrays, written: [P.storage, Mt.storage, V.storage] };
  }

  // ---- private helpers --------------------------------------------------------------------------

  /**
   * 2:4 pruning of a 2-D `w` (hard, or soft: kept values shrunk by the second-smallest magnitude
   * `τ`, `sign·(|w| − τ)`, +0 where `|w| = τ`); `null` where the oracle must run (its checks fail:
   * a row length not a multiple of 4, a NaN).
   */
  #prune24(w: Tensor, soft: boolean): PrunedTensor | null {
    const action = soft ? "soft-threshold to 2:4" : "prune to 2:4";
    const W = this.check.float(w, action);
    const [, cols] = dims2(W, action);
    const src = f32(W);
    if (cols % 4 !== 0 || src.length === 0) return null;
    const pruned = this.alloc(W.shape), mask = this.alloc(W.shape);
    const out = f32(pruned), keep = f32(mask);
    // Bit views: a kept value is copied as bits and a dropped one is +0, without a branch.
    const srcBits = bitsOf(src), outBits = bitsOf(out);
    for (let o = 0; o < src.length; o += 4) {
      const x0 = src[o], x1 = src[o + 1], x2 = src[o + 2], x3 = src[o + 3];
      const a0 = Math.abs(x0), a1 = Math.abs(x1), a2 = Math.abs(x2), a3 = Math.abs(x3);
      if (a0 !== a0 || a1 !== a1 || a2 !== a2 || a3 !== a3) {
        this.dispose(pruned);
        this.dispose(mask);
        return null;
      }
      // Ranks: how many of the group each element beats (a higher index wins a tie); keep 2 and 3.
      // Comparisons as numbers, not branches: random magnitudes mispredict (4× slower).
      const k0 = +(+(a0 > a1) + +(a0 > a2) + +(a0 > a3) >= 2);
      const k1 = +(+(a1 >= a0) + +(a1 > a2) + +(a1 > a3) >= 2);
      const k2 = +(+(a2 >= a0) + +(a2 >= a1) + +(a2 > a3) >= 2);
      const k3 = +(+(a3 >= a0) + +(a3 >= a1) + +(a3 >= a2) >= 2);
      keep[o] = k0;
      keep[o + 1] = k1;
      keep[o + 2] = k2;
      keep[o + 3] = k3;
      if (!soft) {
        outBits[o] = srcBits[o] & -k0;
        outBits[o + 1] = srcBits[o + 1] & -k1;
        outBits[o + 2] = srcBits[o + 2] & -k2;
        outBits[o + 3] = srcBits[o + 3] & -k3;
        continue;
      }
      // The second smallest of four magnitudes (the oracle sorts them).
      const tau = Math.min(
        Math.max(Math.min(a0, a1), Math.min(a2, a3)),
        Math.min(Math.max(a0, a1), Math.max(a2, a3)),
      );
      out[o] = k0 && a0 !== tau ? (x0 < 0 ? -(a0 - tau) : a0 - tau) : 0;
      out[o + 1] = k1 && a1 !== tau ? (x1 < 0 ? -(a1 - tau) : a1 - tau) : 0;
      out[o + 2] = k2 && a2 !== tau ? (x2 < 0 ? -(a2 - tau) : a2 - tau) : 0;
      out[o + 3] = k3 && a3 !== tau ? (x3 < 0 ? -(a3 - tau) : a3 - tau) : 0;
    }
    return { pruned, mask };
  }

  /**
   * CPU tensors' kind: reference tensors owned by a `CpuBackend`.
   *
   * @internal The reference backend's storage hook; not part of the public API.
   */
  protected override tensorKind(): TensorKind<CpuTensor> {
    return CPU_TENSORS;
  }

  /**
   * Float32 storage in shared memory (for the helper thread), from the pool (contents arbitrary).
   *
   * @internal The reference backend's storage hook; not part of the public API.
   */
  protected override newStorage(size: number): Float32Array {
    return this.#pool.get(size)?.pop() ?? new Float32Array(new SharedArrayBuffer(4 * size));
  }

  /** Returns a float32 array to the pool. */
  #recycle(data: Float32Array): void {
    const list = this.#pool.get(data.length);
    if (list) list.push(data);
    else this.#pool.set(data.length, [data]);
  }

  /**
   * Returns the array to the pool and drops the caches keyed by the storage, then frees it.
   *
   * @internal The reference backend's storage hook; not part of the public API.
   */
  protected override freeStorage(storage: CpuStorage): void {
    if (storage.data instanceof Float32Array && storage.data.length > 0) {
      this.#recycle(storage.data);
    }
    if (this.#softmaxCache?.storage === storage) this.#dropSoftmax();
    this.#dropGelu(storage);
    super.freeStorage(storage);
  }

  /** A float64 scratch array in shared memory (for the helper thread), from the pool. */
  #f64(size: number): Float64Array {
    return this.#f64Pool.get(size)?.pop() ?? new Float64Array(new SharedArrayBuffer(8 * size));
  }

  /** Returns a float64 scratch array to the pool. */
  #freeF64(values: Float64Array): void {
    const list = this.#f64Pool.get(values.length);
    if (list) list.push(values);
    else this.#f64Pool.set(values.length, [values]);
  }

  /** Forgets the GELU derivatives kept for `storage`, their array back to the pool. */
  #dropGelu(storage: CpuStorage): void {
    const entry = this.#geluCache.get(storage);
    if (!entry) return;
    this.#geluCache.delete(storage);
    this.#freeF64(entry.derivs);
  }

  /** Forgets the cross-entropy's cache, its arrays back to the pools. */
  #dropSoftmax(): void {
    const entry = this.#softmaxCache;
    if (!entry) return;
    this.#softmaxCache = null;
    if (entry.grads) this.#recycle(entry.grads);
    this.#freeF64(entry.sums);
    this.#freeF64(entry.maxes);
  }

  /**
   * Runs `kernel` on `[0, total)`: the upper part on the helper thread (when there is one and the
   * work, `total·weight`, is worth a hand-off), the lower part here, then waits for the helper.
   * A helper that fails leaves its range to this thread.
   */
  #parallel(
    kernel: KernelName,
    args: (start: number, end: number) => unknown[],
    total: number,
    weight = 1,
  ): void {
    const run = (start: number, end: number) =>
      (KERNELS[kernel] as (...a: unknown[]) => void)(...args(start, end));
    const helper = total * weight >= PARALLEL_MIN_WORK ? this.#claimHelper() : null;
    if (!helper) return run(0, total);
    const mid = Math.floor(total / 2), seq = ++this.#helperSeq;
    helper.postMessage({ kernel, args: args(mid, total), control: this.#control, seq });
    try {
      run(0, mid);
    } catch (e) {
      this.#awaitHelper(seq, total * weight); // it writes our memory: let it finish first
      throw e;
    }
    if (this.#awaitHelper(seq, total * weight)) this.#helperCalls++;
    else run(mid, total);
  }

  /**
   * Waits for the helper's call `seq`; true when it finished its range, false when it failed or
   * went quiet (a lost helper, one that failed to load, say: this thread then works alone).
   */
  #awaitHelper(seq: number, work: number): boolean {
    const control = this.#control;
    const deadline = performance.now() + HELPER_TIMEOUT_MS + work * 1e-3;
    for (;;) {
      const state = Atomics.load(control, SEQ);
      if (state === seq) return true;
      if (state === -seq) return false;
      if (performance.now() > deadline) {
        this.#helper = null;
        this.#noHelper = true;
        return false;
      }
      Atomics.wait(control, SEQ, state, 50);
    }
  }

  /**
   * The helper thread, claimed for one call (started, or restarted after it closed itself when
   * idle); null on one core or where module workers are unavailable.
   */
  #claimHelper(): Worker | null {
    if (this.threads < 2 || this.#noHelper) return null;
    const control = this.#control;
    if (this.#helper && Atomics.compareExchange(control, STATE, IDLE, CLAIMED) === IDLE) {
      return this.#helper;
    }
    try {
      const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
      // A helper that fails to load or crashes must not take the process down: work alone.
      worker.onerror = (e) => {
        e.preventDefault();
        this.#noHelper = true;
        this.#helper = null;
      };
      this.#helper = worker;
      Atomics.store(control, STATE, CLAIMED);
      return worker;
    } catch {
      this.#noHelper = true;
      return null;
    }
  }

  #version(storage: Storage): number {
    return this.#versions.get(storage) ?? 0;
  }

  #bump(storage: Storage): void {
    this.#versions.set(storage, this.#version(storage) + 1);
  }

  /** The cross-entropy's cache for `Z` and targets `t`, if `Z` is unchanged since. */
  #cachedSoftmax(Z: CpuTensor, t: Int32Array): SoftmaxCache | null {
    const cached = this.#softmaxCache, S = Z.storage;
    const valid = cached && cached.storage === S && cached.data === S.data &&
      cached.version === this.#version(S) && cached.targets.length === t.length &&
      cached.targets.every((v, i) => v === t[i]);
    return valid ? cached : null;
  }

  /** The row statistics of `Z` and its gradient for `dLoss = 1`, from the cache when valid. */
  #softmaxOf(Z: CpuTensor, t: Int32Array, n: number, c: number): SoftmaxCache {
    const cached = this.#cachedSoftmax(Z, t);
    if (cached) return cached;
    this.#dropSoftmax();
    const S = Z.storage, grads = this.newStorage(n * c), sums = this.#f64(n), maxes = this.#f64(n);
    this.#crossEntropyRows(Z, t, { grads, sums, maxes }, 1 / n);
    const version = this.#version(S), targets = t.slice();
    const entry = { storage: S, data: S.data, version, targets, grads, sums, maxes };
    this.#softmaxCache = entry;
    return entry;
  }

  /** Row statistics and the gradient for `dLoss = factor·N`, rows split with the helper thread. */
  #crossEntropyRows(
    Z: CpuTensor,
    t: Int32Array,
    into: { grads: Float32Array; sums: Float64Array; maxes: Float64Array },
    factor: number,
  ): void {
    const [n, c] = Z.shape, z = f32(Z), { grads, sums, maxes } = into;
    const args = (r0: number, r1: number) => [z, t, grads, sums, maxes, factor, c, r0, r1];
    this.#parallel("crossEntropyRows", args, n, c); // c values per row
  }
}

/** The values of an `f32` tensor. */
function f32(t: CpuTensor): Float32Array {
  return t.storage.data as Float32Array;
}

/** The bits of float32 values (the same memory). */
function bitsOf(values: Float32Array): Int32Array {
  return new Int32Array(values.buffer, values.byteOffset, values.length);
}
