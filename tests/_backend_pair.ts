/**
 * What the backend parity suites (`gpu_backend_test.ts`, `cpu_backend_test.ts`) share: inputs
 * described once and run through any backend, so a fast backend and the reference see the same data.
 *
 * @module
 */

import type { Backend, Tensor } from "../core/backend.ts";

/** One input tensor: float data, or int32 indices. */
export type Input = { data: Float32Array | Int32Array; shape: number[] };
/** A float input. */
export const f = (data: Float32Array, shape: number[]): Input => ({ data, shape });
/** An index input. */
export const ints = (data: Int32Array, shape: number[]): Input => ({ data, shape });

/** Uploads `inputs` to `be`, runs `op`, reads every output back and releases the temporaries. */
export async function runOn(
  be: Backend,
  inputs: readonly Input[],
  op: (be: Backend, xs: Tensor[]) => Tensor | Tensor[],
): Promise<Float32Array[]> {
  const xs = inputs.map((x) =>
    x.data instanceof Int32Array ? be.indices(x.data, x.shape) : be.tensor(x.data, x.shape)
  );
  const out = op(be, xs);
  const values = await be.readMany(Array.isArray(out) ? out : [out]);
  be.release();
  return values;
}

/**
 * The squared norms the gradient-clip cases use (SPEC §4, "gradient clipping, as computed"):
 * clipped (`f ≈ 0.2` at `maxNorm` 1), unclipped (`f = 1`), and not finite (nothing moves).
 */
export const CLIP_NORMS_SQUARED: readonly number[] = [25, 0.25, Infinity];

/**
 * Four AdamW steps on a copy of `p0` with the gradient `g` clipped on the backend by each of
 * {@linkcode CLIP_NORMS_SQUARED} in turn, then once more with `g` pre-scaled by `scaleClipped` and
 * the clip marked `applied`; returns `[p, m, v, scaleClipped(g) per norm]`.
 */
export function clippedAdamW(be: Backend, [p0, g]: Tensor[]): Tensor[] {
  const n = p0.size, maxNorm = 1;
  const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
  const p = be.keep(be.scale(p0, 1)), m = be.keep(be.full([n], 0)), v = be.keep(be.full([n], 0));
  const scaled: Tensor[] = [];
  CLIP_NORMS_SQUARED.forEach((s, i) => {
    const clip = { normSquared: be.full([1], s), maxNorm };
    be.adamw(p, g, m, v, { ...hp, step: i + 1, gradScale: clip });
    scaled.push(be.scaleClipped(g, clip));
  });
  const clip = { normSquared: be.full([1], 25), maxNorm, applied: true };
  be.adamw(p, be.scaleClipped(g, clip), m, v, { ...hp, step: 4, gradScale: clip });
  const out = [be.scale(p, 1), be.scale(m, 1), be.scale(v, 1), ...scaled];
  for (const t of [p, m, v]) be.dispose(t);
  return out;
}
