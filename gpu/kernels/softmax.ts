/**
 * Softmax kernels of attention: the causal row softmax of scaled scores `[B, T, T]` and the
 * softmax backward pass along the last axis. One workgroup per row; the row maximum, the sum of
 * exponentials and the backward dot product are tree-reduced in workgroup memory in a fixed order.
 * On a software adapter (`isFallbackAdapter`) the serial variants run instead: one invocation per
 * row, the same tree, bit-identical results, no barriers.
 *
 * Unlike the reference, the kernel cannot throw when a row's largest visible score is not finite
 * (the data never reaches the host); such a row yields NaN.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { wgslBindings } from "./_wgsl.ts";
import { cachedSpec, workgroupReduceWgsl } from "./_sparse.ts";
import { columnLoopWgsl, rowGrid, rowKernelWgsl, serialTreeReduceWgsl } from "./_serial_reduce.ts";
import { expSumSerialWgsl, expSumWgsl } from "./_exp_sum.ts";
import { dispatchNew } from "./_dispatch.ts";

/** Threads per workgroup (one workgroup per row). */
export const SOFTMAX_THREADS = 64;

// The interfaces, each shared by the workgroup-per-row kernel and its serial twin.
const CAUSAL_BINDINGS = wgslBindings("rows: u32, T: u32, scale: f32", [
  "read s: array<f32>",
  "read_write out: array<f32>",
]);
const BACKWARD_BINDINGS = wgslBindings("rows: u32, width: u32, causal: u32, scale: f32", [
  "read prob: array<f32>",
  "read dp: array<f32>",
  "read_write out: array<f32>",
]);

/** Score `c` of the row at offset `o`, scaled (WGSL). */
const scaledScore = (c: string) => `p.scale * s[o + ${c}]`;

/** The causal softmax, workgroup-per-row or serial (the two share everything but the sums). */
function causalSoftmaxWgsl(serial: boolean): string {
  const sums = serial
    ? `${expSumSerialWgsl(SOFTMAX_THREADS, "visible", scaledScore)}\n  let inv = 1.0 / total;`
    : `${expSumWgsl(SOFTMAX_THREADS, "visible", scaledScore)}\n  let inv = 1.0 / red[0];`;
  return rowKernelWgsl({
    bindings: CAUSAL_BINDINGS,
    serial,
    threads: SOFTMAX_THREADS,
    width: "p.T",
    body: `  let visible = row % p.T + 1u;
${sums}
  ${columnLoopWgsl(serial, SOFTMAX_THREADS, "p.T")} {
    var v = 0.0;
    if (c < visible) { v = exp(p.scale * s[o + c] - m) * inv; }
    out[o + c] = v;
  }
`,
  });
}

/**
 * The softmax backward pass, workgroup-per-row or serial (sharing all but the dot product). With
 * `p.causal` set, row `r` of each `[T, T]` slice reads only its visible columns `c ≤ r % T` and
 * writes 0 past them (where the causal softmax's probability is 0).
 */
function softmaxBackwardWgsl(serial: boolean): string {
  const value = (c: string) => `prob[o + ${c}] * dp[o + ${c}]`;
  const count = "visible", threads = SOFTMAX_THREADS;
  const dot = serial
    ? serialTreeReduceWgsl({ name: "dot", threads, op: "sum", count, value })
    : `  var acc = 0.0;
  for (var c = lid; c < ${count}; c += ${threads}u) { acc += ${value("c")}; }
  red[lid] = acc;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, threads)}
  let dot = red[0];`;
  return rowKernelWgsl({
    bindings: BACKWARD_BINDINGS,
    serial,
    threads,
    width: "p.width",
    body: `  var visible = p.width;
  if (p.causal != 0u) { visible = row % p.width + 1u; }
${dot}
  ${columnLoopWgsl(serial, threads, "p.width")} {
    var v = 0.0;
    if (c < visible) { v = p.scale * (prob[o + c] * (dp[o + c] - dot)); }
    out[o + c] = v;
  }
`,
  });
}

/**
 * The causal softmax kernel: row `r` of each `[T, T]` slice normalises `scale·s[r, 0..r]`
 * (max-subtracted) and writes 0 to columns `> r`. Bindings: `s`, `out`, uniform
 * `{ rows, T, scale }` (`rows = B·T`).
 *
 * @param serial The software-adapter variant: one invocation per row, the same reductions in the
 * same order (bit-identical results, no barriers; grid `⌈rows/64⌉`, see `_serial_reduce.ts`).
 * @returns The kernel, key `softmax-causal` (`-serial`).
 */
export function causalSoftmaxSpec(serial = false): KernelSpec {
  return cachedSpec(`softmax-causal${serial ? "-serial" : ""}`, () => causalSoftmaxWgsl(serial));
}

/**
 * Records the causal softmax of `scale·s` over `batch` slices `[T, T]`.
 *
 * @param rt The runtime.
 * @param s The scores `[batch, T, T]`.
 * @param batch Number of slices.
 * @param T Sequence length.
 * @param scale Factor applied to the scores (as float32).
 * @returns A new pooled buffer `[batch, T, T]`.
 */
export function encodeCausalSoftmax(
  rt: GpuRuntime,
  s: GPUBuffer,
  batch: number,
  T: number,
  scale: number,
): GPUBuffer {
  const rows = batch * T;
  const serial = rt.isFallbackAdapter, params = packParams([rows, T], [scale]);
  const spec = causalSoftmaxSpec(serial);
  return dispatchNew(rt, spec, [s], [4 * rows * T], rows, params, rowGrid(serial, rows))[0];
}

/**
 * The softmax backward kernel: `out = scale·(p ⊙ (dp − Σ p⊙dp))` per row of width `width`; with
 * `causal`, rows are those of `[T, T]` slices (`T = width`) and only columns `c ≤ row % T` are read
 * (the rest of the row is written 0). Bindings: `prob`, `dp`, `out`, uniform
 * `{ rows, width, causal, scale }`.
 *
 * @param serial The software-adapter variant (as in {@linkcode causalSoftmaxSpec}).
 * @returns The kernel, key `softmax-backward` (`-serial`).
 */
export function softmaxBackwardSpec(serial = false): KernelSpec {
  const key = `softmax-backward${serial ? "-serial" : ""}`;
  return cachedSpec(key, () => softmaxBackwardWgsl(serial));
}

/**
 * Records the softmax backward pass over `rows` rows of `width` values.
 *
 * @param rt The runtime.
 * @param prob The softmax output.
 * @param dp The upstream gradient.
 * @param dims `{ rows, width }`.
 * @param options `scale` (default 1) multiplies the result (as float32, one rounding after the
 * product); `causal` reads only each `[T, T]` slice's lower triangle (`width = T`).
 * @returns A new pooled buffer `[rows, width]`.
 */
export function encodeSoftmaxBackward(
  rt: GpuRuntime,
  prob: GPUBuffer,
  dp: GPUBuffer,
  dims: { rows: number; width: number },
  options: { scale?: number; causal?: boolean } = {},
): GPUBuffer {
  const { rows, width } = dims;
  const serial = rt.isFallbackAdapter, count = rows * width;
  const params = packParams([rows, width, options.causal ? 1 : 0], [options.scale ?? 1]);
  const spec = softmaxBackwardSpec(serial);
  return dispatchNew(rt, spec, [prob, dp], [4 * count], count, params, rowGrid(serial, rows))[0];
}
