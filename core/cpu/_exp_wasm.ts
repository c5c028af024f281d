/**
 * The CPU backend's WebAssembly SIMD kernels (`_exp_wasm_source.ts`, committed bytes in
 * `_exp_wasm_bytes.ts`: the `exp`s, the cross-entropy's rows, AdamW, `add`, MVUE 2:4, FP8) behind typed-array
 * functions: each thread instantiates the module once, on first use, with a memory of its own;
 * arguments are copied in and results out in cache-sized pieces. `null` where the runtime lacks
 * WebAssembly SIMD (callers keep their scalar loops). Private to `core/cpu/`.
 *
 * @module
 */

import { EXP_WASM_BASE64 } from "./_exp_wasm_bytes.ts";
import type { AdamWScalars } from "./_kernels.ts";

/** Values per piece (float64 for `expInPlace` and the scratch: 32 KiB, stays in L1/L2). */
export const EXP_PIECE = 4096;
const PAGE = 65536;

interface Exports {
  mem: WebAssembly.Memory;
  max_f32(p: number, n: number): number;
  exp_shift_f32(src: number, dst: number, n: number, m: number): number;
  scale_f32(src: number, dst: number, n: number, f: number): void;
  adamw_f32(p: number, g: number, m: number, v: number, n: number, ...scalars: number[]): void;
  add_f32(a: number, b: number, n: number): void;
  causal_softmax(src: number, dst: number, T: number, r0: number, rows: number, s: number): number;
  exp_f64(p: number, n: number): void;
  mvue24(src: number, dst: number, groups: number, g0: number, ...key: number[]): number;
  abs_max_f32(p: number, n: number): number;
  quantize_fp8(src: number, dst: number, n: number, scale: number, ...format: number[]): void;
}

let threadKernels: WasmExp | null | undefined;
/** This thread's kernels (instantiated on first use); null without WebAssembly SIMD. */
export function simdKernels(): WasmExp | null {
  if (threadKernels === undefined) threadKernels = WasmExp.create();
  return threadKernels;
}

/** The arrays of one AdamW step: parameter, gradient, moments. */
export interface AdamWArrays {
  pd: Float32Array;
  gd: Float32Array;
  md: Float32Array;
  vd: Float32Array;
}

/** Where {@linkcode WasmExp.crossEntropyRows} writes: per element, then per row. */
export interface CrossEntropyRows {
  grads: Float32Array;
  sums: Float64Array;
  maxes: Float64Array;
}

/** The SIMD kernels over typed arrays (one module instance per thread). */
export class WasmExp {
  #x: Exports;
  #f32: Float32Array;
  #f64: Float64Array;

  private constructor(x: Exports) {
    this.#x = x;
    this.#f32 = new Float32Array(x.mem.buffer);
    this.#f64 = new Float64Array(x.mem.buffer);
  }

  /** Instantiates the module; `null` where WebAssembly SIMD is unavailable. */
  static create(): WasmExp | null {
    try {
      const bytes = Uint8Array.from(atob(EXP_WASM_BASE64), (ch) => ch.charCodeAt(0));
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
      return new WasmExp(instance.exports as unknown as Exports);
    } catch {
      return null;
    }
  }

