/**
 * Mean cross-entropy of `logits[N, C]` against integer targets, and its gradient.
 *
 * Forward: one workgroup per row computes a max-subtracted log-sum-exp
 * (`lse = max + log Σ exp(z − max)`, both reductions tree-shaped in a fixed order) and writes the
 * row loss `lse − z[target]`; a second pass (one workgroup, `reduce.ts`) sums the row losses in a
 * fixed order and multiplies by `1/N`. Backward: `dLoss/N · (softmax(z) − onehot(target))`, with
 * `dLoss` read on the device, so a training step needs no host round trip; from the forward's saved
 * row log-sum-exps when the backend has them (one read of the logits instead of three).
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid1d } from "../runtime.ts";
import { grid, packParams } from "./_params.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import { cachedSpec } from "./_sparse.ts";
import {
  columnLoopWgsl,
  rowGrid,
  rowKernelWgsl,
  SERIAL_ROWS_PER_WORKGROUP,
} from "./_serial_reduce.ts";
import { expSumSerialWgsl, expSumWgsl } from "./_exp_sum.ts";
import { dispatchWithFlatTextures, flatTexelWgsl, MAX_FLAT_TEXELS } from "./_flat_texture.ts";
import { encodeSumFinal } from "./reduce.ts";

/** Threads per workgroup (one workgroup per row). */
export const CE_THREADS = 128;

/** Logit `c` of the row at offset `o` (WGSL). */
const logit = (c: string) => `z[o + ${c}]`;

function lseWgsl(): string {
  return `${expSumWgsl(CE_THREADS, "p.C", logit)}
  let lse = m + log(red[0]);`;
}

/** The row's log-sum-exp `lse` in one invocation, in {@linkcode lseWgsl}'s order. */
function lseSerialWgsl(): string {
  return `${expSumSerialWgsl(CE_THREADS, "p.C", logit)}
  let lse = m + log(total);`;
}

/**
 * The loss and gradient kernels around their common start: the bindings `z`, `targets`, then
 * `outputs`, uniform `{ rows, C }`; the row (per workgroup, or per invocation when `serial`), its
 * offset `o` and its `lse`; then `tail`.
 */
function crossEntropyWgsl(serial: boolean, outputs: readonly string[], tail: string): string {
  const bindings = wgslBindings("rows: u32, C: u32", [
    "read z: array<f32>",
    "read targets: array<i32>",
    ...outputs,
  ]);
  const lse = serial ? lseSerialWgsl() : lseWgsl();
  return rowKernelWgsl({
    bindings,
    serial,
    threads: CE_THREADS,
    width: "p.C",
    body: `${lse}\n${tail}`,
  });
}

/**
 * The per-row loss kernel, which also saves each row's log-sum-exp for the backward pass.
 * Bindings: `z`, `targets`, `losses`, `lses`, uniform `{ rows, C }`.
 *
 * @param serial The software-adapter variant: one invocation per row, the same reductions in the
 * same order (bit-identical results, no barriers; grid `⌈rows/64⌉`, see `_serial_reduce.ts`).
 * @returns The kernel, key `cross-entropy-rows` (`-serial`).
 */
export function crossEntropyRowsSpec(serial = false): KernelSpec {
  const lane0 = serial ? "true" : "lid == 0u"; // the workgroup form stores from one lane
  const store = `  if (${lane0}) {
    losses[row] = lse - z[o + u32(targets[row])];
    lses[row] = lse;
  }\n`;
  const key = `cross-entropy-rows${serial ? "-serial" : ""}`;
  const outputs = ["read_write losses: array<f32>", "read_write lses: array<f32>"];
  return cachedSpec(key, () => crossEntropyWgsl(serial, outputs, store));
}

/**
 * The gradient kernel. Bindings: `z`, `targets`, `dLoss`, `out`, uniform `{ rows, C }`.
 *
 * @param serial The software-adapter variant (as in {@linkcode crossEntropyRowsSpec}).
 * @returns The kernel, key `cross-entropy-backward` (`-serial`).
 */
export function crossEntropyBackwardSpec(serial = false): KernelSpec {
  const gradient = `  let factor = dLoss[0] / f32(p.rows);
  let t = u32(targets[row]);
  ${columnLoopWgsl(serial, CE_THREADS, "p.C")} {
    out[o + c] = factor * (exp(z[o + c] - lse) - select(0.0, 1.0, c == t));
  }
`;
  const outputs = ["read dLoss: array<f32>", "read_write out: array<f32>"];
  const key = `cross-entropy-backward${serial ? "-serial" : ""}`;
  return cachedSpec(key, () => crossEntropyWgsl(serial, outputs, gradient));
}

