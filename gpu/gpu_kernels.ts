/**
 * The sparse kernels behind the same interface as `reference/`: {@linkcode GpuKernels} takes and
 * returns host `Matrix` values, validates them with the reference's checks and messages, runs the
 * WebGPU kernels of `gpu/kernels/` and reads the results back. It is how the parity tests and
 * benchmarks call the GPU; the training backend calls the encoders directly on device buffers.
 *
 * Over 600 lines on purpose: one method per reference function, each validation, a kernel call and
 * a read-back, mirroring `reference/` one to one.
 *
 * @module
 */

import {
  assertFinite,
  assertGroupedCols,
  assertMatrix,
  assertNoNaN,
  type Matrix,
} from "../reference/matrix.ts";
import {
  assertCompressed24,
  assertCompressible24,
  assertMaskedDecayArgs,
  assertMaskPair,
  assertMvueUniforms,
  assertOptionsObject,
  assertPruneNMOptions,
  assertQuantizeFp8Args,
  assertTransposableInput,
  checkSsteScaleArgs,
} from "../reference/checks.ts";
import type { Compressed24 } from "../reference/compress.ts";
import type { QuantizeFp8Options, QuantizeFp8Result } from "../reference/fp8.ts";
import { assertMvueInput, type Mvue24Options } from "../reference/mvue.ts";
import type { PruneNMOptions, PruneResult } from "../reference/prune.ts";
import type { SsteScaleOptions } from "../reference/soft_threshold.ts";
import type { GpuRuntime } from "./runtime.ts";
import { encodeCompress24, encodeDecompress24 } from "./kernels/compress.ts";
import { encodeFlipCount } from "./kernels/flip_rate.ts";
import { encodeQuantizeFp8 } from "./kernels/fp8.ts";
import {
  encodeGeglu,
  encodeGegluBackward,
  encodeSwiglu,
  encodeSwigluBackward,
  type GatedLayout,
} from "./kernels/gated.ts";
import { encodeMaskedDecay } from "./kernels/masked_decay.ts";
import { encodeMatmul } from "./kernels/matmul.ts";
import { encodeMvue24, encodeMvue24WithUniforms } from "./kernels/mvue.ts";
import { encodePruneNM, MAX_GPU_GROUP } from "./kernels/prune.ts";
import { assertSeed, assertU32, encodeUniforms } from "./kernels/rng.ts";
import { encodeSoftThreshold24, encodeSsteSums } from "./kernels/soft_threshold.ts";
import { encodeSparseMatmul24 } from "./kernels/sparse_matmul.ts";
import { encodeTransposableMask24 } from "./kernels/transposable.ts";

/** Result of {@linkcode GpuKernels.quantizeFp8Codes}. */
export interface GpuFp8Codes {
  /** The FP8 codes, four per word: entry `4w + j` in byte `j` of word `w`. */
  codes: Uint32Array;
  /** The per-tensor scale `s`. */
  scale: number;
}

/** Options of the gated activations of {@linkcode GpuKernels}. */
export interface GpuGatedOptions {
  /**
   * `"row-major"` (default): `x` is `[T, 2h]` with rows `[x | gate]`, as in the reference.
   * `"column-major"`: every matrix is the transpose — `x` is `[2h, T]` (gate rows last), `dy` and
   * the forward output `[h, T]`, the backward output `[2h, T]`.
   */
  layout?: GatedLayout;
}

function toMask(bytes: ArrayBuffer): Uint8Array {
  return Uint8Array.from(new Float32Array(bytes));
}

/**
 * The sparse GPU kernels with the reference's names, arguments, validation and result shapes
 * (each method is `async` and resolves once the result is read back). Construct one per
 * {@linkcode GpuRuntime}.
 *
 * @example
 * ```ts
 * import { matrix } from "../reference/matrix.ts";
 * import { GpuRuntime } from "./runtime.ts";
 * import { GpuKernels } from "./gpu_kernels.ts";
 * const rt = await GpuRuntime.create();
 * const gpu = new GpuKernels(rt);
 * const { mask } = await gpu.prune24(matrix(1, 4, [0.1, -3, 2, 0.5]));
 * rt.destroy();
 * if (mask.join() !== "0,1,1,0") throw new Error("unexpected");
 * ```
 */
