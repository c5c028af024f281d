/**
 * The reference backend's network operations: LayerNorm, the causal softmax, embeddings, the
 * cross-entropy loss and row means, each forward and backward. Also run by the CPU backend
 * (`cpu/backend.ts`) for the operations it does not accelerate, hence public to `core/` (not
 * exported from `mod.ts`); {@linkcode ReferenceBackend} documents each operation.
 *
 * @module
 */

import type {
  AttentionGrads,
  AttentionResult,
  AttentionSaved,
  Backend,
  LayerNormGrads,
  LayerNormResult,
  SoftmaxBackwardOptions,
  Tensor,
} from "./backend.ts";
import { floats, type FloatStorage, type ReferenceContext } from "./reference_storage.ts";
import { uniform4 } from "../reference/rng.ts";
import {
  geglu as gegluOracle,
  gegluBackward as gegluBackwardOracle,
  swiglu as swigluOracle,
  swigluBackward as swigluBackwardOracle,
} from "../reference/gated.ts";

export function layerNorm(
  ctx: ReferenceContext,
  x: Tensor,
  w: Tensor,
  b: Tensor,
  eps: number,
): LayerNormResult {
  const action = "apply LayerNorm";
  const { X, W, B, n, d } = ctx.check.layerNorm([x, w, b, eps], action);
  const yT = ctx.alloc([n, d]), meanT = ctx.alloc([n]), rstdT = ctx.alloc([n]);
  const y = floats(yT), mean = floats(meanT), rstd = floats(rstdT);
  const xd = X.storage.data, wd = W.storage.data, bd = B.storage.data;
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let sum = 0;
    for (let c = 0; c < d; c++) sum += xd[o + c];
    const mu = sum / d;
    let sq = 0;
    for (let c = 0; c < d; c++) sq += (xd[o + c] - mu) ** 2;
    const rs = 1 / Math.sqrt(sq / d + eps);
    for (let c = 0; c < d; c++) y[o + c] = (xd[o + c] - mu) * rs * wd[c] + bd[c];
    mean[r] = mu;
    rstd[r] = rs;
  }
  return { y: yT, mean: meanT, rstd: rstdT };
}

export function layerNormBackward(
  ctx: ReferenceContext,
  ...args: Parameters<Backend["layerNormBackward"]>
): LayerNormGrads {
  const action = "apply the LayerNorm backward pass";
  const { X, W, Mu, Rs, G, n, d } = ctx.check.layerNormBackward(args, action);
  const dxT = ctx.alloc([n, d]), dx = floats(dxT);
  const xd = X.storage.data, wd = W.storage.data, gd = G.storage.data;
  const md = Mu.storage.data, rd = Rs.storage.data;
  const dwAcc = new Float64Array(d), dbAcc = new Float64Array(d);
  const xhat = new Float64Array(d), gw = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    const o = r * d, mu = md[r], rs = rd[r];
    let meanG = 0, meanGX = 0;
    for (let c = 0; c < d; c++) {
      xhat[c] = (xd[o + c] - mu) * rs;
      gw[c] = gd[o + c] * wd[c];
      meanG += gw[c];
      meanGX += gw[c] * xhat[c];
      dwAcc[c] += gd[o + c] * xhat[c];
      dbAcc[c] += gd[o + c];
    }
    meanG /= d;
    meanGX /= d;
    for (let c = 0; c < d; c++) dx[o + c] = rs * (gw[c] - meanG - xhat[c] * meanGX);
  }
  return { dx: dxT, dw: ctx.filled([d], dwAcc), db: ctx.filled([d], dbAcc) };
}

// `exp` is Math.exp for the reference; the CPU backend passes its table-driven exp (SPEC §10.6).
export function causalSoftmax(
  ctx: ReferenceContext,
  s: Tensor,
  scale: number,
  exp: (x: number) => number = Math.exp,
): Tensor {
  const action = "apply the causal softmax";
  const { S, batch, T } = ctx.check.causalSoftmax(s, scale, action);
  const res = ctx.alloc(S.shape), out = floats(res);
  const d = S.storage.data;
  const z = new Float64Array(T);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < T; r++) {
      const o = (b * T + r) * T;
      let max = -Infinity;
      for (let c = 0; c <= r; c++) {
        z[c] = scale * d[o + c];
        if (z[c] > max) max = z[c];
      }
      if (!Number.isFinite(max)) {
        throw new RangeError(
          `Cannot ${action}: row ${r} of batch ${b} has largest scaled score ${max}`,
        );
      }
      let sum = 0;
      for (let c = 0; c <= r; c++) {
        z[c] = exp(z[c] - max);
        sum += z[c];
      }
      for (let c = 0; c <= r; c++) out[o + c] = z[c] / sum;
      for (let c = r + 1; c < T; c++) out[o + c] = 0; // a pooled buffer is not zeroed
    }
  }
  return res;
}

