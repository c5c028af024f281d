/**
 * Fused causal attention, backward (SPEC §8.5): two kernels, no `[T, T]` tensor and no atomics.
 *
 * - **dQ** (one thread per query row, key and value tiles of `TILE` rows in workgroup memory): first
 *   `D_i = dO_i·O_i`, written out for the second kernel, then over the visible keys
 *   `p = exp(scale·q_i·k_j − lse_i)`, `dS = p·(dO_i·v_j − D_i)`, `dq_i = scale·Σ_j dS·k_j`.
 * - **dK, dV** (one thread per key row, holding `k_j`, `v_j` and both accumulators in registers;
 *   query, `dO`, `lse` and `D` tiles of `TILE` rows in workgroup memory): over the queries `i ≥ j`,
 *   the same `p` and `dS`, `dv_j = Σ_i p·dO_i`, `dk_j = scale·Σ_i dS·q_i`.
 *
 * Every output is one thread's ordered sum, so results are deterministic. FLOPs (multiply-add = 2):
 * `2·BH·T·(T + 1)·hd·3.5` (scores twice, `dO·vᵀ` twice, `dq`, `dk`, `dv`: 7 products over the
 * visible half), against 5 products for an implementation that keeps `dS` in memory.
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import * as attention from "./attention_common.ts";

/** WGSL: the dot product of two `HD4`-long `vec4` sequences `a(c4)` and `b(c4)`, as `name`. */
function dotWgsl(name: string, a: (c4: string) => string, b: (c4: string) => string): string {
  return `var ${name}4 = vec4<f32>(0.0);
      for (var c4 = 0u; c4 < HD4; c4++) { ${name}4 = fma(${a("c4")}, ${b("c4")}, ${name}4); }
      let ${name} = (${name}4.x + ${name}4.y) + (${name}4.z + ${name}4.w);`;
}

/**
 * The dQ kernel (and `D`) for head dimension `hd` with key tiles of `bc` rows. Bindings: `q`, `k`,
 * `v`, `fwd` (the forward's output), `dout` (`[BH, T, hd]`), `lse` (`[BH, T]`), `dq` (`[BH, T, hd]`), `dsum` (`[BH, T]`,
 * the `D` it writes), uniform `{ bh, T, scale }`.
 *
 * @param hd The head dimension.
 * @param bc Key rows per tile.
 * @returns The kernel, key `attention-backward-dq-hd<hd>-tile<bc>`.
 */
export function attentionBackwardDqSpec(hd: number, bc: number): KernelSpec {
  return attention.attentionSpec("attention-backward-dq", { hd, tileRows: bc }, {
    reads: ["q", "k", "v", "fwd", "dout", "lse"],
    writes: ["dq", "dsum"],
    shared: attention.keyValueTilesWgsl(hd, bc),
    body: `  let r = base + row * HD;
  var qr: array<vec4<f32>, HD4>;
  var dor: array<vec4<f32>, HD4>;
  var acc: array<vec4<f32>, HD4>;
  var rowD = 0.0;
  var rowLse = 0.0;
  if (live) {
    var d4 = vec4<f32>(0.0);
    for (var c4 = 0u; c4 < HD4; c4++) {
      qr[c4] = read_q(r, c4);
      dor[c4] = read_dout(r, c4);
      d4 = fma(dor[c4], read_fwd(r, c4), d4);
      acc[c4] = vec4<f32>(0.0);
    }
    rowD = (d4.x + d4.y) + (d4.z + d4.w);
    rowLse = lse[b * p.T + row];
    dsum[b * p.T + row] = rowD;
  }
${attention.KEY_TILE_LOOP_WGSL}
    for (var jj = 0u; jj < TILE; jj++) {
      if (!live || kt * TILE + jj > row) { continue; }
      let t = jj * HD4;
      ${dotWgsl("s", (c) => `qr[${c}]`, (c) => `kTile[t + ${c}]`)}
      ${dotWgsl("dp", (c) => `dor[${c}]`, (c) => `vTile[t + ${c}]`)}
      let ds = exp(p.scale * s - rowLse) * (dp - rowD);
      for (var c4 = 0u; c4 < HD4; c4++) { acc[c4] = fma(vec4<f32>(ds), kTile[t + c4], acc[c4]); }
    }
  }
  if (live) {
    for (var c4 = 0u; c4 < HD4; c4++) {
      let g = acc[c4] * p.scale;
      ${attention.attentionWriteWgsl("dq", "r", "g")}
    }
  }
}
`,
  });
}

