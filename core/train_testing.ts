/**
 * Helpers shared by the training-stack tests in `core/` and `tests/` (excluded from the published
 * package): random inputs, tiny batches, a projection loss, finite differences through a whole
 * model on the reference backend's float64 storage, and a trainer's full state for resume checks.
 *
 * @module
 */

import type { Backend, Tensor } from "./backend.ts";
import { type Tape, Variable } from "./autograd.ts";
import type { Batch } from "./gpt2.ts";
import type { Parameter } from "./nn.ts";
import type { ReferenceBackend } from "./reference_backend.ts";
import type { Trainer, TrainerConfig } from "./trainer.ts";
import { finiteDifference } from "./grad_check.ts";
import { normal } from "./init.ts";

/** `n` standard-normal values (times `std`) from the project's RNG, as float64. */
export function randn(seed: number, n: number, std = 1): Float64Array {
  return Float64Array.from(normal(seed, 7, n, std));
}

/**
 * The trainer configuration of the tests' short runs: peak learning rate `1e-2`, minimum `1e-3`,
 * the rest (steps, warm-up, seed, options) from `run`.
 */
export function testRun(
  run: Omit<TrainerConfig, "peakLr" | "minLr"> & Partial<TrainerConfig>,
): TrainerConfig {
  return { peakLr: 1e-2, minLr: 1e-3, ...run };
}

/**
 * The same backend without its fused causal attention (SPEC §8.5): `ops.causalSelfAttention` then
 * takes the composed path (`matmul`, `causalSoftmax`), which tests compare the fused one with.
 */
export function withoutFusedAttention<B extends Backend>(be: B): B {
  return new Proxy(be, {
    get: (target, prop) => {
      if (prop === "causalAttention" || prop === "causalAttentionBackward") return undefined;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value; // #private fields
    },
  });
}

/** A deterministic batch of `B` sequences of length `T` over a vocabulary of `V` tokens. */
export function makeBatch(B: number, T: number, V: number, seed: number): Batch {
  const tokens = new Int32Array(B * T), targets = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    tokens[i] = (i * 7 + 3 * seed + 1) % V;
    targets[i] = (i * 5 + 11 * seed + 2) % V;
  }
  return { tokens, targets, batchSize: B };
}

/**
 * `L = Σ y ⊙ r` as a recorded node, so `∂L/∂y = r` (times the incoming `[1]` gradient, applied on
 * the device as a `[n,1]·[1,1]` product).
 */
export function projectionLoss(tape: Tape, y: Variable, r: Tensor): Variable {
  const be = tape.backend;
  return tape.record(be.dot(y.value, r), [y], (g) => {
    const scaled = be.matmul(be.reshape(r, [r.size, 1]), be.reshape(g, [1, 1]));
    tape.accumulate(y, be.reshape(scaled, y.value.shape));
  });
}

/** A variable needing a gradient, from float64 values. */
export function leaf(be: ReferenceBackend, data: Float64Array, shape: number[]): Variable {
  return new Variable(be.tensor(data, shape), { requiresGrad: true });
}

/** `k` distinct indices in `[0, n)` spread over the range (deterministic). */
export function sampleIndices(n: number, k: number, salt: number): number[] {
  const out = new Set<number>();
  for (let j = 0; out.size < Math.min(k, n); j++) out.add((j * 7919 + salt * 104729 + 13) % n);
  return [...out].sort((a, b) => a - b);
}

/**
 * Central finite differences of a model's evaluation loss with respect to selected entries of
 * one parameter (float64 storage; the parameter is restored afterwards).
 */
export function modelFiniteDifference(
  be: ReferenceBackend,
  param: Parameter,
  indices: readonly number[],
  lossOf: () => number,
  eps = 1e-6,
): Float64Array {
  const base = be.readF64(param.value);
  const set = (values: Float64Array) => {
    const src = be.tensor(values, param.value.shape);
    be.assign(param.value, src);
    be.dispose(src);
  };
  const x = Float64Array.from(indices, (i) => base[i]);
  try {
    return finiteDifference(
      (xs) => {
        const full = Float64Array.from(base);
        indices.forEach((k, j) => (full[k] = xs[j]));
        set(full);
        const value = lossOf();
        be.release();
        return value;
      },
      x,
      eps,
    );
  } finally {
    set(base);
  }
}

/**
 * Everything a training step depends on, read from the device: the parameters, their AdamW
 * moments, and each sparse layer's β and mask (for bit-for-bit resume checks).
 */
export async function trainerSnapshot(trainer: Trainer): Promise<Float32Array[]> {
  const be = trainer.model.backend;
  const params = trainer.model.parameters();
  const moments = params.flatMap((p) => {
    const { m, v } = trainer.optimizer.moments(p.name);
    return [m, v];
  });
  const values = await be.readMany([...params.map((p) => p.value), ...moments]);
  for (const layer of trainer.model.sparseLayers()) {
    const state = await layer.saveState();
    values.push(new Float32Array([state.beta]), state.mask ?? new Float32Array());
  }
  return values;
}
