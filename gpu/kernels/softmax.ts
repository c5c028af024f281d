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
import { wgslBindings, wgslItemMain, wgslRowMain } from "./_wgsl.ts";
import { cachedSpec, workgroupReduceWgsl } from "./_sparse.ts";
import { rowGrid, SERIAL_ROWS_PER_WORKGROUP, serialTreeReduceWgsl } from "./_serial_reduce.ts";
import { dispatchNew } from "./_dispatch.ts";

/** Threads per workgroup (one workgroup per row). */
export const SOFTMAX_THREADS = 64;

// The interfaces, each shared by the workgroup-per-row kernel and its serial twin.
const CAUSAL_BINDINGS = wgslBindings("rows: u32, T: u32, scale: f32", [
  "read s: array<f32>",
  "read_write out: array<f32>",
]);
const BACKWARD_BINDINGS = wgslBindings("rows: u32, width: u32", [
  "read prob: array<f32>",
  "read dp: array<f32>",
  "read_write out: array<f32>",
]);

/**
 * The causal softmax kernel: row `r` of each `[T, T]` slice normalises `scale·s[r, 0..r]`
 * (max-subtracted) and writes 0 to columns `> r`. Bindings: `s`, `out`, uniform
 * `{ rows, T, scale }` (`rows = B·T`).
 *
 * @returns The kernel, key `softmax-causal`.
 */
export function causalSoftmaxSpec(): KernelSpec {
  return cachedSpec(
    "softmax-causal",
    () =>
      `${CAUSAL_BINDINGS}
var<workgroup> red: array<f32, ${SOFTMAX_THREADS}>;

${wgslRowMain(SOFTMAX_THREADS)}
  let o = row * p.T;
  let visible = row % p.T + 1u;
  var mx = -3.4028234663852886e38;
  for (var c = lid; c < visible; c += ${SOFTMAX_THREADS}u) { mx = max(mx, p.scale * s[o + c]); }
  red[lid] = mx;
${workgroupReduceWgsl({ type: "f32", op: "max", components: 1 }, SOFTMAX_THREADS)}
  let m = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var c = lid; c < visible; c += ${SOFTMAX_THREADS}u) { sum += exp(p.scale * s[o + c] - m); }
  red[lid] = sum;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, SOFTMAX_THREADS)}
  let inv = 1.0 / red[0];
  for (var c = lid; c < p.T; c += ${SOFTMAX_THREADS}u) {
    var v = 0.0;
    if (c < visible) { v = exp(p.scale * s[o + c] - m) * inv; }
    out[o + c] = v;
  }
}
`,
  );
}

/**
 * The causal softmax for software adapters: one invocation per row, the same reductions in the
 * same order as {@linkcode causalSoftmaxSpec} (bit-identical results; see `_serial_reduce.ts`).
 * Grid: `⌈rows/64⌉` workgroups. Bindings as {@linkcode causalSoftmaxSpec}.
 *
 * @returns The kernel, key `softmax-causal-serial`.
 */
export function causalSoftmaxSerialSpec(): KernelSpec {
  return cachedSpec(
    "softmax-causal-serial",
    () =>
      `${CAUSAL_BINDINGS}

${wgslItemMain("row", "p.rows", SERIAL_ROWS_PER_WORKGROUP)}
  let o = row * p.T;
  let visible = row % p.T + 1u;
${
        serialTreeReduceWgsl({
          name: "m",
          threads: SOFTMAX_THREADS,
          op: "max",
          count: "visible",
          value: (c) => `p.scale * s[o + ${c}]`,
        })
      }
${
        serialTreeReduceWgsl({
          name: "total",
          threads: SOFTMAX_THREADS,
          op: "sum",
          count: "visible",
          value: (c) => `exp(p.scale * s[o + ${c}] - m)`,
        })
      }
  let inv = 1.0 / total;
  for (var c = 0u; c < p.T; c++) {
    var v = 0.0;
    if (c < visible) { v = exp(p.scale * s[o + c] - m) * inv; }
    out[o + c] = v;
  }
}
`,
  );
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
  const spec = serial ? causalSoftmaxSerialSpec() : causalSoftmaxSpec();
  return dispatchNew(rt, spec, [s], [4 * rows * T], rows, params, rowGrid(serial, rows))[0];
}

/**
 * The softmax backward kernel: `out = p ⊙ (dp − Σ p⊙dp)` per row of width `width`. Bindings:
 * `prob`, `dp`, `out`, uniform `{ rows, width }`.
 *
 * @returns The kernel, key `softmax-backward`.
 */
export function softmaxBackwardSpec(): KernelSpec {
  return cachedSpec(
    "softmax-backward",
    () =>
      `${BACKWARD_BINDINGS}
var<workgroup> red: array<f32, ${SOFTMAX_THREADS}>;

${wgslRowMain(SOFTMAX_THREADS)}
  let o = row * p.width;
  var acc = 0.0;
  for (var c = lid; c < p.width; c += ${SOFTMAX_THREADS}u) { acc += prob[o + c] * dp[o + c]; }
  red[lid] = acc;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, SOFTMAX_THREADS)}
  let dot = red[0];
  for (var c = lid; c < p.width; c += ${SOFTMAX_THREADS}u) {
    out[o + c] = prob[o + c] * (dp[o + c] - dot);
  }
}
`,
  );
}

/**
 * The softmax backward pass for software adapters: one invocation per row, the same dot product
 * in the same order as {@linkcode softmaxBackwardSpec} (bit-identical results). Grid:
 * `⌈rows/64⌉` workgroups. Bindings as {@linkcode softmaxBackwardSpec}.
 *
 * @returns The kernel, key `softmax-backward-serial`.
 */
export function softmaxBackwardSerialSpec(): KernelSpec {
  return cachedSpec(
    "softmax-backward-serial",
    () =>
      `${BACKWARD_BINDINGS}

${wgslItemMain("row", "p.rows", SERIAL_ROWS_PER_WORKGROUP)}
  let o = row * p.width;
${
        serialTreeReduceWgsl({
          name: "dot",
          threads: SOFTMAX_THREADS,
          op: "sum",
          count: "p.width",
          value: (c) => `prob[o + ${c}] * dp[o + ${c}]`,
        })
      }
  for (var c = 0u; c < p.width; c++) {
    out[o + c] = prob[o + c] * (dp[o + c] - dot);
  }
}
`,
  );
}

/**
 * Records the softmax backward pass over `rows` rows of `width` values.
 *
 * @param rt The runtime.
 * @param prob The softmax output.
 * @param dp The upstream gradient.
 * @param rows Number of rows.
 * @param width Row width.
 * @returns A new pooled buffer `[rows, width]`.
 */
export function encodeSoftmaxBackward(
  rt: GpuRuntime,
  prob: GPUBuffer,
  dp: GPUBuffer,
  rows: number,
  width: number,
): GPUBuffer {
  const serial = rt.isFallbackAdapter, count = rows * width, params = packParams([rows, width]);
  const spec = serial ? softmaxBackwardSerialSpec() : softmaxBackwardSpec();
  return dispatchNew(rt, spec, [prob, dp], [4 * count], count, params, rowGrid(serial, rows))[0];
}