  /** Grows the memory to at least `bytes` (views renewed). */
  #reserve(bytes: number): void {
    const mem = this.#x.mem;
    if (mem.buffer.byteLength >= bytes) return;
    mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / PAGE));
    this.#f32 = new Float32Array(mem.buffer);
    this.#f64 = new Float64Array(mem.buffer);
  }

  /**
   * Rows `[r0, r1)` of `z[n, c]` (targets `t`): `max` (NaN ignored), `Σ exp(z − max)` (float32
   * exponentials, float64 sum) and the cross-entropy gradient `factor·(exp(z − max)/Σ − onehot(t))`
   * (float64 products, rounded once to float32).
   */
  crossEntropyRows(
    z: Float32Array,
    t: Int32Array,
    into: CrossEntropyRows,
    factor: number,
    rows: { c: number; r0: number; r1: number },
  ): void {
    const { grads, sums, maxes } = into, { c, r0, r1 } = rows;
    // Inputs, exponentials, gradients (float32), in whole iterations of the kernels (16 values).
    const padded = Math.ceil(c / 16) * 16, exps = padded * 4, out = 2 * padded * 4;
    this.#reserve(3 * padded * 4);
    const x = this.#x, f32 = this.#f32;
    // −Infinity padding: ignored by the max, exp(−Infinity − max) = 0 adds nothing to the sum.
    f32.fill(-Infinity, c, padded);
    for (let r = r0; r < r1; r++) {
      f32.set(z.subarray(r * c, (r + 1) * c));
      const max = x.max_f32(0, padded), sum = x.exp_shift_f32(0, exps, padded, max);
      x.scale_f32(exps, out, padded, factor / sum);
      grads.set(f32.subarray(out / 4, out / 4 + c), r * c);
      grads[r * c + t[r]] = factor * (f32[exps / 4 + t[r]] / sum - 1);
      sums[r] = sum;
      maxes[r] = max;
    }
  }

  /**
   * Elements `[i0, i1)` of one AdamW step in place (`_kernels.ts`'s `adamwRange`: the same float64
   * operations, two lanes), copied through the module's memory in pieces.
   */
  adamw(arrays: AdamWArrays, h: AdamWScalars, i0: number, i1: number): void {
    const { pd, gd, md, vd } = arrays, piece = EXP_PIECE, bytes = 4 * piece;
    this.#reserve(4 * bytes);
    const x = this.#x, f32 = this.#f32;
    const scalars = [h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.c1, h.c2, h.s];
    for (let s = i0; s < i1; s += piece) {
      const n = Math.min(piece, i1 - s), padded = Math.ceil(n / 4) * 4;
      [pd, gd, md, vd].forEach((a, k) => {
        f32.set(a.subarray(s, s + n), k * piece);
        f32.fill(0, k * piece + n, k * piece + padded); // padding lanes (results unused)
      });
      x.adamw_f32(0, bytes, 2 * bytes, 3 * bytes, padded, ...scalars, h.frozen ? 1 : 0);
      pd.set(f32.subarray(0, n), s);
      md.set(f32.subarray(2 * piece, 2 * piece + n), s);
      if (!h.frozen) vd.set(f32.subarray(3 * piece, 3 * piece + n), s);
    }
  }

  /** `out[i] = a[i] + b[i]` for `i` in `[i0, i1)` (float32 sums), through the module's memory. */
  add(a: Float32Array, b: Float32Array, out: Float32Array, i0: number, i1: number): void {
    const piece = EXP_PIECE, bytes = 4 * piece;
    this.#reserve(2 * bytes);
    const x = this.#x, f32 = this.#f32;
    for (let s = i0; s < i1; s += piece) {
      const n = Math.min(piece, i1 - s);
      f32.set(a.subarray(s, s + n));
      f32.set(b.subarray(s, s + n), piece);
      x.add_f32(0, bytes, Math.ceil(n / 16) * 16); // padding lanes: results unused
      out.set(f32.subarray(0, n), s);
    }
  }

  /**
   * Rows `[q0, q1)` (row `q` is row `q mod T` of batch `⌊q/T⌋`) of the causal softmax of
   * `scale·d[B, T, T]` into `out`; returns −1, or the first row whose largest scaled score is not
   * finite (the rows before it written).
   */
  causalSoftmax(
    d: Float32Array,
    out: Float32Array,
    T: number,
    scale: number,
    q0: number,
    q1: number,
  ): number {
    const chunk = Math.max(1, Math.floor((2 * EXP_PIECE) / T)); // rows per call
    // Scores, probabilities, then a row of float64 exponentials (a pair past the end at odd T).
    this.#reserve(8 * chunk * T + 8 * (T + 4));
    const x = this.#x, f32 = this.#f32;
    for (let q = q0; q < q1;) {
      const r = q % T, rows = Math.min(q1 - q, T - r, chunk), size = rows * T;
      f32.set(d.subarray(q * T, q * T + size));
      const bad = x.causal_softmax(0, 4 * size, T, r, rows, scale);
      out.set(f32.subarray(size, size + (bad < 0 ? size : bad * T)), q * T);
      if (bad >= 0) return q + bad;
      q += rows;
    }
    return -1;
  }

  /**
   * `values[i] = exp(values[i])` for `i` in `[i0, i1)`, every value ≤ 0 (or −Infinity, NaN): the
   * float64 `exp` of `causal_softmax` on its own (for its test).
   */
  expInPlace(values: Float64Array, i0: number, i1: number): void {
    this.#reserve((EXP_PIECE + 4) * 8);
    const x = this.#x, f64 = this.#f64;
    for (let s = i0; s < i1; s += EXP_PIECE) {
      const n = Math.min(EXP_PIECE, i1 - s);
      f64.set(values.subarray(s, s + n));
      const padded = Math.ceil(n / 4) * 4;
      f64.fill(0, n, padded); // padding lanes (results unused)
      x.exp_f64(0, padded);
      values.set(f64.subarray(0, n), s);
    }
  }

  /**
   * MVUE 2:4 of groups `[g0, g1)` of `x` (four values each) into `out`, group `g` drawing Philox at
   * counter `(g, stream, 0, 0)` under key `(k0, k1)` (`_sparse_wasm_source.ts`); returns −1, or the
   * first group whose magnitude sum exceeds 2^126 (the groups before it written).
   */
  mvue24(
    x: Float32Array,
    out: Float32Array,
    key: { stream: number; k0: number; k1: number },
    g0: number,
    g1: number,
  ): number {
    const groups = EXP_PIECE / 4, bytes = 4 * EXP_PIECE;
    this.#reserve(2 * bytes);
    const w = this.#x, f32 = this.#f32;
    for (let g = g0; g < g1; g += groups) {
      const n = Math.min(groups, g1 - g), padded = Math.ceil(n / 4) * 4;
      f32.set(x.subarray(4 * g, 4 * (g + n)));
      f32.fill(0, 4 * n, 4 * padded); // padding groups of zeros (valid input; results unused)
      const bad = w.mvue24(0, bytes, padded, g, key.stream, key.k0, key.k1);
      if (bad >= 0) return g + bad;
      out.set(f32.subarray(EXP_PIECE, EXP_PIECE + 4 * n), 4 * g);
    }
    return -1;
  }

  /** The largest `|x[i]|` (NaN if one is NaN), through the module's memory in pieces. */
  absMax(x: Float32Array): number {
    this.#reserve(4 * EXP_PIECE);
    const w = this.#x, f32 = this.#f32;
    let amax = 0;
    for (let s = 0; s < x.length; s += EXP_PIECE) {
      const n = Math.min(EXP_PIECE, x.length - s), padded = Math.ceil(n / 16) * 16;
      f32.set(x.subarray(s, s + n));
      f32.fill(0, n, padded); // padding lanes: 0 changes no maximum
      amax = Math.max(amax, w.abs_max_f32(0, padded));
    }
    return amax;
  }

  /**
   * FP8 quantise–dequantise of `x` into `out` under `scale` (`_sparse.ts`'s `quantizeFp8Into`:
   * `max` the format's largest value, `m` its mantissa bits, `minExponent` its smallest binade).
   */
  quantizeFp8(
    x: Float32Array,
    out: Float32Array,
    scale: number,
    format: { max: number; m: number; minExponent: number },
  ): void {
    const bytes = 4 * EXP_PIECE;
    this.#reserve(2 * bytes);
    const w = this.#x, f32 = this.#f32;
    for (let s = 0; s < x.length; s += EXP_PIECE) {
      const n = Math.min(EXP_PIECE, x.length - s), padded = Math.ceil(n / 4) * 4;
      f32.set(x.subarray(s, s + n));
      f32.fill(0, n, padded); // padding lanes (results unused)
      w.quantize_fp8(0, bytes, padded, scale, format.max, format.m, format.minExponent);
      out.set(f32.subarray(EXP_PIECE, EXP_PIECE + n), s);
    }
  }
}
