/**
 * LayerNorm over the last axis of `x[N, d]`, forward and backward, deterministic.
 *
 * Forward: one workgroup per row; the mean and then the biased variance of the centred values
 * (two passes over the row, as the reference does) are tree-reduced in workgroup memory in a fixed
 * order; `rstd = 1/√(var + eps)`; `y = (x − mean)·rstd·w + b`.
 *
 * Backward: `x̂ = (x − mean)·rstd`, `g = dy ⊙ w`,
 * `dx = rstd·(g − mean(g) − x̂·mean(g ⊙ x̂))` (one workgroup per row, both means tree-reduced
 * together); `dw = Σ_rows dy ⊙ x̂` and `db = Σ_rows dy` by the two-pass column sums of
 * `reduce.ts` (per-chunk partials in row order, then the chunks in order): no float atomics.
 *
 * On a software adapter (`isFallbackAdapter`) the row kernels run as serial variants: one
 * invocation per row, the same trees, bit-identical results, no barriers (`_serial_reduce.ts`).
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { packParams } from "./_params.ts";
import { wgslBindings } from "./_wgsl.ts";
import { cachedSpec, workgroupReduceWgsl } from "./_sparse.ts";
import { columnLoopWgsl, rowGrid, rowKernelWgsl, serialTreeReduceWgsl } from "./_serial_reduce.ts";
import { dispatchNew } from "./_dispatch.ts";
import {
  assertColumnGrid,
  COLUMN_THREADS,
  columnChunkMainWgsl,
  columnChunks,
  encodeColumnFinalHalves,
} from "./reduce.ts";

/** Threads per workgroup (one workgroup per row). */
export const LN_THREADS = 128;

/** The loop over the columns `c` of a row that this invocation handles (all of them when serial). */
function columnLoop(serial: boolean): string {
  return columnLoopWgsl(serial, LN_THREADS, "p.d");
}

/** The forward kernel's bindings; with `add`, the branch `r` after `x` and the sum `s` after `b`. */
const forwardBindings = (add: boolean) =>
  wgslBindings("rows: u32, d: u32, eps: f32", [
    "read x: array<f32>",
    ...(add ? ["read r: array<f32>"] : []),
    "read w: array<f32>",
    "read b: array<f32>",
    ...(add ? ["read_write s: array<f32>"] : []),
    "read_write y: array<f32>",
    "read_write mean: array<f32>",
    "read_write rstd: array<f32>",
  ]);

/** The normalised input's column `c` (WGSL): `x`, or with `add` the float32 sum `x + r`. */
const inputAt = (add: boolean) => (c: string) =>
  add ? `(x[o + ${c}] + r[o + ${c}])` : `x[o + ${c}]`;

/** `mu` and `rs` of the row: workgroup tree reductions, or their serial replay. */
function forwardStatsWgsl(serial: boolean, add: boolean): string {
  const at = inputAt(add);
  if (!serial) {
    const reduce = workgroupReduceWgsl({ type: "f32", op: "sum", components: 1 }, LN_THREADS);
    return `  var acc = 0.0;
  ${columnLoop(false)} { acc += ${at("c")}; }
  red[lid] = acc;
${reduce}
  let mu = red[0] / f32(p.d);
  workgroupBarrier();
  var sq = 0.0;
  ${columnLoop(false)} {
    let t = ${at("c")} - mu;
    sq += t * t;
  }
  red[lid] = sq;
${reduce}
  let rs = 1.0 / sqrt(red[0] / f32(p.d) + p.eps);
`;
  }
  const sum = (name: string, value: (c: string) => string) =>
    serialTreeReduceWgsl({ name, threads: LN_THREADS, op: "sum", count: "p.d", value });
  return `${sum("total", at)}
  let mu = total / f32(p.d);
${sum("sq", (c) => `(${at(c)} - mu) * (${at(c)} - mu)`)}
  let rs = 1.0 / sqrt(sq / f32(p.d) + p.eps);
`;
}

/**
 * The forward kernel, workgroup-per-row or serial (the two share everything but the reductions);
 * with `add`, of `x + r`, which it also stores (the residual stream).
 */
function forwardWgsl(serial: boolean, add: boolean): string {
  const store = (indent: string) => `${indent}mean[row] = mu;\n${indent}rstd[row] = rs;`;
  const value = add
    ? `let v = ${inputAt(true)("c")};
    s[o + c] = v;
    y[o + c] = (v - mu) * rs * w[c] + b[c];`
    : "y[o + c] = (x[o + c] - mu) * rs * w[c] + b[c];";
  return rowKernelWgsl({
    bindings: forwardBindings(add),
    serial,
    threads: LN_THREADS,
    width: "p.d",
    body: `${forwardStatsWgsl(serial, add)}  ${columnLoop(serial)} {
    ${value}
  }
${serial ? store("  ") : `  if (lid == 0u) {\n${store("    ")}\n  }`}
`,
  });
}

