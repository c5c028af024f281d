/**
 * Fused causal attention, forward (FlashAttention-2 style, SPEC §8.5): a workgroup takes 64 query
 * rows of one `[T, hd]` slice, one thread per row holding its query and output accumulator in
 * registers; it walks the key tiles up to the diagonal, staging `TILE` key and value rows in
 * workgroup memory, and keeps the online softmax's running maximum `m` and sum `l` per row. It
 * writes `out = acc / l` and `lse = m + log l`; the `[T, T]` scores never reach memory.
 *
 * FLOPs (causal, multiply-add = 2): `2·BH·T·(T + 1)·hd` (`q·kᵀ` and `p·v` over the visible half);
 * global traffic about `4·BH·T·hd·(2 + 2·T/64)` bytes (q, out once, k and v once per query tile).
 *
 * @module
 */

import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import {
  assertAttentionDims,
  type AttentionDims,
  attentionSpec,
  attentionTileRows,
  attentionWriteWgsl,
  dispatchAttention,
  KEY_TILE_LOOP_WGSL,
  keyValueTilesWgsl,
} from "./attention_common.ts";

/** The most negative finite float32: the running maximum before any visible key. */
const LOWEST = "-3.4028234663852886e38";

/**
 * The forward kernel for head dimension `hd` with key tiles of `bc` rows. Bindings: `q`, `k`,
 * `v` (`[BH, T, hd]`), `out` (`[BH, T, hd]`), `lse` (`[BH, T]`), uniform `{ bh, T, scale }`.
 *
 * @param hd The head dimension.
 * @param bc Key rows per tile.
 * @returns The kernel, key `attention-forward-hd<hd>-tile<bc>`.
 */
export function attentionForwardSpec(hd: number, bc: number): KernelSpec {
  return attentionSpec("attention-forward", { hd, tileRows: bc }, {
    reads: ["q", "k", "v"],
    writes: ["out", "lse"],
    shared: keyValueTilesWgsl(hd, bc),
    body: `  var qr: array<vec4<f32>, HD4>;
  var acc: array<vec4<f32>, HD4>;
  for (var c4 = 0u; c4 < HD4; c4++) {
    qr[c4] = select(vec4<f32>(0.0), read_q(base + row * HD, c4), live);
    acc[c4] = vec4<f32>(0.0);
  }
  var m = ${LOWEST};
  var l = 0.0;
  var s: array<f32, TILE>;
${KEY_TILE_LOOP_WGSL}
    var tileMax = m;
    for (var jj = 0u; jj < TILE; jj++) {
      var score = ${LOWEST};
      if (live && kt * TILE + jj <= row) {
        var d = vec4<f32>(0.0);
        for (var c4 = 0u; c4 < HD4; c4++) { d = fma(qr[c4], kTile[jj * HD4 + c4], d); }
        score = p.scale * ((d.x + d.y) + (d.z + d.w));
      }
      s[jj] = score;
      tileMax = max(tileMax, score);
    }
    // Online softmax: rescale what the earlier tiles summed to the new maximum.
    let alpha = exp(m - tileMax);
    m = tileMax;
    l *= alpha;
    for (var c4 = 0u; c4 < HD4; c4++) { acc[c4] *= alpha; }
    for (var jj = 0u; jj < TILE; jj++) {
      if (live && kt * TILE + jj <= row) {
        let pr = exp(s[jj] - m);
        l += pr;
        for (var c4 = 0u; c4 < HD4; c4++) { acc[c4] = fma(vec4<f32>(pr), vTile[jj * HD4 + c4], acc[c4]); }
      }
    }
  }
  if (live) {
    let inv = 1.0 / l;
    for (var c4 = 0u; c4 < HD4; c4++) {
      let o = acc[c4] * inv;
      ${attentionWriteWgsl("out", "base + row * HD", "o")}
    }
    lse[b * p.T + row] = m + log(l);
  }
}
`,
  });
}

/** Buffers of {@linkcode encodeAttentionForward}'s result. */
export interface AttentionForwardBuffers {
  /** `[BH, T, hd]`. */
  out: GPUBuffer;
  /** `[BH, T]`. */
  lse: GPUBuffer;
}

/**
 * Records the fused causal attention forward pass.
 *
 * @param rt The runtime.
 * @param qkv The buffers `[q, k, v]`, each `[BH, T, hd]`.
 * @param dims `{ bh, T, hd }`.
 * @param scale The factor applied to the scores (as float32).
 * @returns New pooled buffers `out` `[BH, T, hd]` and `lse` `[BH, T]`.
 * @throws {RangeError} On a bad size or scale.
 */
export function encodeAttentionForward(
  rt: GpuRuntime,
  qkv: readonly [GPUBuffer, GPUBuffer, GPUBuffer],
  dims: AttentionDims,
  scale: number,
): AttentionForwardBuffers {
  assertAttentionDims(dims, scale, "encode the fused attention forward pass");
  const { bh, T, hd } = dims;
  const out = rt.alloc(4 * bh * T * hd), lse = rt.alloc(4 * bh * T);
  const spec = attentionForwardSpec(hd, attentionTileRows(rt, hd, 2));
  dispatchAttention(rt, spec, [...qkv, out, lse], dims, scale);
  return { out, lse };
}
