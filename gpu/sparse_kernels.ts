/**
 * Products promised 2:4 (`MatmulOptions.sparse24`) on the GPU: the compressed path — transpose
 * where the layout needs it, compress (SPEC §1.5), the 2:4 kernel of `kernels/sparse_matmul.ts` —
 * and the per-shape choice between it and the dense kernel (SPEC §8.6). `"auto"` runs a shape
 * dense on first use, times both paths at the next `tune()` (the trainer's call before each step)
 * and keeps the faster one for the rest of the run.
 *
 * @module
 */

import type { GpuRuntime } from "./runtime.ts";
import type { SparseKernelChoice, SparseKernelMode, SparseKernelTuner } from "../core/backend.ts";
import type { MatmulDims } from "./kernels/matmul.ts";
import { encodeTranspose } from "./kernels/layout.ts";
import { encodeCompress24 } from "./kernels/compress.ts";
import { encodeSparseMatmul24 } from "./kernels/sparse_matmul.ts";
import { encodeFill } from "./kernels/elementwise.ts";

/** A 2-D product `op(A)·op(B)` with one operand promised 2:4 along `K` (`sparse`). */
export interface SparseProductDims extends MatmulDims {
  /** `"a"`: the rows of `op(A)` are 2:4 along `K`; `"b"`: the columns of `op(B)` are. */
  sparse: "a" | "b";
}

/** Records the dense product of {@linkcode SparseProductDims} (the backend's dense kernel). */
export type DenseMatmulEncoder = (a: GPUBuffer, b: GPUBuffer, dims: MatmulDims) => GPUBuffer;

/**
 * Records `C = op(A)·op(B)` from the compressed 2:4 operand (SPEC §8.6). With `S` the 2:4 operand
 * as `[rows, K]` (`op(B)ᵀ` for `"b"`, `op(A)` for `"a"`) and `X` the other as `[tokens, K]`, the
 * kernel computes `X·Sᵀ`: `C` itself for `"b"`, `Cᵀ` for `"a"` (transposed back). Operands stored
 * the other way round are transposed first. Only the kept half of `S` is multiplied, summed in
 * ascending group order (`kernels/sparse_matmul.ts`), so the result differs from the dense
 * product by float32 rounding when `S` is 2:4 and is wrong otherwise (the caller's promise).
 *
 * @param rt The runtime.
 * @param a `A`, row-major as stored.
 * @param b `B`, row-major as stored.
 * @param dims The 2-D product (`batch` 1, `k` a multiple of 4) and its 2:4 operand.
 * @returns A new pooled buffer, `C` `[m, n]` row-major.
 * @throws {RangeError} If `batch` is not 1 or `k` is not a positive multiple of 4.
 */
export function encodeCompressedMatmul(
  rt: GpuRuntime,
  a: GPUBuffer,
  b: GPUBuffer,
  dims: SparseProductDims,
): GPUBuffer {
  const { batch, m, n, k, transA, transB, sparse } = dims;
  if (batch !== 1 || !(k > 0) || k % 4 !== 0) {
    throw new RangeError(
      `Cannot multiply from a compressed 2:4 operand: expected one product with K a positive multiple of 4, got batch ${batch}, K = ${k}`,
    );
  }
  const temporaries: GPUBuffer[] = [];
  // An operand as `[rows, k]` row-major: stored `[k, rows]` when `kMajor`.
  const rowsByK = (buffer: GPUBuffer, rows: number, kMajor: boolean): GPUBuffer => {
    if (!kMajor) return buffer;
    const t = encodeTranspose(rt, buffer, k, rows);
    temporaries.push(t);
    return t;
  };
  const [x, tokens, s, rows] = sparse === "b"
    ? [rowsByK(a, m, transA), m, rowsByK(b, n, !transB), n]
    : [rowsByK(b, n, !transB), n, rowsByK(a, m, transA), m];
  const { values, meta } = encodeCompress24(rt, s, rows, k);
  temporaries.push(values, meta);
  let c = encodeSparseMatmul24(rt, x, values, meta, { tokens, inDim: k, outDim: rows });
  if (sparse === "a") {
    temporaries.push(c);
    c = encodeTranspose(rt, c, n, m);
  }
  for (const t of temporaries) rt.free(t);
  return c;
}

/**
 * The key of a product shape in {@linkcode SparseKernelChooser.choices}: the 2:4 operand, then
 * `M×K·K×N` and the transposes, e.g. `"b 64x768x3072 NT"`.
 */
export function sparseProductKey(dims: SparseProductDims): string {
  const t = (x: boolean) => x ? "T" : "N";
  return `${dims.sparse} ${dims.m}x${dims.k}x${dims.n} ${t(dims.transA)}${t(dims.transB)}`;
}

/** Products timed per trial: enough for this many milliseconds of work, up to `MAX_REPS`. */
const TRIAL_MS = 20;
const MAX_REPS = 256;
/** Trials per path, alternating dense and sparse; the fastest trial counts. */
const TRIALS = 3;
/**
 * `"auto"` takes the sparse path only where it times below this fraction of the dense one, so
 * timing noise between near-equal paths keeps the dense kernel.
 */
export const SPARSE_MARGIN = 0.97;

/**
 * The GPU backend's {@linkcode SparseKernelTuner} (see the module notes): which path each product
 * shape takes, the timing that decided it, and the encoder of both paths.
 */