/**
 * Which key-row gradients one pass of {@linkcode attentionBackwardDkvSpec} computes: `"both"` (one
 * pass holding `k_j`, `v_j` and both accumulators: `4·hd` live floats per thread), or `"dk"` /
 * `"dv"` (two passes, `3·hd` and `2·hd` live floats, the scores computed twice).
 */
export type KeyOutputs = "both" | "dk" | "dv";

/** The buffers a dK/dV pass binds (a split pass binds only those it reads and writes). */
function dkvBindings(outputs: KeyOutputs): { reads: string[]; writes: string[] } {
  const dk = outputs !== "dv", dv = outputs !== "dk";
  return {
    reads: ["q", "k", ...(dk ? ["v"] : []), "dout", "lse", ...(dk ? ["dsum"] : [])],
    writes: [...(dk ? ["dk"] : []), ...(dv ? ["dv"] : [])],
  };
}

/**
 * The dK/dV kernel for head dimension `hd` with query tiles of `bq` rows. Bindings: `q`, `k`, `v`,
 * `dout` (`[BH, T, hd]`), `lse`, `dsum` (`[BH, T]`), `dk`, `dv` (`[BH, T, hd]`), uniform
 * `{ bh, T, scale }`; a `"dv"` pass leaves out `v`, `dsum` and `dk`, a `"dk"` pass `dv`. One
 * thread per key row.
 *
 * @param hd The head dimension.
 * @param bq Query rows per tile.
 * @param outputs The gradients computed (default both).
 * @returns The kernel, key `attention-backward-<dkv|dk|dv>-hd<hd>-tile<bq>`.
 */
export function attentionBackwardDkvSpec(
  hd: number,
  bq: number,
  outputs: KeyOutputs = "both",
): KernelSpec {
  const tile = bq * Math.ceil(hd / 4);
  const dk = outputs !== "dv", dv = outputs !== "dk";
  const when = (cond: boolean, wgsl: string) => cond ? wgsl : "";
  const name = `attention-backward-${outputs === "both" ? "dkv" : outputs}`;
  return attention.attentionSpec(name, { hd, tileRows: bq }, {
    ...dkvBindings(outputs),
    shared: `var<workgroup> qTile: array<vec4<f32>, ${tile}>;
var<workgroup> doTile: array<vec4<f32>, ${tile}>;
var<workgroup> lseTile: array<f32, ${bq}>;
var<workgroup> dTile: array<f32, ${bq}>;`,
    body: `  let r = base + row * HD;
  var kr: array<vec4<f32>, HD4>;
  var vr: array<vec4<f32>, HD4>;
  var dkAcc: array<vec4<f32>, HD4>;
  var dvAcc: array<vec4<f32>, HD4>;
  for (var c4 = 0u; c4 < HD4; c4++) {
    kr[c4] = select(vec4<f32>(0.0), read_k(r, c4), live);
    ${when(dk, "vr[c4] = select(vec4<f32>(0.0), read_v(r, c4), live);")}
    dkAcc[c4] = vec4<f32>(0.0);
    dvAcc[c4] = vec4<f32>(0.0);
  }
  // Query tiles from the one holding the workgroup's first key row to the end (uniform).
  let firstTile = tile * ROWS / TILE;
  let queryTiles = (p.T + TILE - 1u) / TILE;
  for (var qt = firstTile; qt < queryTiles; qt++) {
    workgroupBarrier();
    for (var e = lid; e < TILE * HD4; e += ROWS) {
      let i = min(qt * TILE + e / HD4, p.T - 1u); // rows past T are never used
      qTile[e] = read_q(base + i * HD, e % HD4);
      doTile[e] = read_dout(base + i * HD, e % HD4);
    }
    for (var e = lid; e < TILE; e += ROWS) {
      let i = min(qt * TILE + e, p.T - 1u);
      lseTile[e] = lse[b * p.T + i];
      ${when(dk, "dTile[e] = dsum[b * p.T + i];")}
    }
    workgroupBarrier();
    for (var ii = 0u; ii < TILE; ii++) {
      let i = qt * TILE + ii;
      if (!live || i < row || i >= p.T) { continue; }
      let t = ii * HD4;
      ${dotWgsl("s", (c) => `qTile[t + ${c}]`, (c) => `kr[${c}]`)}
      let pr = exp(p.scale * s - lseTile[ii]);
      ${when(dk, dotWgsl("dp", (c) => `doTile[t + ${c}]`, (c) => `vr[${c}]`))}
      ${when(dk, "let ds = pr * (dp - dTile[ii]);")}
      for (var c4 = 0u; c4 < HD4; c4++) {
        ${when(dv, "dvAcc[c4] = fma(vec4<f32>(pr), doTile[t + c4], dvAcc[c4]);")}
        ${when(dk, "dkAcc[c4] = fma(vec4<f32>(ds), qTile[t + c4], dkAcc[c4]);")}
      }
    }
  }
  if (live) {
    for (var c4 = 0u; c4 < HD4; c4++) {
      let g = dkAcc[c4] * p.scale;
      let h = dvAcc[c4];
      ${when(dk, attention.attentionWriteWgsl("dk", "r", "g"))}
      ${when(dv, attention.attentionWriteWgsl("dv", "r", "h"))}
    }
  }
}
`,
  });
}

