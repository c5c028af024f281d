/**
 * The 2:4 sparse linear layer and every training method of SPEC §2.8, each written as one custom
 * autograd node with the forward GEMM and the two backward GEMMs spelled out:
 *
 * | method | forward `Z = X·W̃ᵀ` | `∇X` | `∇W` (to the dense W) | optimizer extras |
 * |---|---|---|---|---|
 * | `dense` | `W̃ = W` | `∇Z·W` | `∇Zᵀ·X` | — |
 * | `ste` | `W̃ = S_h(W)` every step | `∇Z·W̃` | `∇Zᵀ·X` | — |
 * | `sr-ste` | as `ste` | `∇Z·W̃` | `∇Zᵀ·X` | `λ_W·(1−M)⊙W` on the gradient or the weight |
 * | `t-sr-ste` | `W̃ = W⊙M`, M transposable, refreshed every `maskRefresh` steps | `∇Z·W̃` | `MVUE24(∇Zᵀ)·X` | `α·(1−M)⊙W` on the clipped gradient |
 * | `t-sr-ste+df` | as `t-sr-ste`, then plain dense for the last `denseFraction` of the steps | | | |
 * | `s-ste` | `W̃ = β·S_soft(W)` every step, β frozen after init | `∇Z·W̃` | `MVUE24(∇Zᵀ)·X` | — |
 * | `s-ste+fp8` | as `s-ste`, E4M3 forward operands | E5M2 operands | E5M2 operands | — |
 * | `step` | plain dense for the first `preconditionFraction` of the steps, then as `sr-ste` | | | AdamW's `v` of these layers frozen at the switch (SPEC 2.10) |
 *
 * A layer's work in one optimizer step: {@linkcode SparseLinear.beginStep} builds `W̃` and the mask
 * of this step (and counts mask flips), {@linkcode SparseLinear.forward} records the node, the
 * trainer calls {@linkcode SparseLinear.decayGradient} after gradient clipping and
 * {@linkcode SparseLinear.decayWeight} after AdamW, then {@linkcode SparseLinear.endStep}.
 *
 * MVUE draws use the run seed and the stream {@linkcode mvueStream}`(step, layerIndex)`, so a
 * resumed run draws the same uniforms.
 *
 * Over 600 lines on purpose: the table above is one design (one custom autograd node per method,
 * sharing the layer state, mask refresh and step brackets); splitting it per method would repeat that.
 *
 * @module
 */

import type { Backend, Tensor } from "./backend.ts";
import type { Tape, Variable } from "./autograd.ts";
import { type Module, Parameter } from "./nn.ts";
import { mvueStream } from "./streams.ts";

/** The training methods of SPEC §2.8, and STEP (SPEC 2.10). */
export type SparseMethod =
  | "dense"
  | "ste"
  | "sr-ste"
  | "t-sr-ste"
  | "t-sr-ste+df"
  | "s-ste"
  | "s-ste+fp8"
  | "step";

/** Every {@linkcode SparseMethod}, in the order of SPEC §2.8, then STEP (SPEC 2.10). */
export const SPARSE_METHODS: readonly SparseMethod[] = [
  "dense",
  "ste",
  "sr-ste",
  "t-sr-ste",
  "t-sr-ste+df",
  "s-ste",
  "s-ste+fp8",
  "step",
];

/**
 * What a training method does, as the rest of the code asks it (one row per method of SPEC §2.8;
 * decide by these traits, never by comparing method names).
 */
export interface SparseMethodTraits {
  /**
   * The weight `W̃` of the forward GEMM in the sparse phase: `"dense"` (`W`), `"hard"` (`S_h(W)`
   * every step), `"transposable"` (`W⊙M`, M transposable, refreshed every `maskRefresh` steps;
   * needs the output width a multiple of 4) or `"soft"` (`β·S_soft(W)` every step, SPEC 1.2–1.3).
   */
  weight: "dense" | "hard" | "transposable" | "soft";
  /** MVUE 2:4 on `∇Zᵀ` by default (SPEC 2.7). */
  mvue: boolean;
  /** FP8 simulation of the GEMM operands by default (SPEC 2.9). */
  fp8: boolean;
  /** Trains plain dense for the last `denseFraction` of the steps (SPEC 2.5). */
  denseTail: boolean;
  /**
   * Trains plain dense for the first `preconditionFraction` of the steps, then freezes AdamW's
   * variance of the sparse layers (STEP, SPEC 2.10).
   */
  precondition: boolean;
  /**
   * The decay of the pruned weights: `"none"`, `"lambdaW"` (SR-STE, SPEC 2.2) or `"alpha"` (P1's
   * masked decay on the clipped gradient, SPEC 2.3).
   */
  decay: "none" | "lambdaW" | "alpha";
  /**
   * The unit of the trainer's flip rate in the sparse phase (SPEC 2.4): `"step"` (the mask is
   * recomputed every step) or `"refresh"` (flips accumulated between refreshes of the mask).
   */
  flipRateUnit: "step" | "refresh";
}

