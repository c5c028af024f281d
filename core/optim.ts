/**
 * AdamW with decoupled weight decay (SPEC §4: β = (0.9, 0.95), weight decay 0.1, eps 1e-8; no decay
 * on LayerNorm parameters, biases and embeddings), STEP's frozen variance (SPEC 2.10) and
 * global-norm gradient clipping.
 *
 * @module
 */

import type { Backend, GradClip, Tensor } from "./backend.ts";
import type { Parameter } from "./nn.ts";

/** AdamW hyper-parameters (all but the learning rate, which the schedule gives per step). */
export interface AdamWConfig {
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.95). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay of the parameters with `weightDecay: true` (default 0.1). */
  weightDecay?: number;
}

/** The moments of one parameter. */
export interface AdamWMoments {
  /** First moment, same shape as the parameter. */
  m: Tensor;
  /** Second moment, same shape as the parameter. */
  v: Tensor;
}

/**
 * AdamW over a fixed list of parameters; the moments are persistent backend tensors, zero at the
 * start, keyed by parameter name.
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { Parameter } from "./nn.ts";
 * import { AdamW } from "./optim.ts";
 * const backend = new ReferenceBackend();
 * const p = new Parameter(backend, "w", new Float32Array([1]), [1]);
 * const adam = new AdamW(backend, [p]);
 * adam.update([[p, backend.tensor(new Float32Array([2]), [1])]], 0.1, 1);
 * const [w] = await backend.read(p.value);
 * if (Math.abs(w - 0.9) > 1e-6) throw new Error(`unexpected ${w}`); // first step moves by lr
 * ```
 */
export class AdamW {
  /** The resolved hyper-parameters. */
  readonly config: Required<AdamWConfig>;
  readonly #backend: Backend;
  readonly #moments = new Map<string, AdamWMoments>();
  readonly #varianceFrozenAt = new Map<string, number>();

  /**
   * Creates zero moments for every parameter.
   *
   * @param backend The backend of the parameters.
   * @param parameters The parameters to optimise (names must be unique).
   * @param config Hyper-parameters (defaults of SPEC §4).
   * @throws {RangeError} On a repeated name or a hyper-parameter out of range.
   */
  constructor(backend: Backend, parameters: readonly Parameter[], config: AdamWConfig = {}) {
    this.config = {
      beta1: config.beta1 ?? 0.9,
      beta2: config.beta2 ?? 0.95,
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? 0.1,
    };
    const { beta1, beta2, eps, weightDecay } = this.config;
    const action = "configure AdamW";
    for (const [key, v] of Object.entries({ beta1, beta2 })) {
      if (!(v >= 0 && v < 1)) {
        throw new RangeError(`Cannot ${action}: ${key} must be in [0, 1), got ${v}`);
      }
    }
    if (!(eps > 0) || !Number.isFinite(eps)) {
      throw new RangeError(`Cannot ${action}: eps must be a positive finite number, got ${eps}`);
    }
    if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
      throw new RangeError(
        `Cannot ${action}: weightDecay must be finite and >= 0, got ${weightDecay}`,
      );
    }
    this.#backend = backend;
    for (const p of parameters) {
      if (this.#moments.has(p.name)) {
        throw new RangeError(`Cannot ${action}: the parameter name ${p.name} is repeated`);
      }
      const shape = p.value.shape;
      this.#moments.set(p.name, {
        m: backend.keep(backend.full(shape, 0)),
        v: backend.keep(backend.full(shape, 0)),
      });
    }
  }

  /** The moments of a parameter (for checkpoints and tests). */
  moments(name: string): AdamWMoments {
    const state = this.#moments.get(name);
    if (state === undefined) throw new RangeError(`Cannot find the AdamW moments of ${name}`);
    return state;
  }

  /**
   * Freezes the second moment of some parameters (STEP, SPEC 2.10): from now on their `v` is not
   * updated and `v̂ = v/(1−β2^atStep)`. Freezing again moves nothing (the first freeze stays).
   *
   * @param names The parameters whose variance is frozen.
   * @param atStep The 1-based step count of the last update that changed `v`.
   * @throws {RangeError} If a name is not one of this optimizer's, or `atStep` is not a positive
   * integer.
   */
  freezeVariance(names: readonly string[], atStep: number): void {
    if (!Number.isInteger(atStep) || atStep < 1) {
      throw new RangeError(
        `Cannot freeze the AdamW variance: atStep must be a positive integer, got ${atStep}`,
      );
    }
    for (const name of names) {
      this.moments(name);
      if (!this.#varianceFrozenAt.has(name)) this.#varianceFrozenAt.set(name, atStep);
    }
  }

  /**
   * The step count at which a parameter's variance was frozen, or `undefined` if it is not.
   *
   * @param name The parameter.
   * @returns The `atStep` of {@linkcode AdamW.freezeVariance}, or `undefined`.
   */
  varianceFrozenAt(name: string): number | undefined {
    return this.#varianceFrozenAt.get(name);
  }

  /** Names of the optimised parameters, in construction order. */
  get names(): string[] {
    return [...this.#moments.keys()];
  }

  /**
   * One AdamW step in place for every `(parameter, gradient[, gradScale])`: the backend's `adamw`
   * with this optimizer's hyper-parameters, weight decay only where `parameter.weightDecay`, the
   * gradient multiplied by `gradScale` (default 1, or a {@linkcode GradClip}'s factor) as AdamW
   * reads it.
   *
   * @param updates The parameters, the gradients to apply and optional gradient factors.
   * @param lr The learning rate of this step.
   * @param step The 1-based step count (bias correction).
   * @throws {RangeError} If a parameter is not one of this optimizer's, or `step` is not a
   * positive integer, or `lr` is negative or not finite.
   */
  update(
    updates: readonly (readonly [Parameter, Tensor, (number | GradClip)?])[],
    lr: number,
    step: number,
  ): void {
    if (!Number.isInteger(step) || step < 1) {
      throw new RangeError(
        `Cannot take an AdamW step: step must be a positive integer, got ${step}`,
      );
    }
    if (!(lr >= 0) || !Number.isFinite(lr)) {
      throw new RangeError(`Cannot take an AdamW step: lr must be finite and >= 0, got ${lr}`);
    }
    const { beta1, beta2, eps, weightDecay } = this.config;
    this.#backend.adamwMany(updates.map(([p, grad, gradScale]) => {
      const { m, v } = this.moments(p.name);
      return {
        param: p.value,
        grad,
        m,
        v,
        hp: {
          lr,
          beta1,
          beta2,
          eps,
          weightDecay: p.weightDecay ? weightDecay : 0,
          step,
          ...(gradScale !== undefined && gradScale !== 1 ? { gradScale } : {}),
          varianceFrozenAt: this.#varianceFrozenAt.get(p.name),
        },
      };
    }));
  }
}