/** How {@linkcode encodeAttentionBackward} computes the key rows' gradients (see `KeyOutputs`). */
export type AttentionKeyPass = "joint" | "split";

/** The forward's tensors the backward pass reads. */
export interface AttentionBackwardInputs {
  /** Queries `[BH, T, hd]`. */
  q: GPUBuffer;
  /** Keys `[BH, T, hd]`. */
  k: GPUBuffer;
  /** Values `[BH, T, hd]`. */
  v: GPUBuffer;
  /** The forward's output `[BH, T, hd]`. */
  out: GPUBuffer;
  /** The forward's log-sum-exp `[BH, T]`. */
  lse: GPUBuffer;
}

/** Buffers of {@linkcode encodeAttentionBackward}'s result, each `[BH, T, hd]`. */
export interface AttentionBackwardBuffers {
  /** `∂L/∂q`. */
  dq: GPUBuffer;
  /** `∂L/∂k`. */
  dk: GPUBuffer;
  /** `∂L/∂v`. */
  dv: GPUBuffer;
}

/**
 * Records the fused causal attention backward pass (the dQ kernel, then dK/dV).
 *
 * @param rt The runtime.
 * @param saved The forward's inputs and outputs.
 * @param dOut The output's gradient `[BH, T, hd]`.
 * @param dims `{ bh, T, hd }`.
 * @param scale The forward's score factor.
 * @param keyPass `"joint"` (default): one dK/dV pass; `"split"`: a dK pass and a dV pass, fewer
 * live registers per thread for the scores computed twice.
 * @returns New pooled buffers `dq`, `dk`, `dv`.
 * @throws {RangeError} On a bad size or scale.
 */
export function encodeAttentionBackward(
  rt: GpuRuntime,
  saved: AttentionBackwardInputs,
  dOut: GPUBuffer,
  dims: attention.AttentionDims,
  scale: number,
  keyPass: AttentionKeyPass = "joint",
): AttentionBackwardBuffers {
  attention.assertAttentionDims(dims, scale, "encode the fused attention backward pass");
  const { bh, T, hd } = dims;
  const bytes = 4 * bh * T * hd;
  const dq = rt.alloc(bytes), dk = rt.alloc(bytes), dv = rt.alloc(bytes);
  const { q, k, v, out, lse } = saved;
  const dsum = rt.alloc(4 * bh * T);
  const dqSpec = attentionBackwardDqSpec(hd, attention.attentionTileRows(rt, hd, 2));
  attention.dispatchAttention(rt, dqSpec, [q, k, v, out, dOut, lse, dq, dsum], dims, scale);
  const bq = attention.attentionTileRows(rt, hd, 2, 2);
  const buffers: Record<string, GPUBuffer> = { q, k, v, dout: dOut, lse, dsum, dk, dv };
  for (const outputs of keyPass === "joint" ? ["both"] as const : ["dk", "dv"] as const) {
    const { reads, writes } = dkvBindings(outputs);
    const bound = [...reads, ...writes].map((name) => buffers[name]);
    attention.dispatchAttention(rt, attentionBackwardDkvSpec(hd, bq, outputs), bound, dims, scale);
  }
  rt.free(dsum);
  return { dq, dk, dv };
}