/** The traits of every {@linkcode SparseMethod} (see {@linkcode SparseMethodTraits}). */
export const SPARSE_METHOD_TRAITS: Readonly<Record<SparseMethod, Readonly<SparseMethodTraits>>> =
  Object.freeze({
    "dense": traits("dense", {
      mvue: false,
      fp8: false,
      denseTail: false,
      precondition: false,
      decay: "none",
    }),
    "ste": traits("hard", {
      mvue: false,
      fp8: false,
      denseTail: false,
      precondition: false,
      decay: "none",
    }),
    "sr-ste": traits("hard", {
      mvue: false,
      fp8: false,
      denseTail: false,
      precondition: false,
      decay: "lambdaW",
    }),
    "t-sr-ste": traits("transposable", {
      mvue: true,
      fp8: false,
      denseTail: false,
      precondition: false,
      decay: "alpha",
    }),
    "t-sr-ste+df": traits("transposable", {
      mvue: true,
      fp8: false,
      denseTail: true,
      precondition: false,
      decay: "alpha",
    }),
    "s-ste": traits("soft", {
      mvue: true,
      fp8: false,
      denseTail: false,
      precondition: false,
      decay: "none",
    }),
    "s-ste+fp8": traits("soft", {
      mvue: true,
      fp8: true,
      denseTail: false,
      precondition: false,
      decay: "none",
    }),
    "step": traits("hard", {
      mvue: false,
      fp8: false,
      denseTail: false,
      precondition: true,
      decay: "lambdaW",
    }),
  });

function traits(
  weight: SparseMethodTraits["weight"],
  rest: Omit<SparseMethodTraits, "weight" | "flipRateUnit">,
): Readonly<SparseMethodTraits> {
  return Object.freeze({
    weight,
    ...rest,
    flipRateUnit: weight === "transposable" ? "refresh" : "step",
  });
}

/**
 * The traits of a training method.
 *
 * @param method The method.
 * @returns Its row of {@linkcode SPARSE_METHOD_TRAITS}.
 * @throws {TypeError} If `method` is not a {@linkcode SparseMethod}.
 * @example
 * ```ts
 * import { sparseMethodTraits } from "./sparse.ts";
 * const t = sparseMethodTraits("t-sr-ste+df");
 * if (t.weight !== "transposable" || !t.denseTail || t.flipRateUnit !== "refresh") {
 *   throw new Error("unexpected traits");
 * }
 * ```
 */
export function sparseMethodTraits(method: SparseMethod): Readonly<SparseMethodTraits> {
  if (!Object.hasOwn(SPARSE_METHOD_TRAITS, method)) {
    throw new TypeError(
      `Cannot look up the traits of a sparse method: unknown method ${JSON.stringify(method)} ` +
        `(expected one of ${SPARSE_METHODS.join(", ")})`,
    );
  }
  return SPARSE_METHOD_TRAITS[method];
}

/** The methods whose traits satisfy `predicate`, in SPARSE_METHODS order. */
function methodsWhere(predicate: (t: SparseMethodTraits) => boolean): SparseMethod[] {
  return SPARSE_METHODS.filter((m) => predicate(SPARSE_METHOD_TRAITS[m]));
}

/** How S-STE's per-tensor scale β is chosen (SPEC §1.3). */
export type BetaRecipe = "mse-frozen" | "mse-dynamic" | "l1" | "none";

/**
 * A method and its options. Options that a method does not use are rejected (they would be
 * silently ignored otherwise); omitted options take the defaults of SPEC §2.
 */