/**
 * `Σ‖g‖²` over several gradients, as one `[1]` tensor (read back with the step's other scalars).
 *
 * @param backend The backend.
 * @param grads The gradients (at least one).
 * @returns A `[1]` tensor.
 * @throws {RangeError} If `grads` is empty.
 */
export function gradNormSquared(backend: Backend, grads: readonly Tensor[]): Tensor {
  if (grads.length === 0) {
    throw new RangeError("Cannot compute the gradient norm: there are no gradients");
  }
  return backend.sumSquaresMany(grads);
}

/**
 * The factor global-norm clipping multiplies the gradients by (as PyTorch's
 * `clip_grad_norm_`): `maxNorm / (norm + 1e-6)` when that is below 1, else exactly 1.
 *
 * @param norm The global gradient norm.
 * @param maxNorm The clipping threshold (SPEC §4: 1.0).
 * @returns The factor, in `(0, 1]`.
 * @throws {RangeError} If `norm` is NaN/negative, or `maxNorm` is not positive.
 * @example
 * ```ts
 * import { clipFactor } from "./optim.ts";
 * if (clipFactor(0.5, 1) !== 1) throw new Error("no clipping below the threshold");
 * if (Math.abs(clipFactor(4, 1) - 0.25) > 1e-6) throw new Error("unexpected");
 * ```
 */
export function clipFactor(norm: number, maxNorm: number): number {
  if (!(norm >= 0)) {
    throw new RangeError(`Cannot clip gradients: the norm must be >= 0, got ${norm}`);
  }
  if (!(maxNorm > 0)) {
    throw new RangeError(`Cannot clip gradients: maxNorm must be positive, got ${maxNorm}`);
  }
  const factor = maxNorm / (norm + 1e-6);
  return factor < 1 ? factor : 1;
}

/**
 * The clipping factor of a {@linkcode GradClip} as a host-memory backend computes it: from the
 * float32 `Σ‖g‖²` (what a read returns), `clipFactor(√normSquared, maxNorm)` in float64; `null`
 * when `normSquared` is not finite (AdamW then leaves the parameter unchanged).
 *
 * @param normSquared The squared global norm.
 * @param maxNorm The clipping threshold.
 * @returns The factor, or `null`.
 */
export function hostClipFactor(normSquared: number, maxNorm: number): number | null {
  const n = Math.fround(normSquared);
  return Number.isFinite(n) ? clipFactor(Math.sqrt(n), maxNorm) : null;
}