export class SparseKernelChooser implements SparseKernelTuner {
  /** The mode: `"auto"` (timed per shape), or every product `"dense"` or `"sparse"`. */
  readonly mode: SparseKernelMode;
  #rt: GpuRuntime;
  #dense: DenseMatmulEncoder;
  #choices = new Map<string, SparseKernelChoice>();
  #pending = new Map<string, SparseProductDims>();

  /**
   * Makes the chooser of a backend.
   *
   * @param rt The runtime.
   * @param mode The mode.
   * @param dense The backend's dense product.
   * @throws {TypeError} If `mode` is not `"auto"`, `"dense"` or `"sparse"`.
   */
  constructor(rt: GpuRuntime, mode: SparseKernelMode, dense: DenseMatmulEncoder) {
    if (!["auto", "dense", "sparse"].includes(mode)) {
      throw new TypeError(
        `Cannot create a GPU backend: sparseKernels must be "auto", "dense" or "sparse", got ${
          String(mode)
        }`,
      );
    }
    this.mode = mode;
    this.#rt = rt;
    this.#dense = dense;
  }

  /**
   * The path of a product now: the mode where it is forced, else the decided path, else
   * `"dense"` (and the shape is timed at the next {@linkcode SparseKernelChooser.tune}).
   */
  path(dims: SparseProductDims): "dense" | "sparse" {
    const key = sparseProductKey(dims);
    if (this.mode !== "auto") {
      if (!this.#choices.has(key)) this.#choices.set(key, { path: this.mode });
      return this.mode;
    }
    const decided = this.#choices.get(key);
    if (decided !== undefined) return decided.path;
    this.#pending.set(key, dims);
    return "dense";
  }

  /** Records the product on its {@linkcode SparseKernelChooser.path}. */
  encode(a: GPUBuffer, b: GPUBuffer, dims: SparseProductDims): GPUBuffer {
    return this.path(dims) === "sparse"
      ? encodeCompressedMatmul(this.#rt, a, b, dims)
      : this.#dense(a, b, dims);
  }

  /**
   * Times each product shape used since the last call both ways (zero operands of its shape; the
   * sparse path with its transpose and compress passes) and keeps the faster path. Waits for the
   * work recorded so far; call it between steps.
   */
  async tune(): Promise<void> {
    if (this.#pending.size === 0) return;
    let latency = Infinity; // of a submit and wait with nothing in it, taken off every trial
    for (let i = 0; i < TRIALS; i++) {
      const start = performance.now();
      await this.#rt.sync();
      latency = Math.min(latency, performance.now() - start);
    }
    for (const [key, dims] of this.#pending) {
      const dense = await this.#timer(dims, this.#dense, latency);
      const sparse = await this.#timer(
        dims,
        (a, b) => encodeCompressedMatmul(this.#rt, a, b, dims),
        latency,
      );
      let denseMs = Infinity, sparseMs = Infinity;
      for (let trial = 0; trial < TRIALS; trial++) {
        denseMs = Math.min(denseMs, await dense());
        sparseMs = Math.min(sparseMs, await sparse());
      }
      const path = sparseMs < SPARSE_MARGIN * denseMs ? "sparse" : "dense";
      this.#choices.set(key, { path, denseMs, sparseMs });
      this.#pending.delete(key);
    }
  }

  /** The decided paths by {@linkcode sparseProductKey}, in decision order. */
  choices(): Record<string, SparseKernelChoice> {
    return Object.fromEntries(this.#choices);
  }

  /**
   * Fixes paths decided earlier (a resumed run). A forced mode keeps its own path (the choices are
   * still checked), so `choices()` never reports a path the products do not take.
   *
   * @throws {TypeError} If a choice has no path `"dense"` or `"sparse"`.
   */
  restore(choices: Record<string, SparseKernelChoice>): void {
    for (const [key, choice] of Object.entries(choices)) {
      if (choice?.path !== "dense" && choice?.path !== "sparse") {
        throw new TypeError(
          `Cannot restore the sparse kernel choice of ${key}: expected a path "dense" or "sparse", got ${
            JSON.stringify(choice)
          }`,
        );
      }
      if (this.mode !== "auto") continue;
      this.#choices.set(key, { ...choice });
      this.#pending.delete(key);
    }
  }

  /**
   * A timer of `encoder` on zero operands of `dims`: warms up (compiling its pipelines) and
   * calibrates, then each call returns the milliseconds per product of one trial, `latency` off.
   * Each product is submitted on its own (its buffers recycled), as a step's products are.
   */
  async #timer(
    dims: MatmulDims,
    encoder: DenseMatmulEncoder,
    latency: number,
  ): Promise<() => Promise<number>> {
    const rt = this.#rt;
    const { m, n, k } = dims;
    const run = async (reps: number) => {
      const [a, b] = [m * k, k * n].map((size) => {
        const buffer = rt.alloc(4 * size);
        encodeFill(rt, buffer, size, 0);
        return buffer;
      });
      await rt.sync();
      const start = performance.now();
      for (let r = 0; r < reps; r++) {
        rt.free(encoder(a, b, dims));
        rt.flush(); // recycles the product's buffers: memory stays that of one product
      }
      await rt.sync();
      const ms = Math.max(performance.now() - start - latency, 1e-6) / reps;
      rt.free(a);
      rt.free(b);
      return ms;
    };
    await run(1);
    let reps = 1; // doubled until a trial's work outweighs the latency's noise
    while (reps < MAX_REPS && (await run(reps)) * reps < TRIAL_MS) reps *= 2;
    return () => run(reps);
  }
}