export interface SparseOptions {
  /** The training method. */
  method: SparseMethod;
  /**
   * MVUE 2:4 on `∇Zᵀ` for the weight gradient (`∇W = MVUE24(∇Zᵀ)·X`). Default: `true` for the
   * `t-sr-ste*` and `s-ste*` methods, `false` otherwise (any method accepts it, for ablations).
   */
  mvue?: boolean;
  /**
   * The P2 Table 3 ablation that also sparsifies the input gradient with MVUE on the weight:
   * `∇X = ∇Z·MVUE24(W̃ᵀ)ᵀ` (MVUE along `out`, the reduction dimension of that GEMM). Default
   * `false`.
   */
  mvueOnWeight?: boolean;
  /** `t-sr-ste+df` only: fraction of the optimizer steps trained dense at the end (default 1/6). */
  denseFraction?: number;
  /** `t-sr-ste*` only: masked-decay factor α (SPEC 2.3; default 6e-5). */
  alpha?: number;
  /**
   * `sr-ste` and `step`: decay factor λ_W of the pruned weights (SPEC 2.2, 2.10; default 2e-4).
   */
  lambdaW?: number;
  /** `sr-ste` and `step`: where the SR-STE decay enters (default `"gradient"`). */
  decayOn?: "gradient" | "weight";
  /** `t-sr-ste*` only: optimizer steps between transposable-mask refreshes (default 40). */
  maskRefresh?: number;
  /**
   * FP8 simulation (SPEC 2.9): E4M3 forward operands, E5M2 backward operands. Default: `true`
   * for `s-ste+fp8`, `false` otherwise.
   */
  fp8?: boolean;
  /** `s-ste*` only: the β recipe (default `"mse-frozen"`). */
  betaRecipe?: BetaRecipe;
  /**
   * `step` only: fraction of the optimizer steps of STEP's dense precondition phase, after which
   * AdamW's variance of the sparse layers is frozen (SPEC 2.10; default 0.1).
   */
  preconditionFraction?: number;
}

/** {@linkcode SparseOptions} with every default filled in. */
export type ResolvedSparseOptions = Required<SparseOptions>;

const OPTION_METHODS: Record<keyof SparseOptions, readonly SparseMethod[] | "all"> = {
  method: "all",
  mvue: "all",
  mvueOnWeight: "all",
  fp8: "all",
  denseFraction: methodsWhere((t) => t.denseTail),
  alpha: methodsWhere((t) => t.decay === "alpha"),
  maskRefresh: methodsWhere((t) => t.weight === "transposable"),
  lambdaW: methodsWhere((t) => t.decay === "lambdaW"),
  decayOn: methodsWhere((t) => t.decay === "lambdaW"),
  betaRecipe: methodsWhere((t) => t.weight === "soft"),
  preconditionFraction: methodsWhere((t) => t.precondition),
};

/** Defaults of the method-specific options (SPEC 2.2, 2.3, 2.5, 2.6, 1.3, 2.10). */
const METHOD_SPECIFIC_DEFAULTS = {
  denseFraction: 1 / 6,
  alpha: 6e-5,
  lambdaW: 2e-4,
  decayOn: "gradient",
  maskRefresh: 40,
  betaRecipe: "mse-frozen",
  preconditionFraction: 0.1,
} as const;

/**
 * Validates a method's options and fills in the defaults. An option that the method does not use
 * is rejected unless it equals its default (so a resolved object resolves to itself).
 *
 * @param options The method and its options.
 * @returns Every option, with defaults for the omitted ones.
 * @throws {TypeError} On an unknown method or option, an option the method does not use, or an
 * option of the wrong type.
 * @throws {RangeError} On an option value out of range.
 * @example
 * ```ts
 * import { resolveSparseOptions } from "./sparse.ts";
 * const o = resolveSparseOptions({ method: "t-sr-ste" });
 * if (o.maskRefresh !== 40 || o.alpha !== 6e-5 || !o.mvue) throw new Error("unexpected defaults");
 * ```
 */
