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