/**
 * The gradient from the forward pass's saved log-sum-exp: one thread per logit, the row kernels'
 * expression `dLoss/N · (exp(z − lse) − onehot)` (bit-identical results, one read of the logits
 * instead of three). Bindings: `z`, `targets`, `lses`, `dLoss`, `out`, uniform `{ count, C, rows }`.
 *
 * @returns The kernel, key `cross-entropy-backward-saved`.
 */
export function crossEntropyBackwardSavedSpec(): KernelSpec {
  return cachedSpec(
    "cross-entropy-backward-saved",
    () =>
      `${
        wgslBindings("count: u32, C: u32, rows: u32", [
          "read z: array<f32>",
          "read targets: array<i32>",
          "read lses: array<f32>",
          "read dLoss: array<f32>",
          "read_write out: array<f32>",
        ])
      }

${wgslItemMain("i", "p.count")}
  let row = i / p.C;
  let c = i % p.C;
  let factor = dLoss[0] / f32(p.rows);
  out[i] = factor * (exp(z[i] - lses[row]) - select(0.0, 1.0, c == u32(targets[row])));
}
`,
  );
}

/**
 * The row's `lse` in one invocation reading the logits as texels (`C % 4 = 0`): leaf `l` of
 * {@linkcode lseWgsl}'s tree folds `c = l, l + 128, …`, i.e. component `l % 4` of texels
 * `⌊l/4⌋, ⌊l/4⌋ + 32, …`, so four leaves fold together as one `vec4`, in the same order.
 */
function lseTextureWgsl(): string {
  const quads = CE_THREADS / 4;
  const leaves = (name: string, init: string, fold: string) =>
    `  var ${name}Red: array<f32, ${CE_THREADS}>;
  for (var lq = 0u; lq < ${quads}u; lq++) {
    var acc = vec4<f32>(${init});
    for (var q = lq; q < c4; q += ${quads}u) { acc = ${fold}; }
    ${name}Red[4u * lq] = acc.x;
    ${name}Red[4u * lq + 1u] = acc.y;
    ${name}Red[4u * lq + 2u] = acc.z;
    ${name}Red[4u * lq + 3u] = acc.w;
  }`;
  const tree = (name: string, combine: (a: string, b: string) => string) =>
    `  for (var s = ${CE_THREADS / 2}u; s > 0u; s = s >> 1u) {
    for (var i = 0u; i < s; i++) {
      ${name}Red[i] = ${combine(`${name}Red[i]`, `${name}Red[i + s]`)};
    }
  }`;
  return `  let c4 = p.C / 4u;
  let o4 = row * c4;
${leaves("m", "-3.4028234663852886e38", "max(acc, texZ(o4 + q))")}
${tree("m", (a, b) => `max(${a}, ${b})`)}
  let m = mRed[0];
${leaves("total", "0.0", "acc + exp(texZ(o4 + q) - vec4<f32>(m))")}
${tree("total", (a, b) => `${a} + ${b}`)}
  let lse = m + log(totalRed[0]);`;
}

/**
 * The software-adapter kernels that read the logits through a flat texture (`_flat_texture.ts`;
 * needs `C % 4 = 0`): one invocation per row, {@linkcode crossEntropyRowsSpec}'s and
 * {@linkcode crossEntropyBackwardSpec}'s reductions in the same order (bit-identical results).
 * Bindings: texture `zT`, then `targets`, `losses`, `lses` (forward) or `targets`, `dLoss`, `out` as
 * `vec4`s (backward), then uniform `{ rows, C }`. Grid: `⌈rows/64⌉` workgroups.
 *
 * @param backward The gradient kernel instead of the per-row loss.
 * @returns The kernel, key `cross-entropy-{rows|backward}-texture`.
 */