export function resolveSparseOptions(options: SparseOptions): ResolvedSparseOptions {
  const action = "configure the sparse method";
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Cannot ${action}: expected an object {method, ...}, got ${options}`);
  }
  const method = options.method;
  if (!SPARSE_METHODS.includes(method)) {
    throw new TypeError(
      `Cannot ${action}: unknown method ${JSON.stringify(method)} (expected one of ${
        SPARSE_METHODS.join(", ")
      })`,
    );
  }
  for (const key of Object.keys(options) as (keyof SparseOptions)[]) {
    const allowed = OPTION_METHODS[key];
    if (allowed === undefined) {
      throw new TypeError(`Cannot ${action}: unknown option ${JSON.stringify(key)}`);
    }
    const value = options[key];
    const isDefault = value === undefined ||
      value === (METHOD_SPECIFIC_DEFAULTS as Partial<Record<keyof SparseOptions, unknown>>)[key];
    if (allowed !== "all" && !allowed.includes(method) && !isDefault) {
      throw new TypeError(
        `Cannot ${action}: option ${key} applies to ${allowed.join(", ")}, not to ${method}`,
      );
    }
  }
  const traits = SPARSE_METHOD_TRAITS[method];
  const resolved: ResolvedSparseOptions = {
    method,
    mvue: options.mvue ?? traits.mvue,
    mvueOnWeight: options.mvueOnWeight ?? false,
    denseFraction: options.denseFraction ?? METHOD_SPECIFIC_DEFAULTS.denseFraction,
    alpha: options.alpha ?? METHOD_SPECIFIC_DEFAULTS.alpha,
    lambdaW: options.lambdaW ?? METHOD_SPECIFIC_DEFAULTS.lambdaW,
    decayOn: options.decayOn ?? METHOD_SPECIFIC_DEFAULTS.decayOn,
    maskRefresh: options.maskRefresh ?? METHOD_SPECIFIC_DEFAULTS.maskRefresh,
    fp8: options.fp8 ?? traits.fp8,
    betaRecipe: options.betaRecipe ?? METHOD_SPECIFIC_DEFAULTS.betaRecipe,
    preconditionFraction: options.preconditionFraction ??
      METHOD_SPECIFIC_DEFAULTS.preconditionFraction,
  };
  for (const key of ["mvue", "mvueOnWeight", "fp8"] as const) {
    if (typeof resolved[key] !== "boolean") {
      throw new TypeError(`Cannot ${action}: ${key} must be a boolean, got ${resolved[key]}`);
    }
  }
  for (const key of ["alpha", "lambdaW"] as const) {
    const v = resolved[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`Cannot ${action}: ${key} must be a finite number >= 0, got ${v}`);
    }
  }
  const f = resolved.denseFraction;
  if (typeof f !== "number" || !(f >= 0 && f < 1)) {
    throw new RangeError(`Cannot ${action}: denseFraction must be in [0, 1), got ${f}`);
  }
  const pf = resolved.preconditionFraction;
  if (typeof pf !== "number" || !(pf > 0 && pf < 1)) {
    throw new RangeError(`Cannot ${action}: preconditionFraction must be in (0, 1), got ${pf}`);
  }
  const r = resolved.maskRefresh;
  if (!Number.isInteger(r) || r < 1) {
    throw new RangeError(`Cannot ${action}: maskRefresh must be a positive integer, got ${r}`);
  }
  if (resolved.decayOn !== "gradient" && resolved.decayOn !== "weight") {
    throw new TypeError(
      `Cannot ${action}: decayOn must be "gradient" or "weight", got ${
        JSON.stringify(resolved.decayOn)
      }`,
    );
  }
  const recipes: readonly BetaRecipe[] = ["mse-frozen", "mse-dynamic", "l1", "none"];
  if (!recipes.includes(resolved.betaRecipe)) {
    throw new TypeError(
      `Cannot ${action}: betaRecipe must be one of ${recipes.join(", ")}, got ${
        JSON.stringify(resolved.betaRecipe)
      }`,
    );
  }
  return resolved;
}

/**
 * Whether the sparse layers train with their method (`"sparse"`) or as plain dense linears
 * (`"dense"`: the final phase of `t-sr-ste+df`, SPEC 2.5, and the precondition phase of `step`,
 * SPEC 2.10).
 */
export type TrainingPhase = "sparse" | "dense";

/** What a layer needs to know about the optimizer step it is in. */
export interface StepContext {
  /** 0-based optimizer step. */
  step: number;
  /** The run seed (MVUE and dropout draws). */
  seed: number;
  /** The training phase of this step. */
  phase: TrainingPhase;
}

/** Which mask a layer tracks for its flip rate (SPEC 2.4). */
export type MaskKind = "hard" | "transposable";

/** The state of one optimizer step, built by `beginStep`. */
interface StepState {
  step: number;
  seed: number;
  /** The weight the forward GEMM uses, `W̃`. */
  effective: Tensor;
  /** `W̃` is 2:4 along `in` (its rows), `W̃ᵀ` along `out` (a transposable mask). */
  sparse24: { rows: boolean; columns: boolean };
  mvue: boolean;
  mvueOnWeight: boolean;
  fp8: boolean;
  /** Masked decay added to the clipped gradient (0: none). */
  gradientDecay: number;
  /** Decoupled decay applied after AdamW, times the learning rate (0: none). */
  weightDecay: number;
}

/** The persistent state of a sparse layer besides its weight (for checkpoints). */
export interface SparseLayerState {
  /** S-STE's scale β (1 for the other methods). */
  beta: number;
  /** The last computed mask (0/1 values), or `undefined` before the first step. */
  mask: Float32Array | undefined;
  /** Which mask that is. */
  maskKind: MaskKind | undefined;
}

/**
 * A bias-free linear layer `Z = X·W̃ᵀ` (`W[out, in]`) trained with one of the 2:4 methods of
 * SPEC §2.8; see the module documentation for the exact GEMMs.
 *
 * `in` must be a multiple of 4 (2:4 groups run along `in`); the transposable methods and
 * `mvueOnWeight` also need `out % 4 == 0`. When MVUE is on, the number of tokens must be a
 * multiple of 4 (MVUE groups run along the token axis of `∇Zᵀ`).
 */
export class SparseLinear implements Module {
  /** The dense master weight `[out, in]` (AdamW decays it). */
  readonly weight: Parameter;
  /** The method and its options. */
  readonly options: ResolvedSparseOptions;
  /** Index of this layer among the model's sparse layers (selects its MVUE streams). */
  readonly layerIndex: number;
  readonly #backend: Backend;
  #beta = 1;
  #mask: Tensor | undefined = undefined;
  #maskKind: MaskKind | undefined = undefined;
  #phase: TrainingPhase = "sparse";
  #step: StepState | undefined = undefined;

  /**
   * Creates the layer with the given initial weight (call {@linkcode SparseLinear.initialize}
   * before training).
   *
   * @param backend The backend.
   * @param name The weight's name.
   * @param init Initial weight values `[out, in]`, row-major.
   * @param shape `{ inFeatures, outFeatures }`.
   * @param options `{ sparse, layerIndex }`: the method options and the sparse-layer index.
   * @throws {RangeError} If the shape does not allow the method's 2:4 groups.
   * @throws {TypeError} From {@linkcode resolveSparseOptions}.
   */
  constructor(
    backend: Backend,
    name: string,
    init: Float32Array,
    shape: { inFeatures: number; outFeatures: number },
    options: { sparse: SparseOptions; layerIndex: number },
  ) {
    this.options = resolveSparseOptions(options.sparse);
    const { inFeatures, outFeatures } = shape;
    const action = `make the 2:4 sparse layer ${name}`;
    if (inFeatures % 4 !== 0) {
      throw new RangeError(
        `Cannot ${action}: the input width must be a multiple of 4, got ${inFeatures}`,
      );
    }
    const needsOut4 = sparseMethodTraits(this.options.method).weight === "transposable" ||
      this.options.mvueOnWeight;
    if (needsOut4 && outFeatures % 4 !== 0) {
      throw new RangeError(
        `Cannot ${action}: ${this.options.method} needs the output width to be a multiple of 4, got ${outFeatures}`,
      );
    }
    this.#backend = backend;
    this.layerIndex = options.layerIndex;
    this.weight = new Parameter(backend, name, init, [outFeatures, inFeatures], {
      weightDecay: true,
    });
  }

  /** Returns `[weight]`. */
  parameters(): Parameter[] {
    return [this.weight];
  }

  /** The layer's name (its weight's name). */
  get name(): string {
    return this.weight.name;
  }

  /** S-STE's scale β (1 for the other methods). */
  get beta(): number {
    return this.#beta;
  }

  /** The phase of the last step begun (`"sparse"` until the dense switch). */
  get phase(): TrainingPhase {
    return this.#phase;
  }

  /** Number of mask entries (= weight entries), the layer's weight in the global flip rate. */
  get maskSize(): number {
    return this.weight.size;
  }

  /**
   * Computes S-STE's β from the freshly initialised weight (SPEC 1.3; call once, right after
   * initialisation, before any step; loading a checkpoint restores β instead). For the other
   * methods and the `"none"` recipe β stays 1. `mse-*`: `β = ⟨W,S⟩/⟨S,S⟩` with the backend's `dot`;
   * `l1`: `β = ‖W‖₁/‖S‖₁` on the host; `S = S_soft(W)`; β = 1 when `S = 0`. β is rounded to f32
   * so every backend scales by the same number.
   *
   * @returns Resolves once β is known.
   */
  async initialize(): Promise<void> {
    if (!this.#isSste() || this.options.betaRecipe === "none") {
      this.#beta = 1;
      return;
    }
    const be = this.#backend;
    const { pruned: s, mask } = be.softThreshold24(this.weight.value);
    if (this.options.betaRecipe === "l1") {
      const [w, sv] = await be.readMany([this.weight.value, s]);
      let num = 0, den = 0;
      for (let i = 0; i < w.length; i++) {
        num += Math.abs(w[i]);
        den += Math.abs(sv[i]);
      }
      this.#beta = den === 0 ? 1 : Math.fround(num / den);
      be.dispose(s);
      be.dispose(mask);
    } else {
      const terms = [be.dot(this.weight.value, s), be.dot(s, s)];
      this.#beta = await this.#mseBeta(terms);
      for (const t of [s, mask, ...terms]) be.dispose(t);
    }
  }

  async #mseBeta(terms: Tensor[]): Promise<number> {
    const [[num], [den]] = await this.#backend.readMany(terms);
    return den === 0 ? 1 : Math.fround(num / den);
  }

  #isSste(): boolean {
    return SPARSE_METHOD_TRAITS[this.options.method].weight === "soft";
  }

  /**
   * Starts an optimizer step: builds this step's `W̃` and mask from the current weight, refreshes
   * the transposable mask at steps `0, maskRefresh, 2·maskRefresh, …` (or when none exists yet),
   * recomputes β for `mse-dynamic` (one small read), and counts mask flips against the previous
   * mask computation (SPEC 2.4; the tracked mask is the hard top-2 mask of `W` for `dense`,
   * `ste`, `sr-ste`, `s-ste*` and the dense phase, the transposable mask for `t-sr-ste*`).
   *
   * @param ctx The step, seed and phase.
   * @returns A `[1]` tensor counting the flipped mask entries (0 on the first computation of a
   * mask kind), or `undefined` when no mask was computed this step (`t-sr-ste` between refreshes).
   * @throws {Error} If a step is already in progress.
   */
  async beginStep(ctx: StepContext): Promise<Tensor | undefined> {
    if (this.#step !== undefined) {
      throw new Error(
        `Cannot begin step ${ctx.step} of ${this.name}: step ${this.#step.step} is still open`,
      );
    }
    const be = this.#backend;
    const w = this.weight.value;
    const o = this.options;
    this.#phase = ctx.phase;
    const sparse = ctx.phase === "sparse";
    const state: StepState = {
      step: ctx.step,
      seed: ctx.seed,
      effective: w,
      sparse24: { rows: false, columns: false },
      mvue: sparse && o.mvue,
      mvueOnWeight: sparse && o.mvueOnWeight,
      fp8: sparse && o.fp8,
      gradientDecay: 0,
      weightDecay: 0,
    };
    let flips: Tensor | undefined;
    const traits = SPARSE_METHOD_TRAITS[sparse ? o.method : "dense"];
    switch (traits.weight) {
      case "dense":
        flips = this.#track(be.pruneNM(w, 2, 4).mask, "hard");
        break;
      case "hard": {
        const { pruned, mask } = be.pruneNM(w, 2, 4);
        state.effective = pruned;
        flips = this.#track(mask, "hard");
        if (traits.decay === "lambdaW") {
          if (o.decayOn === "gradient") state.gradientDecay = o.lambdaW;
          else state.weightDecay = o.lambdaW;
        }
        break;
      }
      case "transposable":
        if (ctx.step % o.maskRefresh === 0 || this.#maskKind !== "transposable") {
          flips = this.#track(be.transposableMask24(w), "transposable");
        }
        state.effective = be.mul(w, this.#mask!);
        state.gradientDecay = o.alpha;
        break;
      case "soft": {
        const { pruned: s, mask } = be.softThreshold24(w);
        flips = this.#track(mask, "hard");
        if (o.betaRecipe === "mse-dynamic") {
          this.#beta = await this.#mseBeta([be.dot(w, s), be.dot(s, s)]);
        }
        state.effective = be.scale(s, this.#beta);
        break;
      }
    }
    state.sparse24 = { rows: traits.weight !== "dense", columns: traits.weight === "transposable" };
    this.#step = state;
    return flips;
  }

  /** Replaces the tracked mask by `next`, returning the flip count (0 on a first computation). */
  #track(next: Tensor, kind: MaskKind): Tensor {
    const be = this.#backend;
    if (this.#mask === undefined || this.#maskKind !== kind) {
      if (this.#mask !== undefined) be.dispose(this.#mask);
      this.#mask = be.keep(next);
      this.#maskKind = kind;
      return be.full([1], 0);
    }
    const flips = be.flipCount(this.#mask, next);
    // `next` becomes the tracked mask (no copy: the backend frees the old one only after the
    // work recorded so far, the count above included).
    be.dispose(this.#mask);
    this.#mask = be.keep(next);
    return flips;
  }

  /**
   * Ends the step begun by {@linkcode SparseLinear.beginStep} (call before `backend.release()`).
   */
  endStep(): void {
    this.#step = undefined;
  }

  /**
   * The weight the forward GEMM uses outside a training step (evaluation), from the current
   * weight and the layer's state, with the 2:4 mask it applies: `W` (no mask) in the dense phase,
   * for `dense`, or with `dense: true`; otherwise the method's `W̃` — `S_h(W)` with its hard mask,
   * `W⊙M` with the stored transposable mask (or a fresh one if none exists yet), `β·S_soft(W)` with
   * the soft-threshold mask and the last β. FP8 quantisation of the operands is not applied here.
   * The tensors are temporaries of the backend (freed by `backend.release()`).
   *
   * @param options `{ dense }`: use the dense weight `W`.
   * @returns The weight `[out, in]` and its 0/1 mask (`undefined` where the weight is dense).
   */
  evaluationWeight(
    options: { dense?: boolean } = {},
  ): { weight: Tensor; mask: Tensor | undefined } {
    const be = this.#backend;
    const w = this.weight.value;
    if (options.dense || this.#phase === "dense") return { weight: w, mask: undefined };
    switch (SPARSE_METHOD_TRAITS[this.options.method].weight) {
      case "dense":
        return { weight: w, mask: undefined };
      case "hard": {
        const { pruned, mask } = be.pruneNM(w, 2, 4);
        return { weight: pruned, mask };
      }
      case "transposable": {
        const mask = this.#maskKind === "transposable" ? this.#mask! : be.transposableMask24(w);
        return { weight: be.mul(w, mask), mask };
      }
      case "soft": {
        const { pruned, mask } = be.softThreshold24(w);
        return { weight: be.scale(pruned, this.#beta), mask };
      }
    }
  }

  /**
   * Records the layer's node: `Z = X·W̃ᵀ` forward, and the method's `∇X` and `∇W` backward (see
   * the module documentation). Outside a training step the tape must not record (evaluation);
   * `dense: true` then evaluates with the dense weight `W` (how P1 models are evaluated).
   *
   * @param tape The tape.
   * @param x Input `[T, in]`.
   * @param options `{ dense }` (evaluation only).
   * @returns `Z[T, out]`.
   * @throws {RangeError} If `x` is not `[T, in]`, or MVUE is on and `T % 4 != 0`.
   * @throws {Error} If the tape records outside a training step.
   */
  forward(tape: Tape, x: Variable, options: { dense?: boolean } = {}): Variable {
    const be = this.#backend;
    const inFeatures = this.weight.value.shape[1];
    const [tokens, width] = x.value.shape;
    if (x.value.shape.length !== 2 || width !== inFeatures) {
      throw new RangeError(
        `Cannot apply ${this.name}: the input must be [T, ${inFeatures}], got [${x.value.shape}]`,
      );
    }
    const st = this.#step;
    if (st === undefined) {
      if (tape.recording) {
        throw new Error(
          `Cannot record ${this.name} outside a training step: call beginStep first (or evaluate with a non-recording tape)`,
        );
      }
      const { weight: wEval, mask } = this.evaluationWeight(options);
      const fp8 = this.options.fp8 && this.#phase === "sparse" && !options.dense;
      const e4m3 = (t: Tensor) => fp8 ? be.quantizeFp8(t, "e4m3") : t;
      const z = be.matmul(e4m3(x.value), e4m3(wEval), {
        transB: true,
        sparse24: mask === undefined ? undefined : "b", // a masked weight is 2:4 along `in`
      });
      return tape.record(z, [], () => {});
    }
    if (st.mvue && tokens % 4 !== 0) {
      throw new RangeError(
        `Cannot apply ${this.name} with an MVUE weight gradient: the token count must be a multiple of 4, got ${tokens}`,
      );
    }
    const e4m3 = (t: Tensor) => st.fp8 ? be.quantizeFp8(t, "e4m3") : t;
    const e5m2 = (t: Tensor) => st.fp8 ? be.quantizeFp8(t, "e5m2") : t;

    // Forward GEMM: Z = X·W̃ᵀ. A 2:4 operand (also after FP8 quantisation, which keeps zeros) is
    // promised to the backend, which may multiply from its compressed form (SPEC §8.6).
    const z = be.matmul(e4m3(x.value), e4m3(st.effective), {
      transB: true,
      sparse24: st.sparse24.rows ? "b" : undefined,
    });

    return tape.record(z, [x, this.weight], (dz) => {
      // Input gradient ∇X = ∇Z·W̃ (optionally with W̃ sparsified by MVUE along `out`).
      if (x.requiresGrad) {
        let wBackward = st.effective;
        if (st.mvueOnWeight) {
          const stream = mvueStream(st.step, this.layerIndex, "weight");
          wBackward = be.transpose(be.mvue24(be.transpose(wBackward), st.seed, stream));
        }
        const columns24 = st.sparse24.columns || st.mvueOnWeight;
        tape.accumulate(
          x,
          be.matmul(e5m2(dz), e5m2(wBackward), { sparse24: columns24 ? "b" : undefined }),
        );
      }
      // Weight gradient ∇W = MVUE24(∇Zᵀ)·X (or ∇Zᵀ·X), straight to the dense W.
      let dw: Tensor;
      if (st.mvue) {
        const stream = mvueStream(st.step, this.layerIndex, "gradient");
        const dzT = be.mvue24(be.transpose(dz), st.seed, stream); // 2:4 along the tokens
        dw = be.matmul(e5m2(dzT), e5m2(x.value), { sparse24: "a" });
      } else {
        dw = be.matmul(e5m2(dz), e5m2(x.value), { transA: true });
      }
      tape.accumulate(this.weight, dw);
    });
  }

  /**
   * Whether {@linkcode SparseLinear.decayGradient} adds a decay to the clipped gradient this step
   * (then clipping must scale the gradient before it, not inside AdamW).
   *
   * @throws {Error} Outside a training step.
   */
  get decaysGradient(): boolean {
    return this.#openStep("ask for the gradient decay").gradientDecay !== 0;
  }

  /**
   * The optimizer extra applied to the clipped gradient before AdamW: `t-sr-ste*` (sparse phase)
   * adds `α·(1−M)⊙W` with the transposable mask (SPEC 2.3); `sr-ste` with `decayOn: "gradient"`
   * (also `step` in its sparse phase) adds `λ_W·(1−M)⊙W` with this step's hard mask (SPEC 2.2,
   * 2.10).
   * Other methods return `grad`.
   *
   * @param grad The clipped gradient of the weight.
   * @returns The gradient AdamW consumes.
   * @throws {Error} Outside a training step.
   */
  decayGradient(grad: Tensor): Tensor {
    const st = this.#openStep("decay the gradient");
    if (st.gradientDecay === 0) return grad;
    return this.#backend.maskedDecay(grad, this.weight.value, this.#mask!, st.gradientDecay);
  }

  /**
   * The decoupled SR-STE decay after AdamW (`sr-ste`, `decayOn: "weight"`):
   * `W ← W − lr·λ_W·(1−M)⊙W` with this step's hard mask, in place. Other methods do nothing.
   *
   * @param lr The learning rate of this step.
   * @throws {Error} Outside a training step.
   */
  decayWeight(lr: number): void {
    const st = this.#openStep("decay the weight");
    if (st.weightDecay === 0 || lr === 0) return;
    const be = this.#backend;
    const w = this.weight.value;
    // maskedDecay on a zero gradient gives the decay term lr·λ_W·(1−M)⊙W itself.
    const decay = be.maskedDecay(be.full(w.shape, 0), w, this.#mask!, lr * st.weightDecay);
    be.assign(w, be.addScaled(w, decay, -1));
  }

  #openStep(action: string): StepState {
    if (this.#step === undefined) {
      throw new Error(`Cannot ${action} of ${this.name} outside a training step`);
    }
    return this.#step;
  }

  /**
   * Reads the layer's persistent state (β, mask) for a checkpoint.
   *
   * @returns β, the tracked mask's values (or `undefined`) and its kind.
   */
  async saveState(): Promise<SparseLayerState> {
    const mask = this.#mask === undefined ? undefined : await this.#backend.read(this.#mask);
    return { beta: this.#beta, mask, maskKind: this.#maskKind };
  }

  /**
   * Restores the state written by {@linkcode SparseLinear.saveState}, and the phase.
   *
   * @param state β, the mask values and kind.
   * @param phase The training phase to resume in.
   * @throws {RangeError} If the mask has the wrong length or a mask comes without a kind.
   */
  loadState(state: SparseLayerState, phase: TrainingPhase): void {
    const be = this.#backend;
    if (this.#mask !== undefined) be.dispose(this.#mask);
    this.#mask = undefined;
    this.#maskKind = undefined;
    if (state.mask !== undefined) {
      if (state.mask.length !== this.weight.size || state.maskKind === undefined) {
        throw new RangeError(
          `Cannot restore the state of ${this.name}: expected a mask of ${this.weight.size} entries with a kind, got ${state.mask.length} (${state.maskKind})`,
        );
      }
      this.#mask = be.keep(be.tensor(state.mask, this.weight.value.shape));
      this.#maskKind = state.maskKind;
    }
    this.#beta = state.beta;
    this.#phase = phase;
  }
}