// Fused causal attention, SPEC §8.5: per query row, the visible scores in float64, their
// log-sum-exp, and the output weighted by exp(s − lse); no [BH, T, T] tensor is stored.
export function causalAttention(
  ctx: ReferenceContext,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  scale: number,
): AttentionResult {
  const action = "compute fused causal attention";
  const { Q, K, V, bh, T, hd } = ctx.check.attention(q, k, v, scale, action);
  const outT = ctx.alloc([bh, T, hd]), lseT = ctx.alloc([bh, T]);
  const out = floats(outT), lse = floats(lseT);
  const qd = Q.storage.data, kd = K.storage.data, vd = V.storage.data;
  const s = new Float64Array(T), acc = new Float64Array(hd);
  for (let b = 0; b < bh; b++) {
    const base = b * T * hd;
    for (let i = 0; i < T; i++) {
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        s[j] = scale * rowDot(qd, kd, base + i * hd, base + j * hd, hd);
        if (s[j] > max) max = s[j];
      }
      if (!Number.isFinite(max)) {
        throw new RangeError(`Cannot ${action}: row ${i} of slice ${b} has largest score ${max}`);
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) sum += Math.exp(s[j] - max);
      const rowLse = max + Math.log(sum);
      acc.fill(0);
      for (let j = 0; j <= i; j++) {
        const p = Math.exp(s[j] - rowLse), o = base + j * hd;
        for (let c = 0; c < hd; c++) acc[c] += p * vd[o + c];
      }
      out.set(acc, base + i * hd);
      lse[b * T + i] = rowLse;
    }
  }
  return { out: outT, lse: lseT };
}

// Its backward, SPEC §8.5: P recomputed from the saved lse, D_i = dO_i·O_i,
// dS = P ⊙ (dO·vᵀ − D), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dO.
export function causalAttentionBackward(
  ctx: ReferenceContext,
  saved: AttentionSaved,
  dOut: Tensor,
): AttentionGrads {
  const action = "compute the fused causal attention backward pass";
  const { Q, K, V, O, L, G, bh, T, hd } = ctx.check.attentionBackward(saved, dOut, action);
  const qd = Q.storage.data, kd = K.storage.data, vd = V.storage.data;
  const od = O.storage.data, ld = L.storage.data, gd = G.storage.data, scale = saved.scale;
  const dq = new Float64Array(bh * T * hd), dk = new Float64Array(dq.length);
  const dv = new Float64Array(dq.length);
  for (let b = 0; b < bh; b++) {
    const base = b * T * hd;
    for (let i = 0; i < T; i++) {
      const oi = base + i * hd, rowD = rowDot(gd, od, oi, oi, hd);
      for (let j = 0; j <= i; j++) {
        const oj = base + j * hd;
        const p = Math.exp(scale * rowDot(qd, kd, oi, oj, hd) - ld[b * T + i]);
        const ds = p * (rowDot(gd, vd, oi, oj, hd) - rowD);
        for (let c = 0; c < hd; c++) {
          dv[oj + c] += p * gd[oi + c];
          dq[oi + c] += scale * ds * kd[oj + c];
          dk[oj + c] += scale * ds * qd[oi + c];
        }
      }
    }
  }
  const shape = [bh, T, hd];
  return { dq: ctx.filled(shape, dq), dk: ctx.filled(shape, dk), dv: ctx.filled(shape, dv) };
}

/** `Σ_c a[ia + c]·b[ib + c]` over `n` entries, in float64. */
function rowDot(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  ia: number,
  ib: number,
  n: number,
): number {
  let sum = 0;
  for (let c = 0; c < n; c++) sum += a[ia + c] * b[ib + c];
  return sum;
}

// Each gated activation's name in error messages and its two `reference/gated.ts` oracles.
const GATED = {
  geglu: { name: "GEGLU", forward: gegluOracle, backward: gegluBackwardOracle },
  swiglu: { name: "SwiGLU", forward: swigluOracle, backward: swigluBackwardOracle },
} as const;

/** GEGLU or SwiGLU on `[N, 2h]` rows `[x | gate]` → `[N, h]`, through the oracle. */
export function gated(ctx: ReferenceContext, activation: keyof typeof GATED, x: Tensor): Tensor {
  const { name, forward } = GATED[activation];
  const t = ctx.check.gatedInput(x, `apply ${name}`);
  return ctx.fromMatrix(forward(ctx.toMatrix(t)), [t.shape[0], t.shape[1] / 2]);
}

/** The backward pass of {@linkcode gated} → `[N, 2h]` = `[∂x | ∂gate]`, through the oracle. */
export function gatedBackward(
  ctx: ReferenceContext,
  activation: keyof typeof GATED,
  x: Tensor,
  dy: Tensor,
): Tensor {
  const { name, backward } = GATED[activation];
  const [t, g] = ctx.check.gatedPair(x, dy, `apply the ${name} backward pass`);
  return ctx.fromMatrix(backward(ctx.toMatrix(t), ctx.toMatrix(g)), t.shape);
}