export function crossEntropyTextureSpec(backward: boolean): KernelSpec {
  const key = `cross-entropy-${backward ? "backward" : "rows"}-texture`;
  return cachedSpec(key, () => {
    const bindings = backward
      ? `@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> dLoss: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;`
      : `@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
@group(0) @binding(3) var<storage, read_write> lses: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;`;
    const tail = backward
      ? `  let factor = dLoss[0] / f32(p.rows);
  let t = u32(targets[row]);
  for (var q = 0u; q < c4; q++) {
    let hot = select(vec4<f32>(0.0), vec4<f32>(1.0), 4u * q + vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(t));
    out[o4 + q] = factor * (exp(texZ(o4 + q) - vec4<f32>(lse)) - hot);
  }`
      : `  let t = u32(targets[row]);
  losses[row] = lse - texZ(o4 + t / 4u)[t % 4u];
  lses[row] = lse;`;
    return `struct Params { rows: u32, C: u32 }
@group(0) @binding(0) var zT: texture_2d<f32>;
${bindings}
${flatTexelWgsl("texZ", "zT")}

${wgslItemMain("row", "p.rows", SERIAL_ROWS_PER_WORKGROUP)}
${lseTextureWgsl()}
${tail}
}
`;
  });
}

/** Whether the texture kernels apply: a software adapter, whole texels, within capacity. */
function useTexture(rt: GpuRuntime, rows: number, C: number): boolean {
  return rt.isFallbackAdapter && C % 4 === 0 && (rows * C) / 4 <= MAX_FLAT_TEXELS;
}

/**
 * Records the mean cross-entropy of `rows × C` logits (targets already checked on the host).
 *
 * @param rt The runtime.
 * @param z The logits `[rows, C]`.
 * @param targets The `i32` targets `[rows]`, each in `[0, C)`.
 * @param rows Number of rows (at least 1).
 * @param C Number of classes.
 * @returns New pooled buffers: the one float32 loss, and each row's log-sum-exp (`[rows]`, for
 * {@linkcode encodeCrossEntropyBackward}).
 */
export function encodeCrossEntropy(
  rt: GpuRuntime,
  z: GPUBuffer,
  targets: GPUBuffer,
  rows: number,
  C: number,
): { loss: GPUBuffer; lse: GPUBuffer } {
  const losses = rt.alloc(4 * rows), lse = rt.alloc(4 * rows);
  dispatchRows(rt, false, z, [targets, losses, lse], rows, C);
  const loss = encodeSumFinal(rt, losses, rows, 1 / rows);
  rt.free(losses);
  return { loss, lse };
}

/**
 * Records the cross-entropy gradient `dLoss/N · (softmax(z) − onehot)`.
 *
 * @param rt The runtime.
 * @param z The logits `[rows, C]`.
 * @param targets The `i32` targets `[rows]`.
 * @param dLoss The upstream gradient of the mean loss, a one-value buffer.
 * @param dims `rows` (at least 1), `C` classes, and `lse`: the rows' log-sum-exp saved by
 * {@linkcode encodeCrossEntropy} for these logits (one pass over the logits), or omitted (the row
 * kernels recompute it).
 * @returns A new pooled buffer `[rows, C]`.
 */
export function encodeCrossEntropyBackward(
  rt: GpuRuntime,
  z: GPUBuffer,
  targets: GPUBuffer,
  dLoss: GPUBuffer,
  dims: { rows: number; C: number; lse?: GPUBuffer },
): GPUBuffer {
  const { rows, C, lse } = dims;
  const out = rt.alloc(4 * rows * C);
  if (lse !== undefined) {
    const count = rows * C, params = packParams([count, C, rows]);
    const buffers = [z, targets, lse, dLoss, out];
    if (count > 0) rt.dispatch(crossEntropyBackwardSavedSpec(), buffers, grid(count), params);
    return out;
  }
  dispatchRows(rt, true, z, [targets, dLoss, out], rows, C);
  return out;
}

/**
 * The row kernels of the loss (`backward` false) or of its recomputing gradient over `z [rows, C]`
 * with `buffers` bound after it: the flat-texture form where `useTexture` picks it, else the storage
 * form (serial rows on software adapters).
 */
function dispatchRows(
  rt: GpuRuntime,
  backward: boolean,
  z: GPUBuffer,
  buffers: GPUBuffer[],
  rows: number,
  C: number,
): void {
  const params = packParams([rows, C]);
  if (useTexture(rt, rows, C)) {
    dispatchWithFlatTextures(rt, {
      spec: crossEntropyTextureSpec(backward),
      textures: [{ buffer: z, texels: (rows * C) / 4 }],
      buffers,
      params,
      workgroups: grid1d(Math.ceil(rows / SERIAL_ROWS_PER_WORKGROUP)),
    });
    return;
  }
  const serial = rt.isFallbackAdapter;
  const spec = backward ? crossEntropyBackwardSpec(serial) : crossEntropyRowsSpec(serial);
  rt.dispatch(spec, [z, ...buffers], rowGrid(serial, rows), params);
}
