/**
 * The reference backend's 2:4 operations, each delegating to its pure-TypeScript oracle in
 * `reference/` (so both backends are measured against one definition). Also run by the
 * CPU backend (`cpu/backend.ts`), hence public to `core/` (not exported from `mod.ts`);
 * {@linkcode ReferenceBackend} documents each operation.
 *
 * @module
 */

import type { Fp8Format, PrunedTensor, Tensor } from "./backend.ts";
import type { Matrix } from "../reference/matrix.ts";
import { sameShape } from "./backend_checks.ts";
import type { ReferenceContext } from "./reference_storage.ts";
import { pruneNM as pruneNMOracle } from "../reference/prune.ts";
import { softThreshold24 as softThreshold24Oracle } from "../reference/soft_threshold.ts";
import { transposableMask24 as transposableMask24Oracle } from "../reference/transposable.ts";
import { mvue24 as mvue24Oracle } from "../reference/mvue.ts";
import { maskedDecay as maskedDecayOracle } from "../reference/masked_decay.ts";
import { flipCount as flipCountOracle } from "../reference/flip_rate.ts";
import { quantizeFp8 as quantizeFp8Oracle } from "../reference/fp8.ts";

export function pruneNM(ctx: ReferenceContext, w: Tensor, n: number, m: number): PrunedTensor {
  const W = ctx.matrixInput(w, `prune to ${n}:${m}`);
  const { pruned, mask } = pruneNMOracle(ctx.toMatrix(W), { n, m });
  return { pruned: ctx.fromMatrix(pruned, W.shape), mask: ctx.fromMask(mask, W.shape) };
}

export function softThreshold24(ctx: ReferenceContext, w: Tensor): PrunedTensor {
  const W = ctx.matrixInput(w, "soft-threshold to 2:4");
  const { pruned, mask } = softThreshold24Oracle(ctx.toMatrix(W));
  return { pruned: ctx.fromMatrix(pruned, W.shape), mask: ctx.fromMask(mask, W.shape) };
}

export function transposableMask24(ctx: ReferenceContext, w: Tensor): Tensor {
  const W = ctx.matrixInput(w, "find a transposable 2:4 mask");
  return ctx.fromMask(transposableMask24Oracle(ctx.toMatrix(W)).mask, W.shape);
}

export function mvue24(ctx: ReferenceContext, g: Tensor, seed: number, stream: number): Tensor {
  const G = ctx.matrixInput(g, "sample MVUE 2:4");
  return ctx.fromMatrix(mvue24Oracle(ctx.toMatrix(G), { seed, stream }), G.shape);
}

export function maskedDecay(
  ctx: ReferenceContext,
  grad: Tensor,
  w: Tensor,
  mask: Tensor,
  alpha: number,
): Tensor {
  const action = "apply masked decay";
  const G = ctx.matrixInput(grad, action), W = ctx.matrixInput(w, action);
  const M = ctx.matrixInput(mask, action);
  sameShape(G, W, action);
  sameShape(G, M, action);
  const out = maskedDecayOracle(
    ctx.toMatrix(G),
    ctx.toMatrix(W),
    ctx.toMask(M, action),
    alpha,
  );
  return ctx.fromMatrix(out, G.shape);
}

export function flipCount(ctx: ReferenceContext, prev: Tensor, next: Tensor): Tensor {
  const action = "count mask flips";
  const [P, N] = ctx.check.pair(prev, next, action);
  return ctx.filled([1], [flipCountOracle(ctx.toMask(P, action), ctx.toMask(N, action))]);
}

export function quantizeFp8(ctx: ReferenceContext, x: Tensor, format: Fp8Format): Tensor {
  const X = ctx.check.float(x, `quantize to FP8 ${format}`);
  // Per-tensor scaling ignores the shape; leading axes become rows so errors name a position.
  const cols = X.shape[X.shape.length - 1],
    rows = X.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  const flat: Matrix = { rows, cols, data: ctx.f32Copy(X) };
  return ctx.fromMatrix(quantizeFp8Oracle(flat, { format }).dequantized, X.shape);
}