/**
 * The forward kernel. Bindings: `x`, (with `add`: `r`), `w`, `b`, (with `add`: `s`), `y`, `mean`,
 * `rstd`, uniform `{ rows, d, eps }`.
 *
 * @param serial The software-adapter variant: one invocation per row, the same reductions in the
 * same order (bit-identical results, no barriers; grid `⌈rows/64⌉`, see `_serial_reduce.ts`).
 * @param add Normalise `s = x + r` (a residual add fused in) and store `s`.
 * @returns The kernel, key `layernorm-forward` (`-add`) (`-serial`).
 */
export function layerNormForwardSpec(serial = false, add = false): KernelSpec {
  const key = `layernorm-forward${add ? "-add" : ""}${serial ? "-serial" : ""}`;
  return cachedSpec(key, () => forwardWgsl(serial, add));
}

/** Buffers of the LayerNorm forward pass. */
export interface LayerNormBuffers {
  /** Output `[rows, d]`. */
  y: GPUBuffer;
  /** Row means `[rows]`. */
  mean: GPUBuffer;
  /** Row reciprocal standard deviations `[rows]`. */
  rstd: GPUBuffer;
}

/**
 * Records LayerNorm of `x[rows, d]` with scale `w[d]`, shift `b[d]`.
 *
 * @param rt The runtime.
 * @param x The input `[rows, d]`.
 * @param w The scale `[d]`.
 * @param b The shift `[d]`.
 * @param rows Number of rows.
 * @param d Row width.
 * @param eps The variance epsilon (as float32).
 * @param r A residual branch `[rows, d]`: normalise `x + r` instead, also returned as `sum`.
 * @returns New pooled buffers `y`, `mean`, `rstd` (and `sum`) (the caller frees them).
 */
export function encodeLayerNorm(
  rt: GpuRuntime,
  x: GPUBuffer,
  w: GPUBuffer,
  b: GPUBuffer,
  rows: number,
  d: number,
  eps: number,
  r?: GPUBuffer,
): LayerNormBuffers & { sum?: GPUBuffer } {
  const serial = rt.isFallbackAdapter, params = packParams([rows, d], [eps]);
  const spec = layerNormForwardSpec(serial, r !== undefined);
  const sizes = [...(r ? [4 * rows * d] : []), 4 * rows * d, 4 * rows, 4 * rows];
  const inputs = r ? [x, r, w, b] : [x, w, b];
  const outs = dispatchNew(rt, spec, inputs, sizes, rows, params, rowGrid(serial, rows));
  const sum = r ? outs.shift() : undefined;
  const [y, mean, rstd] = outs;
  return { y, mean, rstd, ...(sum ? { sum } : {}) };
}

/** The `dx` kernel's bindings; with `add`, the addend `acc` comes before `dx`. */
const backwardBindings = (add: boolean) =>
  wgslBindings("rows: u32, d: u32", [
    "read x: array<f32>",
    "read w: array<f32>",
    "read mean: array<f32>",
    "read rstd: array<f32>",
    "read dy: array<f32>",
    ...(add ? ["read acc: array<f32>"] : []),
    "read_write dx: array<f32>",
  ]);

/** Lane `lane`'s sums `sg = Σ g` and `sgx = Σ g·x̂` over columns `lane, lane + threads, …`. */
function laneSumsWgsl(lane: string, indent: string): string {
  return `${indent}var sg = 0.0;
${indent}var sgx = 0.0;
${indent}for (var c = ${lane}; c < p.d; c += ${LN_THREADS}u) {
${indent}  let g = dy[o + c] * w[c];
${indent}  sg += g;
${indent}  sgx += g * ((x[o + c] - mu) * rs);
${indent}}
`;
}

/** `meanG` and `meanGX` of the row: one two-component workgroup tree, or its serial replay. */
function backwardMeansWgsl(serial: boolean): string {
  if (!serial) {
    return `${laneSumsWgsl("lid", "  ")}  red[2u * lid] = sg;
  red[2u * lid + 1u] = sgx;
${workgroupReduceWgsl({ type: "f32", op: "sum", components: 2 }, LN_THREADS)}
  let meanG = red[0] / f32(p.d);
  let meanGX = red[1] / f32(p.d);
`;
  }
  return `  var sgRed: array<f32, ${LN_THREADS}>;
  var sgxRed: array<f32, ${LN_THREADS}>;
  for (var l = 0u; l < ${LN_THREADS}u; l++) {
${laneSumsWgsl("l", "    ")}    sgRed[l] = sg;
    sgxRed[l] = sgx;
  }
  for (var s = ${LN_THREADS / 2}u; s > 0u; s = s >> 1u) {
    for (var i = 0u; i < s; i++) {
      sgRed[i] = sgRed[i] + sgRed[i + s];
      sgxRed[i] = sgxRed[i] + sgxRed[i + s];
    }
  }
  let meanG = sgRed[0] / f32(p.d);
  let meanGX = sgxRed[0] / f32(p.d);
`;
}

/**
 * The `dx` kernel, workgroup-per-row or serial (the two share everything but the reductions);
 * with `add`, `dx = acc + ∂x` (the value `add(acc, ∂x)` stores).
 */