// Inverted dropout on the counter-based RNG: element i is kept iff uniform4(seed, stream, i/4)
// [i % 4] >= p, then scaled by 1/(1 − p). Every element is written (pooled buffers are fine).
export function dropout(
  ctx: ReferenceContext,
  x: Tensor,
  p: number,
  seed: number,
  stream: number,
): Tensor {
  const t = ctx.check.dropout(x, p, seed, stream, "apply dropout");
  const res = ctx.alloc(t.shape), out = floats(res);
  const d = t.storage.data, keepScale = 1 - p;
  for (let q = 0; 4 * q < out.length; q++) {
    const u = uniform4(seed, stream, q);
    for (let l = 0; l < 4 && 4 * q + l < out.length; l++) {
      const i = 4 * q + l;
      out[i] = u[l] >= p ? d[i] / keepScale : 0;
    }
  }
  return res;
}

export function softmaxBackward(
  ctx: ReferenceContext,
  p: Tensor,
  dp: Tensor,
  options: SoftmaxBackwardOptions,
): Tensor {
  const action = "apply the softmax backward pass";
  const { P, G, width } = ctx.check.softmaxBackward(p, dp, options, action);
  const res = ctx.alloc(P.shape), out = floats(res);
  const pd = P.storage.data, gd = G.storage.data, scale = options.scale ?? 1;
  for (let o = 0; o < out.length; o += width) {
    let dotPG = 0;
    for (let c = 0; c < width; c++) dotPG += pd[o + c] * gd[o + c];
    for (let c = 0; c < width; c++) out[o + c] = pd[o + c] * (gd[o + c] - dotPG);
    // The product a separate scale of the stored result gives (one more float32 rounding).
    if (scale !== 1) { for (let c = o; c < o + width; c++) out[c] = scale * out[c]; }
  }
  return res;
}

export function embedding(ctx: ReferenceContext, table: Tensor, idx: Tensor): Tensor {
  const action = "look up embeddings";
  const { Tb, ids, d } = ctx.check.embedding(table, idx, action);
  const res = ctx.alloc([ids.length, d]), out = floats(res);
  const td = Tb.storage.data as FloatStorage;
  for (let n = 0; n < ids.length; n++) {
    out.set(td.subarray(ids[n] * d, (ids[n] + 1) * d), n * d);
  }
  return res;
}

export function embeddingBackward(
  ctx: ReferenceContext,
  idx: Tensor,
  dy: Tensor,
  vocab: number,
): Tensor {
  const action = "apply the embedding backward pass";
  const { G, ids, n, d } = ctx.check.embeddingBackward(idx, dy, vocab, action);
  const acc = new Float64Array(vocab * d);
  const gd = G.storage.data;
  for (let r = 0; r < n; r++) {
    const dst = ids[r] * d, src = r * d;
    for (let c = 0; c < d; c++) acc[dst + c] += gd[src + c];
  }
  return ctx.filled([vocab, d], acc);
}

export function crossEntropy(ctx: ReferenceContext, logits: Tensor, targets: Tensor): Tensor {
  const action = "compute the cross-entropy";
  const { Z, t, n, c } = ctx.check.crossEntropy(logits, targets, action);
  const z = floats(Z);
  let total = 0;
  for (let r = 0; r < n; r++) {
    const o = r * c;
    total += logSumExp(z, o, c) - z[o + t[r]];
  }
  return ctx.filled([1], [total / n]);
}

export function crossEntropyBackward(
  ctx: ReferenceContext,
  logits: Tensor,
  targets: Tensor,
  dLoss: Tensor,
): Tensor {
  const action = "apply the cross-entropy backward pass";
  const { Z, L, t, n, c } = ctx.check.crossEntropyBackward(logits, targets, dLoss, action);
  const z = floats(Z);
  const factor = L.storage.data[0] / n;
  const res = ctx.alloc([n, c]), out = floats(res);
  for (let r = 0; r < n; r++) {
    const o = r * c;
    const lse = logSumExp(z, o, c);
    for (let k = 0; k < c; k++) {
      out[o + k] = factor * (Math.exp(z[o + k] - lse) - (k === t[r] ? 1 : 0));
    }
  }
  return res;
}

export function meanRows(ctx: ReferenceContext, x: Tensor): Tensor {
  const action = "average rows";
  const { X, n, d } = ctx.check.meanRows(x, action);
  const acc = new Float64Array(d);
  const xd = X.storage.data;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < d; c++) acc[c] += xd[r * d + c];
  }
  const res = ctx.alloc([d]), out = floats(res);
  for (let c = 0; c < d; c++) out[c] = acc[c] / n;
  return res;
}

/** `log Σ exp(z[o..o+c))`, max-subtracted. */
function logSumExp(z: FloatStorage, o: number, c: number): number {
  let max = -Infinity;
  for (let k = 0; k < c; k++) if (z[o + k] > max) max = z[o + k];
  let sum = 0;
  for (let k = 0; k < c; k++) sum += Math.exp(z[o + k] - max);
  return max + Math.log(sum);
}