export class GpuKernels {
  /** The runtime the kernels run on. */
  readonly runtime: GpuRuntime;

  /**
   * Wraps a runtime.
   *
   * @param runtime The WebGPU runtime (see `GpuRuntime.create`).
   */
  constructor(runtime: GpuRuntime) {
    this.runtime = runtime;
  }

  async #read(buffers: readonly { buffer: GPUBuffer; bytes: number }[]): Promise<ArrayBuffer[]> {
    const out = await this.runtime.readMany(buffers);
    return out;
  }

  /** Uploads `data` (an empty array gets an unwritten buffer: zero-byte writes are skipped). */
  #upload(data: Float32Array | Uint32Array): GPUBuffer {
    return data.length === 0 ? this.runtime.alloc(0) : this.runtime.upload(data);
  }

  #release(...buffers: GPUBuffer[]): void {
    for (const b of buffers) this.runtime.free(b);
  }

  /**
   * Hard 2:4 magnitude pruning (SPEC §1.1), as `prune24` of `reference/prune.ts`.
   *
   * @param w The matrix; `w.cols % 4 === 0`, no NaN.
   * @returns The pruned matrix and its mask.
   * @throws {TypeError} If `w` is not a matrix.
   * @throws {RangeError} If `w.cols % 4 !== 0` or `w` contains NaN.
   */
  prune24(w: Matrix): Promise<PruneResult> {
    return this.#prune(w, 2, 4, "prune to 2:4");
  }

  /**
   * Hard N:M magnitude pruning (SPEC §1.1), as `pruneNM` of `reference/prune.ts`; the GPU kernel
   * supports group sizes up to 16.
   *
   * @param w The matrix; `w.cols % m === 0`, no NaN.
   * @param options `{ n, m }`.
   * @returns The pruned matrix and its mask.
   * @throws {TypeError} If `w` is not a matrix or the options are malformed.
   * @throws {RangeError} If `n`/`m` are invalid (or `m > 16`), `w.cols % m !== 0` or `w` contains
   * NaN.
   */
  pruneNM(w: Matrix, options: PruneNMOptions): Promise<PruneResult> {
    assertPruneNMOptions(options);
    const { n, m } = options;
    if (m > MAX_GPU_GROUP) {
      throw new RangeError(
        `Cannot prune to ${n}:${m}: the GPU kernel supports group sizes up to ${MAX_GPU_GROUP}, got m = ${m}`,
      );
    }
    return this.#prune(w, n, m, `prune to ${n}:${m}`);
  }

  async #prune(w: Matrix, n: number, m: number, action: string): Promise<PruneResult> {
    assertMatrix(w, action);
    assertGroupedCols(w, m, action);
    assertNoNaN(w, action);
    const rt = this.runtime;
    const input = this.#upload(w.data);
    const { pruned, mask } = encodePruneNM(rt, input, w.rows, w.cols, n, m);
    const bytes = 4 * w.data.length;
    const [p, k] = await this.#read([{ buffer: pruned, bytes }, { buffer: mask, bytes }]);
    this.#release(input, pruned, mask);
    return { pruned: { rows: w.rows, cols: w.cols, data: new Float32Array(p) }, mask: toMask(k) };
  }

  /**
   * Soft-threshold 2:4 pruning (SPEC §1.2), as `softThreshold24` of `reference/soft_threshold.ts`.
   *
   * @param w The matrix; `w.cols % 4 === 0`, no NaN.
   * @returns `S_soft(w)` and the hard 2:4 mask.
   * @throws {TypeError} If `w` is not a matrix.
   * @throws {RangeError} If `w.cols % 4 !== 0` or `w` contains NaN.
   */
  async softThreshold24(w: Matrix): Promise<PruneResult> {
    const action = "soft-threshold to 2:4";
    assertMatrix(w, action);
    assertGroupedCols(w, 4, action);
    assertNoNaN(w, action);
    const rt = this.runtime;
    const input = this.#upload(w.data);
    const { pruned, mask } = encodeSoftThreshold24(rt, input, w.rows, w.cols);
    const bytes = 4 * w.data.length;
    const [p, k] = await this.#read([{ buffer: pruned, bytes }, { buffer: mask, bytes }]);
    this.#release(input, pruned, mask);
    return { pruned: { rows: w.rows, cols: w.cols, data: new Float32Array(p) }, mask: toMask(k) };
  }

  /**
   * The S-STE scale β (SPEC §1.3), as `ssteScale` of `reference/soft_threshold.ts`: the sums run
   * on the GPU in float32, the division on the host in float64.
   *
   * @param w The weight; `w.cols % 4 === 0`, finite values.
   * @param options `{ recipe }`: `"mse"` (default), `"l1"` or `"none"`.
   * @returns β (1 for `"none"` or an all-zero `S_soft(w)`).
   * @throws {TypeError} If `w` is not a matrix or the recipe is unknown.
   * @throws {RangeError} If `w.cols % 4 !== 0` or `w` holds NaN or ±Inf.
   */
  async ssteScale(w: Matrix, options?: SsteScaleOptions): Promise<number> {
    const action = "compute the S-STE scale";
    const recipe = checkSsteScaleArgs(w, options, action);
    if (recipe === "none") return 1;
    const rt = this.runtime;
    const input = this.#upload(w.data);
    const sums = encodeSsteSums(rt, input, w.rows, w.cols, recipe);
    const [s] = await this.#read([{ buffer: sums, bytes: 8 }]);
    this.#release(input, sums);
    const [numerator, denominator] = new Float32Array(s);
    return denominator === 0 ? 1 : numerator / denominator;
  }

  /**
   * Transposable 2:4 pruning (SPEC §1.4), as `transposableMask24` of
   * `reference/transposable.ts`.
   *
   * @param w The matrix; rows and columns multiples of 4, no NaN.
   * @returns `w ⊙ M` and the transposable mask `M`.
   * @throws {TypeError} If `w` is not a matrix.
   * @throws {RangeError} If `w.rows % 4 !== 0`, `w.cols % 4 !== 0` or `w` contains NaN.
   */
  async transposableMask24(w: Matrix): Promise<PruneResult> {
    const { pruned, mask } = await this.#transposable(w, false);
    return { pruned, mask };
  }

  /**
   * The chosen pattern number of every 4×4 block (SPEC §1.4), as `transposablePatternIndices` of
   * `reference/transposable.ts` (row-major over blocks).
   *
   * @param w The matrix; rows and columns multiples of 4, no NaN.
   * @returns One pattern number (0..89) per block.
   * @throws {TypeError} If `w` is not a matrix.
   * @throws {RangeError} If `w.rows % 4 !== 0`, `w.cols % 4 !== 0` or `w` contains NaN.
   */
  async transposablePatternIndices(w: Matrix): Promise<Uint8Array> {
    return (await this.#transposable(w, true)).indices;
  }

  async #transposable(
    w: Matrix,
    wantIndices: boolean,
  ): Promise<PruneResult & { indices: Uint8Array }> {
    const action = "find a transposable 2:4 mask";
    assertTransposableInput(w, action);
    const rt = this.runtime;
    const input = this.#upload(w.data);
    const out = encodeTransposableMask24(rt, input, w.rows, w.cols);
    const bytes = wantIndices ? 0 : 4 * w.data.length;
    const [p, k, i] = await this.#read([
      { buffer: out.pruned, bytes },
      { buffer: out.mask, bytes },
      { buffer: out.indices, bytes: wantIndices ? w.data.length / 4 : 0 },
    ]);
    this.#release(input, out.pruned, out.mask, out.indices);
    return {
      pruned: { rows: w.rows, cols: w.cols, data: new Float32Array(p) },
      mask: toMask(k),
      indices: Uint8Array.from(new Uint32Array(i)),
    };
  }

  /**
   * Compresses a 2:4 matrix (SPEC §1.5), as `compress24` of `reference/compress.ts`.
   *
   * @param m A 2:4 matrix; `m.cols % 4 === 0`, no NaN, at most two non-zeros per group.
   * @returns Values and packed metadata.
   * @throws {TypeError} If `m` is not a matrix.
   * @throws {RangeError} If `m.cols % 4 !== 0`, `m` contains NaN, or a group has more than two
   * non-zeros.
   */
  async compress24(m: Matrix): Promise<Compressed24> {
    const action = "compress to 2:4";
    assertCompressible24(m, action);
    const rt = this.runtime;
    const input = this.#upload(m.data);
    const { values, meta } = encodeCompress24(rt, input, m.rows, m.cols);
    const words = Math.ceil(m.data.length / 32);
    const [v, c] = await this.#read([
      { buffer: values, bytes: 2 * m.data.length },
      { buffer: meta, bytes: 4 * words },
    ]);
    this.#release(input, values, meta);
    return {
      values: { rows: m.rows, cols: m.cols / 2, data: new Float32Array(v) },
      meta: new Uint32Array(c),
    };
  }

  /**
   * Expands a compressed 2:4 matrix (SPEC §1.5), as `decompress24` of `reference/compress.ts`
   * (same metadata validation).
   *
   * @param c The compressed matrix.
   * @returns The dense matrix `[rows, 2·values.cols]`.
   * @throws {TypeError} If `c`, `c.values` or `c.meta` has the wrong type.
   * @throws {RangeError} If `values.cols` is odd, the metadata length or a code is invalid, an
   * unused bit is set, or a value is NaN.
   */
  async decompress24(c: Compressed24): Promise<Matrix> {
    const { rows, cols } = assertCompressed24(c, "decompress from 2:4");
    const rt = this.runtime;
    const values = this.#upload(c.values.data);
    const meta = this.#upload(c.meta);
    const out = encodeDecompress24(rt, values, meta, rows, cols);
    const [d] = await this.#read([{ buffer: out, bytes: 4 * rows * cols }]);
    this.#release(values, meta, out);
    return { rows, cols, data: new Float32Array(d) };
  }

  /**
   * `count` uniforms of one Philox stream, as `uniforms` of `reference/rng.ts`.
   *
   * @param seed An integer in `[0, 2^53)`.
   * @param stream An integer in `[0, 2^32)`.
   * @param count An integer in `[0, 2^31]`.
   * @returns The uniforms.
   * @throws {RangeError} If an argument is out of range.
   */
  async uniforms(seed: number, stream: number, count: number): Promise<Float32Array> {
    const rt = this.runtime;
    const out = encodeUniforms(rt, seed, stream, count);
    const [u] = await this.#read([{ buffer: out, bytes: 4 * count }]);
    this.#release(out);
    return new Float32Array(u);
  }

  /**
   * MVUE 2:4 with Philox uniforms (SPEC §2.7), as `mvue24` of `reference/mvue.ts`.
   *
   * @param g The gradient; `g.cols % 4 === 0`, finite values, group sums at most 2^126.
   * @param options `{ seed, stream }` (stream default 0).
   * @returns The 2:4 sparse unbiased estimate.
   * @throws {TypeError} If `g` is not a matrix or `options` is not an object.
   * @throws {RangeError} If `g.cols % 4 !== 0`, a value is not finite, a group sum exceeds 2^126,
   * or the seed or stream is out of range.
   */
  async mvue24(g: Matrix, options: Mvue24Options): Promise<Matrix> {
    const action = "sample MVUE 2:4";
    assertOptionsObject(options, "{seed, stream}", action);
    const { seed, stream = 0 } = options;
    assertMvueInput(g, action);
    assertSeed(seed, "draw Philox uniforms");
    assertU32(stream, "stream", "draw Philox uniforms");
    const rt = this.runtime;
    const input = this.#upload(g.data);
    const out = encodeMvue24(rt, input, g.rows, g.cols, seed, stream);
    const [d] = await this.#read([{ buffer: out, bytes: 4 * g.data.length }]);
    this.#release(input, out);
    return { rows: g.rows, cols: g.cols, data: new Float32Array(d) };
  }

  /**
   * MVUE 2:4 with explicit uniforms (SPEC §2.7), as `mvue24WithUniforms` of `reference/mvue.ts`.
   *
   * @param g The gradient; `g.cols % 4 === 0`, finite values.
   * @param uniforms Two per group, strictly inside `(0, 1)`.
   * @returns The 2:4 sparse estimate.
   * @throws {TypeError} If `g` is not a matrix or `uniforms` is not a `Float32Array`.
   * @throws {RangeError} If a shape, value or uniform is invalid.
   */
  async mvue24WithUniforms(g: Matrix, uniforms: Float32Array): Promise<Matrix> {
    const action = "sample MVUE 2:4";
    assertMvueInput(g, action);
    assertMvueUniforms(uniforms, g.data.length / 4, action);
    const rt = this.runtime;
    const input = this.#upload(g.data);
    const u = this.#upload(uniforms);
    const out = encodeMvue24WithUniforms(rt, input, u, g.rows, g.cols);
    const [d] = await this.#read([{ buffer: out, bytes: 4 * g.data.length }]);
    this.#release(input, u, out);
    return { rows: g.rows, cols: g.cols, data: new Float32Array(d) };
  }

  /**
   * `grad + alpha·(1 − mask) ⊙ w` (SPEC §2.2–2.3), as `maskedDecay` of
   * `reference/masked_decay.ts`.
   *
   * @param grad The gradient.
   * @param w The dense weight, same shape.
   * @param mask 0/1 entries, `1` = kept.
   * @param alpha The decay factor, finite and `≥ 0`.
   * @returns A fresh matrix.
   * @throws {TypeError} If an argument has the wrong type.
   * @throws {RangeError} If shapes differ, the mask is invalid, `alpha` is invalid, or `grad` or
   * `w` holds NaN or ±Inf.
   */
  async maskedDecay(grad: Matrix, w: Matrix, mask: Uint8Array, alpha: number): Promise<Matrix> {
    const action = "apply masked decay";
    assertMaskedDecayArgs(grad, w, mask, alpha, action);
    const rt = this.runtime;
    const gb = this.#upload(grad.data),
      wb = this.#upload(w.data),
      mb = this.#upload(Float32Array.from(mask));
    const out = encodeMaskedDecay(rt, gb, wb, mb, grad.data.length, alpha);
    const [d] = await this.#read([{ buffer: out, bytes: 4 * grad.data.length }]);
    this.#release(gb, wb, mb, out);
    return { rows: grad.rows, cols: grad.cols, data: new Float32Array(d) };
  }

  /**
   * The number of entries that differ between two masks (SPEC §2.4), as `flipCount` of
   * `reference/flip_rate.ts`.
   *
   * @param prevMask The earlier mask.
   * @param nextMask The later mask, same length.
   * @returns The count.
   * @throws {TypeError} If a mask is not a `Uint8Array`.
   * @throws {RangeError} If the lengths differ or an entry is not 0/1.
   */
  async flipCount(prevMask: Uint8Array, nextMask: Uint8Array): Promise<number> {
    assertMaskPair(prevMask, nextMask, "count mask flips");
    return await this.#flips(prevMask, nextMask);
  }

  /**
   * The flip rate (SPEC §2.4), as `flipRate` of `reference/flip_rate.ts`.
   *
   * @param prevMask The earlier mask, at least one entry.
   * @param nextMask The later mask, same length.
   * @returns The fraction of entries that changed.
   * @throws {TypeError} If a mask is not a `Uint8Array`.
   * @throws {RangeError} If the masks are empty, their lengths differ or an entry is not 0/1.
   */
  async flipRate(prevMask: Uint8Array, nextMask: Uint8Array): Promise<number> {
    const action = "compute the flip rate";
    assertMaskPair(prevMask, nextMask, action);
    if (prevMask.length === 0) {
      throw new RangeError(`Cannot ${action}: the masks must not be empty, got length 0`);
    }
    return (await this.#flips(prevMask, nextMask)) / prevMask.length;
  }

  async #flips(prevMask: Uint8Array, nextMask: Uint8Array): Promise<number> {
    const rt = this.runtime;
    const a = this.#upload(Float32Array.from(prevMask)),
      b = this.#upload(Float32Array.from(nextMask));
    const out = encodeFlipCount(rt, { prev: a, next: b, size: prevMask.length });
    const [c] = await this.#read([{ buffer: out, bytes: 4 }]);
    this.#release(a, b, out);
    return new Uint32Array(c)[0];
  }

  /**
   * Per-tensor amax FP8 quantise-dequantise (SPEC §2.9), as `quantizeFp8` of `reference/fp8.ts`.
   *
   * @param x The matrix, finite values.
   * @param options `{ format }`: `"e4m3"` or `"e5m2"`.
   * @returns The dequantised matrix and the scale.
   * @throws {TypeError} If `x` is not a matrix, `options` is not an object or the format is
   * unknown.
   * @throws {RangeError} If `x` holds NaN or ±Inf.
   */
  async quantizeFp8(x: Matrix, options: QuantizeFp8Options): Promise<QuantizeFp8Result> {
    const { dequantized, scale } = await this.#fp8(x, options, false);
    return { dequantized, scale };
  }

  /**
   * The FP8 codes of the per-tensor amax quantisation (SPEC §2.9): the code of entry `i` is
   * `encodeFp8(f32(x_i · s))` of `reference/fp8.ts`, packed four per word.
   *
   * @param x The matrix, finite values.
   * @param options `{ format }`: `"e4m3"` or `"e5m2"`.
   * @returns The packed codes (`⌈size / 4⌉` words) and the scale.
   * @throws {TypeError} If `x` is not a matrix, `options` is not an object or the format is
   * unknown.
   * @throws {RangeError} If `x` holds NaN or ±Inf.
   */
  async quantizeFp8Codes(x: Matrix, options: QuantizeFp8Options): Promise<GpuFp8Codes> {
    const { codes, scale } = await this.#fp8(x, options, true);
    return { codes, scale };
  }

  async #fp8(
    x: Matrix,
    options: QuantizeFp8Options,
    wantCodes: boolean,
  ): Promise<QuantizeFp8Result & GpuFp8Codes> {
    const action = "quantize to FP8";
    assertQuantizeFp8Args(x, options, action);
    const format = options.format;
    const rt = this.runtime;
    const size = x.data.length;
    const input = this.#upload(x.data);
    const out = encodeQuantizeFp8(rt, { x: input, size }, { format, codes: wantCodes });
    const [d, s, c] = await this.#read([
      { buffer: out.dequantized, bytes: wantCodes ? 0 : 4 * size },
      { buffer: out.scale, bytes: 4 },
      { buffer: out.codes ?? out.scale, bytes: wantCodes ? 4 * Math.ceil(size / 4) : 0 },
    ]);
    this.#release(input, out.dequantized, out.scale, ...(out.codes ? [out.codes] : []));
    return {
      dequantized: { rows: x.rows, cols: x.cols, data: new Float32Array(d) },
      scale: new Float32Array(s)[0],
      codes: new Uint32Array(c),
    };
  }

  /**
   * GEGLU forward (SPEC §3), as `geglu` of `reference/gated.ts`, in either layout.
   *
   * @param x `[T, 2h]` rows `[x | gate]` (or `[2h, T]` with `layout: "column-major"`), finite.
   * @param options `{ layout }`.
   * @returns `[T, h]` (or `[h, T]`).
   * @throws {TypeError} If `x` is not a matrix or the layout is unknown.
   * @throws {RangeError} If the gated dimension is odd or `x` holds NaN or ±Inf.
   */
  geglu(x: Matrix, options?: GpuGatedOptions): Promise<Matrix> {
    return this.#gated("geglu", x, null, options);
  }

  /**
   * GEGLU backward (SPEC §3), as `gegluBackward` of `reference/gated.ts`, in either layout.
   *
   * @param x The forward input (layout as in {@linkcode GpuKernels.geglu}).
   * @param dy The output gradient, `[T, h]` (or `[h, T]`).
   * @param options `{ layout }`.
   * @returns `[∂x | ∂gate]`, `[T, 2h]` (or `[2h, T]`).
   * @throws {TypeError} If an argument is not a matrix or the layout is unknown.
   * @throws {RangeError} If a shape is wrong or a value is NaN or ±Inf.
   */
  gegluBackward(x: Matrix, dy: Matrix, options?: GpuGatedOptions): Promise<Matrix> {
    return this.#gated("geglu", x, dy, options);
  }

  /**
   * SwiGLU forward (SPEC §3), as `swiglu` of `reference/gated.ts`, in either layout.
   *
   * @param x `[T, 2h]` rows `[x | gate]` (or `[2h, T]` with `layout: "column-major"`), finite.
   * @param options `{ layout }`.
   * @returns `[T, h]` (or `[h, T]`).
   * @throws {TypeError} If `x` is not a matrix or the layout is unknown.
   * @throws {RangeError} If the gated dimension is odd or `x` holds NaN or ±Inf.
   */
  swiglu(x: Matrix, options?: GpuGatedOptions): Promise<Matrix> {
    return this.#gated("swiglu", x, null, options);
  }

  /**
   * SwiGLU backward (SPEC §3), as `swigluBackward` of `reference/gated.ts`, in either layout.
   *
   * @param x The forward input.
   * @param dy The output gradient.
   * @param options `{ layout }`.
   * @returns `[∂x | ∂gate]`.
   * @throws {TypeError} If an argument is not a matrix or the layout is unknown.
   * @throws {RangeError} If a shape is wrong or a value is NaN or ±Inf.
   */
  swigluBackward(x: Matrix, dy: Matrix, options?: GpuGatedOptions): Promise<Matrix> {
    return this.#gated("swiglu", x, dy, options);
  }

  async #gated(
    activation: "geglu" | "swiglu",
    x: Matrix,
    dy: Matrix | null,
    options: GpuGatedOptions | undefined,
  ): Promise<Matrix> {
    const name = activation === "geglu" ? "GEGLU" : "SwiGLU";
    const action = dy ? `differentiate ${name}` : `apply ${name}`;
    if (options !== undefined) assertOptionsObject(options, "{layout}", action);
    const layout = options?.layout ?? "row-major";
    if (layout !== "row-major" && layout !== "column-major") {
      throw new TypeError(
        `Cannot ${action}: layout must be "row-major" or "column-major", got ${layout}`,
      );
    }
    const col = layout === "column-major";
    assertMatrix(x, action);
    const gatedDim = col ? x.rows : x.cols;
    if (gatedDim % 2 !== 0) {
      throw new RangeError(
        col
          ? `Cannot ${action}: the column-major input [x | gate]ᵀ must have an even number of rows, got ${x.rows}`
          : `Cannot ${action}: the input row [x | gate] must have an even length, got ${x.cols}`,
      );
    }
    assertFinite(x, action, "the input");
    const tokens = col ? x.cols : x.rows;
    const hidden = gatedDim / 2;
    const outRows = col ? hidden : tokens, outCols = col ? tokens : hidden;
    if (dy) {
      assertMatrix(dy, action);
      if (dy.rows !== outRows || dy.cols !== outCols) {
        throw new RangeError(
          `Cannot ${action}: the output gradient must have shape [${outRows}, ${outCols}], got [${dy.rows}, ${dy.cols}]`,
        );
      }
      assertFinite(dy, action, "the output gradient");
    }
    const rt = this.runtime;
    const input = this.#upload(x.data);
    const grad = dy ? this.#upload(dy.data) : null;
    let out: GPUBuffer;
    if (activation === "geglu") {
      out = grad
        ? encodeGegluBackward(rt, input, grad, tokens, hidden, { layout })
        : encodeGeglu(rt, input, tokens, hidden, { layout });
    } else {
      out = grad
        ? encodeSwigluBackward(rt, input, grad, tokens, hidden, { layout })
        : encodeSwiglu(rt, input, tokens, hidden, { layout });
    }
    const size = dy ? x.data.length : x.data.length / 2;
    const [d] = await this.#read([{ buffer: out, bytes: 4 * size }]);
    this.#release(input, out, ...(grad ? [grad] : []));
    return dy
      ? { rows: x.rows, cols: x.cols, data: new Float32Array(d) }
      : { rows: outRows, cols: outCols, data: new Float32Array(d) };
  }

  /**
   * Dense `op(a)·op(b)` in float32 (the dense matmul encoder of `./kernels/matmul.ts`), the
   * baseline the sparse product is compared against.
   *
   * @param a `[M, K]` (or `[K, M]` with `transA`).
   * @param b `[K, N]` (or `[N, K]` with `transB`).
   * @param options `{ transA, transB }`.
   * @returns `[M, N]`.
   * @throws {TypeError} If an argument is not a matrix.
   * @throws {RangeError} If the inner dimensions differ.
   */
  async matmul(
    a: Matrix,
    b: Matrix,
    options: { transA?: boolean; transB?: boolean } = {},
  ): Promise<Matrix> {
    const action = "multiply matrices";
    assertMatrix(a, action);
    assertMatrix(b, action);
    const transA = options?.transA === true, transB = options?.transB === true;
    const m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols;
    const kb = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols;
    if (k !== kb) {
      throw new RangeError(
        `Cannot ${action}: the inner dimensions differ, op(a) is [${m}, ${k}] and op(b) is [${kb}, ${n}]`,
      );
    }
    const rt = this.runtime;
    const ab = this.#upload(a.data), bb = this.#upload(b.data);
    const c = encodeMatmul(rt, ab, bb, { batch: 1, m, n, k, transA, transB });
    const [d] = await this.#read([{ buffer: c, bytes: 4 * m * n }]);
    this.#release(ab, bb, c);
    return { rows: m, cols: n, data: new Float32Array(d) };
  }

  /**
   * `Y = X · Aᵀ` with `A` 2:4 sparse, given compressed (SPEC §1.5), reading only its kept half.
   *
   * @param x `X`, `[T, in]`.
   * @param compressed `A` `[out, in]` as values `[out, in / 2]` and metadata (validated as by
   * `decompress24`).
   * @returns `Y`, `[T, out]`.
   * @throws {TypeError} If an argument has the wrong type.
   * @throws {RangeError} If the metadata is invalid or `x.cols` is not `A`'s row length.
   */
  async sparseMatmul(x: Matrix, compressed: Compressed24): Promise<Matrix> {
    const action = "multiply by a compressed 2:4 matrix";
    assertMatrix(x, action);
    const { rows: outDim, cols: inDim } = assertCompressed24(compressed, action);
    if (x.cols !== inDim) {
      throw new RangeError(
        `Cannot ${action}: x has ${x.cols} columns but the 2:4 matrix has rows of ${inDim}`,
      );
    }
    const rt = this.runtime;
    const xb = this.#upload(x.data);
    const vb = this.#upload(compressed.values.data), mb = this.#upload(compressed.meta);
    const y = encodeSparseMatmul24(rt, xb, vb, mb, { tokens: x.rows, inDim, outDim });
    const [d] = await this.#read([{ buffer: y, bytes: 4 * x.rows * outDim }]);
    this.#release(xb, vb, mb, y);
    return { rows: x.rows, cols: outDim, data: new Float32Array(d) };
  }
}