function backwardWgsl(serial: boolean, add: boolean): string {
  const value = "rs * (g - meanG - xh * meanGX)";
  return rowKernelWgsl({
    bindings: backwardBindings(add),
    serial,
    threads: LN_THREADS,
    red: 2 * LN_THREADS,
    width: "p.d",
    body: `  let mu = mean[row];
  let rs = rstd[row];
${backwardMeansWgsl(serial)}  ${columnLoop(serial)} {
    let g = dy[o + c] * w[c];
    let xh = (x[o + c] - mu) * rs;
    ${
      add
        ? `let v = ${value};
    dx[o + c] = acc[o + c] + v;`
        : `dx[o + c] = ${value};`
    }
  }
`,
  });
}

/**
 * The backward kernel for `dx`. Bindings: `x`, `w`, `mean`, `rstd`, `dy`, (with `add`: `acc`),
 * `dx`, uniform `{ rows, d }`.
 *
 * @param serial The software-adapter variant (as in {@linkcode layerNormForwardSpec}).
 * @param add Whether `dx = acc + ∂x` (a gradient the input has already, summed in this pass).
 * @returns The kernel, key `layernorm-backward-dx` (`-add`) (`-serial`).
 */
export function layerNormBackwardSpec(serial = false, add = false): KernelSpec {
  const key = `layernorm-backward-dx${add ? "-add" : ""}${serial ? "-serial" : ""}`;
  return cachedSpec(key, () => backwardWgsl(serial, add));
}

/**
 * Pass 1 of the parameter gradients: per chunk of rows and column,
 * `pwb[chunk, j] = Σ dy ⊙ x̂` and `pwb[chunk, d + j] = Σ dy` in row order (the two sums side by
 * side, so one second pass finishes both). Grid `[⌈d/64⌉, chunks]`. Bindings: `x`, `mean`,
 * `rstd`, `dy`, `pwb`, uniform `{ rows, d }`.
 *
 * @returns The kernel, key `layernorm-backward-dwdb-partial`.
 */
export function layerNormParamPartialSpec(): KernelSpec {
  return cachedSpec(
    "layernorm-backward-dwdb-partial",
    () =>
      `${
        wgslBindings("rows: u32, d: u32", [
          "read x: array<f32>",
          "read mean: array<f32>",
          "read rstd: array<f32>",
          "read dy: array<f32>",
          "read_write pwb: array<f32>",
        ])
      }

${columnChunkMainWgsl("p.d")}
  var aw = 0.0;
  var ab = 0.0;
  for (var r = r0; r < r1; r++) {
    let g = dy[r * p.d + j];
    aw += g * ((x[r * p.d + j] - mean[r]) * rstd[r]);
    ab += g;
  }
  pwb[wid.y * 2u * p.d + j] = aw;
  pwb[wid.y * 2u * p.d + p.d + j] = ab;
}
`,
  );
}

/** Buffers of the LayerNorm backward pass. */
export interface LayerNormGradBuffers {
  /** Input gradient `[rows, d]`. */
  dx: GPUBuffer;
  /** Scale gradient `[d]`. */
  dw: GPUBuffer;
  /** Shift gradient `[d]`. */
  db: GPUBuffer;
}

/**
 * Records the LayerNorm backward pass.
 *
 * @param rt The runtime.
 * @param x The forward input `[rows, d]`.
 * @param w The scale `[d]`.
 * @param mean The saved row means `[rows]`.
 * @param rstd The saved reciprocal standard deviations `[rows]`.
 * @param dy The upstream gradient `[rows, d]`.
 * @param rows Number of rows.
 * @param d Row width.
 * @param acc A gradient `[rows, d]` to add to `dx` in the same pass (`dx = acc + ∂x`), if any.
 * @returns New pooled buffers `dx`, `dw`, `db` (the caller frees them).
 * @throws {RangeError} If the shape exceeds the column-sum grid.
 */
export function encodeLayerNormBackward(
  rt: GpuRuntime,
  x: GPUBuffer,
  w: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  dy: GPUBuffer,
  rows: number,
  d: number,
  acc?: GPUBuffer,
): LayerNormGradBuffers {
  assertColumnGrid(rows, d, "apply the LayerNorm backward pass");
  const serial = rt.isFallbackAdapter, params = packParams([rows, d]);
  const spec = layerNormBackwardSpec(serial, acc !== undefined);
  const inputs = [x, w, mean, rstd, dy, ...(acc ? [acc] : [])];
  const [dx] = dispatchNew(rt, spec, inputs, [4 * rows * d], rows, params, rowGrid(serial, rows));
  const chunks = columnChunks(rows);
  const pwb = rt.alloc(4 * Math.max(1, 2 * chunks * d));
  if (chunks * d > 0) {
    rt.dispatch(layerNormParamPartialSpec(), [x, mean, rstd, dy, pwb], [
      Math.ceil(d / COLUMN_THREADS),
      chunks,
    ], packParams([rows, d]));
  }
  const [dw, db] = encodeColumnFinalHalves(rt, pwb, chunks, d);
  rt.free(pwb);
  return { dx, dw, db };
}
