/**
 * One optimizer step of 2:4 sparse GPT-2 training, in the order of SPEC §4:
 *
 * 1. the learning rate of the step (`schedule.ts`); the phase of the step
 *    ({@linkcode Trainer.phaseAt}: the dense tail of `t-sr-ste+df`, the dense precondition phase of
 *    `step`); from STEP's switch on, AdamW's variance of the sparse layers is frozen (SPEC 2.10);
 * 2. the backend's 2:4 kernel choice times the product shapes new in the last step (SPEC §8.6);
 *    `model.beginStep`: every sparse layer builds `W̃` and its mask (transposable-mask refresh every
 *    `maskRefresh` steps, counting mask flips);
 * 3. forward → loss → backward;
 * 4. global-norm clipping at `gradClip` (1.0), its factor computed on the backend from the squared
 *    norm (`GradClip`, SPEC §4: no read-back before the update), applied by AdamW as it reads a
 *    gradient unless a masked decay is added to the clipped gradient first;
 * 5. masked decay on the clipped gradient (`t-sr-ste*`: `α·(1−M)⊙W`; `sr-ste` on the gradient:
 *    `λ_W·(1−M)⊙W`);
 * 6. AdamW (decay only on the linear weights; nothing moves when the norm is not finite);
 * 7. **one bulk read**: the loss, the squared global gradient norm and the flip counts (and, with
 *    `captureGradients`, every raw and every applied gradient); a non-finite loss or norm fails
 *    the step here;
 * 8. the decoupled SR-STE decay (`sr-ste` with `decayOn: "weight"`);
 * 9. `model.endStep()` and `backend.release()`.
 *
 * All randomness is counter-based (`streams.ts`), so the seed and the step determine every draw:
 * the training state is the weights, the AdamW moments, the sparse layers' masks and β, the step
 * and the phase (`checkpoint.ts`).
 *
 * @module
 */

import { Tape, type Variable } from "./autograd.ts";
import type { Backend, GradClip, Tensor } from "./backend.ts";
import type { GPT } from "./gpt2.ts";
import type { Parameter } from "./nn.ts";
import { AdamW, type AdamWConfig, gradNormSquared } from "./optim.ts";
import { assertCosineSchedule, cosineLr } from "./schedule.ts";
import {
  type ResolvedSparseOptions,
  type SparseLinear,
  sparseMethodTraits,
  type StepContext,
  type TrainingPhase,
} from "./sparse.ts";

/**
 * What the trainer needs of a model with 2:4 sparse layers (GPT-2 and the ViT of
 * `experiments/vit.ts` are two): its parameters and sparse layers, the step brackets, and the loss
 * of a batch of type `B`.
 */
export interface TrainableModel<B> {
  /** The backend holding the parameters. */
  readonly backend: Backend;
  /** The sparse method of the model's sparse layers. */
  readonly config: { readonly sparse: ResolvedSparseOptions };
  /** Every parameter (names unique). */
  parameters(): Parameter[];
  /** The 2:4 sparse layers, in `layerIndex` order. */
  sparseLayers(): SparseLinear[];
  /** Starts a step: every sparse layer's `beginStep`; returns their flip counts. */
  beginStep(ctx: StepContext): Promise<(Tensor | undefined)[]>;
  /** Ends the open step. */
  endStep(): void;
  /** The training loss of a batch (`[1]`), recorded on the tape. */
  loss(tape: Tape, batch: B): Variable;
}

/** The batch type a {@linkcode TrainableModel} takes. */
export type BatchOf<M> = M extends TrainableModel<infer B> ? B : never;

/** The run configuration. */
export interface TrainerConfig {
  /** Total number of optimizer steps (the schedule's end and the dense switch's reference). */
  totalSteps: number;
  /** Peak learning rate. */
  peakLr: number;
  /** Linear warm-up steps. */
  warmupSteps: number;
  /** Floor of the cosine decay. */
  minLr: number;
  /** The run seed (MVUE and dropout draws), an integer in `[0, 2^53)`. */
  seed: number;
  /** Global-norm clipping threshold (default 1.0). */
  gradClip?: number;
  /** AdamW hyper-parameters (defaults of SPEC §4). */
  adamw?: AdamWConfig;
  /**
   * Read every raw gradient (after backward, before clipping) into
   * {@linkcode Trainer.lastGradients} within the step's bulk read, and the gradients AdamW consumes
   * into {@linkcode Trainer.lastAppliedGradients} (a second read), for parity tests (default false).
   */
  captureGradients?: boolean;
}

/** What one optimizer step reports. */
export interface StepResult {
  /** 0-based index of the step just taken. */
  step: number;
  /** Its training loss (before the update). */
  loss: number;
  /** Its learning rate. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The phase it ran in. */
  phase: TrainingPhase;
  /**
   * Σ flips / Σ mask entries over the sparse layers that computed a mask this step (SPEC 2.4; 0 on
   * a first computation), or `null` if none did (`t-sr-ste` between refreshes, or no sparse layer).
   */
  flipRate: number | null;
  /** Each sparse layer's flip rate, by weight name (only the layers that computed a mask). */
  flipRateByLayer: Record<string, number>;
}

/**
 * Trains a {@linkcode GPT} (or any {@linkcode TrainableModel}) one optimizer step at a time (see
 * the module documentation for the order). The trainer owns the AdamW state, the step counter and the phase.
 *
 * A parity test can run the same step on two backends: build both models from the same seed, set
 * `captureGradients`, call {@linkcode Trainer.trainStep} on each and compare the results,
 * {@linkcode Trainer.lastGradients} and the parameters.
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { GPT, gptConfig } from "./gpt2.ts";
 * import { Trainer } from "./trainer.ts";
 * const backend = new ReferenceBackend();
 * const model = await GPT.create(backend, gptConfig("tiny", { sparse: { method: "s-ste" } }), {
 *   seed: 1,
 * });
 * const trainer = new Trainer(model, {
 *   totalSteps: 10, peakLr: 1e-2, warmupSteps: 1, minLr: 1e-3, seed: 1,
 * });
 * const batch = { tokens: new Int32Array(8).fill(3), targets: new Int32Array(8).fill(4), batchSize: 1 };
 * const first = await trainer.trainStep(batch);
 * if (first.step !== 0 || first.flipRate !== 0) throw new Error("unexpected first step");
 * ```
 */
export class Trainer<M extends TrainableModel<never> = GPT> {
  /** The model being trained. */
  readonly model: M;
  /** The run configuration with defaults filled in. */
  readonly config: Required<Omit<TrainerConfig, "adamw">> & { adamw: AdamWConfig };
  /** The optimizer. */
  readonly optimizer: AdamW;
  /** Raw gradients of the last step by parameter name (with `captureGradients`). */
  lastGradients: Map<string, Float32Array> | undefined = undefined;
  /**
   * The gradients AdamW consumed in the last step (clipped, plus any masked decay), by parameter
   * name (with `captureGradients`, at the cost of a second read).
   */
  lastAppliedGradients: Map<string, Float32Array> | undefined = undefined;
  readonly #parameters: Parameter[];
  #step = 0;
  #phase: TrainingPhase;
  /** What holds the trainer now (`"step 3"`, `"a checkpoint save"`), or undefined when idle. */
  #busy: string | undefined = undefined;

  /**
   * Creates the trainer at step 0 with zero AdamW moments.
   *
   * @param model The model (its backend runs the steps).
   * @param config The run configuration.
   * @throws {RangeError} On an invalid schedule, seed or clipping threshold.
   */
  constructor(model: M, config: TrainerConfig) {
    const resolved = {
      totalSteps: config.totalSteps,
      peakLr: config.peakLr,
      warmupSteps: config.warmupSteps,
      minLr: config.minLr,
      seed: config.seed,
      gradClip: config.gradClip ?? 1.0,
      adamw: { ...config.adamw },
      captureGradients: config.captureGradients ?? false,
    };
    assertCosineSchedule(resolved);
    if (
      !Number.isInteger(resolved.seed) || resolved.seed < 0 ||
      resolved.seed > Number.MAX_SAFE_INTEGER
    ) {
      throw new RangeError(
        `Cannot make a trainer: the seed must be an integer in [0, 2^53), got ${resolved.seed}`,
      );
    }
    if (!(resolved.gradClip > 0)) {
      throw new RangeError(
        `Cannot make a trainer: gradClip must be positive, got ${resolved.gradClip}`,
      );
    }
    this.model = model;
    this.config = resolved;
    this.#parameters = model.parameters();
    this.optimizer = new AdamW(model.backend, this.#parameters, resolved.adamw);
    const switchStep = this.preconditionSteps;
    if (switchStep !== undefined && !(switchStep >= 1 && switchStep < resolved.totalSteps)) {
      throw new RangeError(
        `Cannot make a trainer: STEP's precondition phase must be 1 to totalSteps − 1 steps, got ${switchStep} of ${resolved.totalSteps}`,
      );
    }
    this.#phase = this.phaseAt(0);
  }

  /** Number of optimizer steps taken (the 0-based index of the next step). */
  get step(): number {
    return this.#step;
  }

  /** The current phase (`"dense"` after the switch of `t-sr-ste+df`). */
  get phase(): TrainingPhase {
    return this.#phase;
  }

  /**
   * The first dense step of `t-sr-ste+df`: `totalSteps − round(denseFraction·totalSteps)`, so the
   * last `denseFraction` of the steps are dense; `undefined` for the other methods.
   */
  get denseSwitchStep(): number | undefined {
    const { method, denseFraction } = this.model.config.sparse;
    if (!sparseMethodTraits(method).denseTail) return undefined;
    const total = this.config.totalSteps;
    return total - Math.round(denseFraction * total);
  }

  /**
   * The number of dense precondition steps of `step`, `max(1, round(preconditionFraction·totalSteps))`
   * (its variance is frozen after them, SPEC 2.10); `undefined` for the other methods.
   */
  get preconditionSteps(): number | undefined {
    const { method, preconditionFraction } = this.model.config.sparse;
    if (!sparseMethodTraits(method).precondition) return undefined;
    return Math.max(1, Math.round(preconditionFraction * this.config.totalSteps));
  }

  /**
   * The phase of a step: `"dense"` from {@linkcode Trainer.denseSwitchStep} on (`t-sr-ste+df`) and
   * before {@linkcode Trainer.preconditionSteps} (`step`), `"sparse"` otherwise.
   *
   * @param step 0-based step.
   * @returns The phase.
   */
  phaseAt(step: number): TrainingPhase {
    const denseFrom = this.denseSwitchStep, sparseFrom = this.preconditionSteps;
    if (denseFrom !== undefined && step >= denseFrom) return "dense";
    if (sparseFrom !== undefined && step < sparseFrom) return "dense";
    return "sparse";
  }

  /**
   * The learning rate of a step.
   *
   * @param step 0-based step (default: the next step).
   * @returns `cosineLr(step, schedule)`.
   */
  lr(step: number = this.#step): number {
    return cosineLr(step, this.config);
  }

  /**
   * Runs `fn` with the trainer held: a training step, a checkpoint save or load started while
   * another one is still running (a missing `await`) throws instead of reading or writing a
   * state that is half one step and half the next.
   *
   * @param action What `fn` does, for the error message (`"save a checkpoint"`).
   * @param fn The work.
   * @returns What `fn` returns.
   * @throws {Error} If the trainer is already held, naming what holds it.
   */
  async exclusive<T>(action: string, fn: () => Promise<T>): Promise<T> {
    if (this.#busy !== undefined) {
      throw new Error(
        `Cannot ${action}: ${this.#busy} is still running (a missing await?)`,
      );
    }
    this.#busy = action === "take a training step" ? `step ${this.#step}` : `the call to ${action}`;
    try {
      return await fn();
    } finally {
      this.#busy = undefined;
    }
  }

  /**
   * Restores the step counter and the phase (used when loading a checkpoint; the caller restores
   * weights, moments and layer states).
   *
   * @param state `{ step, phase }`.
   * @throws {RangeError} On a negative or non-integer step or an unknown phase.
   */
  restore(state: { step: number; phase: TrainingPhase }): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new RangeError(`Cannot restore the trainer: bad step ${state.step}`);
    }
    if (state.phase !== "sparse" && state.phase !== "dense") {
      throw new RangeError(`Cannot restore the trainer: bad phase ${JSON.stringify(state.phase)}`);
    }
    this.#step = state.step;
    this.#phase = state.phase;
  }

  /**
   * Takes one optimizer step on a batch (see the module documentation for the order).
   *
   * @param batch Tokens, targets and batch size.
   * @returns The step's loss, learning rate, gradient norm, phase and flip rates.
   * @throws {RangeError} If the loss or the gradient norm is not finite (the weights, moments and
   * step counter are left unchanged), or from the model on a malformed batch.
   * @throws {Error} If another step, or a checkpoint save or load, is still running.
   */
  trainStep(batch: BatchOf<M>): Promise<StepResult> {
    return this.exclusive("take a training step", async () => {
      const { result } = await this.#trainStep(batch, false);
      return await result;
    });
  }

  /**
   * Records one optimizer step and submits it without waiting for its scalars: the same work as
   * {@linkcode Trainer.trainStep}, with the same values, but the step's one read is only issued, so
   * the caller can record the next step while the GPU finishes this one and its read comes back
   * (no blocking read-back inside a step; log with a lag of one step). Resolves once the step is
   * recorded (the trainer is then free for the next step, a save or a load, which see the state
   * after this step); `result` resolves when the step's read completes.
   *
   * A failed step (a non-finite loss or gradient norm) rejects `result` with the RangeError of
   * {@linkcode Trainer.trainStep}; AdamW moved nothing in it, but the step counter, the decoupled
   * SR-STE decay and any step recorded since went ahead: stop the run there.
   *
   * @param batch Tokens, targets and batch size.
   * @returns `{ result }`: the step's report, once read.
   * @throws {Error} If another step, or a checkpoint save or load, is still being recorded.
   */
  enqueueStep(batch: BatchOf<M>): Promise<{ result: Promise<StepResult> }> {
    return this.exclusive("take a training step", () => this.#trainStep(batch, true));
  }

  async #trainStep(batch: BatchOf<M>, lagged: boolean): Promise<{ result: Promise<StepResult> }> {
    const be = this.model.backend;
    const step = this.#step;
    const phase = this.phaseAt(step);
    this.#phase = phase;
    const lr = this.lr(step);
    const layers = this.model.sparseLayers();
    const frozenFrom = this.preconditionSteps;
    if (frozenFrom !== undefined && step >= frozenFrom) {
      this.optimizer.freezeVariance(layers.map((l) => l.name), frozenFrom);
    }
    for (const p of this.#parameters) p.grad = undefined;

    try {
      // Product shapes first used in the last step are timed now, between steps (SPEC §8.6).
      await be.sparseKernels?.tune();
      const flips = await this.model.beginStep({ step, seed: this.config.seed, phase });
      const tape = new Tape(be);
      const loss = (this.model as TrainableModel<BatchOf<M>>).loss(tape, batch);
      tape.backward(loss);

      const withGrad = this.#parameters.filter((p) => p.grad !== undefined);
      const grads = withGrad.map((p) => p.grad!);
      const counted = layers.flatMap((layer, i) =>
        flips[i] === undefined ? [] : [{ layer, flips: flips[i]! }]
      );

      // Clip, masked decay, AdamW — recorded without reading anything back: the clipping factor
      // is computed where the gradients are (GradClip, SPEC §4), and AdamW moves nothing when the
      // norm is not finite. AdamW applies the factor as it reads a gradient (one pass fewer per
      // parameter), except where a masked decay is added to the clipped gradient first, or where
      // the applied gradients are captured.
      const normSquared = gradNormSquared(be, grads);
      const clip: GradClip = { normSquared, maxNorm: this.config.gradClip };
      const applied: GradClip = { ...clip, applied: true };
      const sparseByName = new Map(layers.map((l) => [l.name, l]));
      const capture = this.config.captureGradients;
      const updates: [Parameter, Tensor, GradClip][] = withGrad.map((p) => {
        const layer = sparseByName.get(p.name);
        const fused = !capture && !layer?.decaysGradient;
        let g = fused ? p.grad! : be.scaleClipped(p.grad!, clip);
        if (layer !== undefined) g = layer.decayGradient(g);
        return [p, g, fused ? clip : applied];
      });
      this.optimizer.update(updates, lr, step + 1);

      // The step's one bulk read: loss, squared norm, flip counts (and the captured gradients),
      // issued now (its copies are submitted before anything below), awaited in sync mode only.
      const read = be.readMany([
        loss.value,
        normSquared,
        ...counted.map((c) => c.flips),
        ...(capture ? [...grads, ...updates.map(([, g]) => g)] : []),
      ]);
      const report = async (): Promise<StepResult> => {
        const values = await read;
        const lossValue = values[0][0];
        const gradNorm = Math.sqrt(values[1][0]);
        if (!Number.isFinite(lossValue) || !Number.isFinite(gradNorm)) {
          throw new RangeError(
            `Cannot take optimizer step ${step}: the loss is ${lossValue} and the gradient norm ${gradNorm}`,
          );
        }
        if (capture) {
          const at = 2 + counted.length;
          this.lastGradients = new Map(withGrad.map((p, i) => [p.name, values[at + i]]));
          this.lastAppliedGradients = new Map(
            withGrad.map((p, i) => [p.name, values[at + withGrad.length + i]]),
          );
        }

        // Flip rates (SPEC 2.4): per layer, and Σ flips / Σ entries over the layers that counted.
        const flipRateByLayer: Record<string, number> = {};
        let flipSum = 0, entrySum = 0;
        counted.forEach(({ layer }, i) => {
          const n = values[2 + i][0];
          flipRateByLayer[layer.name] = n / layer.maskSize;
          flipSum += n;
          entrySum += layer.maskSize;
        });

        return {
          step,
          loss: lossValue,
          lr,
          gradNorm,
          phase,
          flipRate: counted.length === 0 ? null : flipSum / entrySum,
          flipRateByLayer,
        };
      };
      // The decoupled SR-STE decay: in sync mode after the check, so a failed step moves no
      // weight (it touches nothing the read copies, so the values are the same either way).
      if (lagged) {
        const result = report();
        result.catch(() => {}); // the caller's await sees the rejection
        for (const layer of layers) layer.decayWeight(lr);
        this.#step = step + 1;
        return { result };
      }
      const result = await report();
      for (const layer of layers) layer.decayWeight(lr);
      this.#step = step + 1;
      return { result: Promise.resolve(result) };
    } finally {
      this.model.endStep();
      for (const p of this.#parameters) p.grad = undefined;
      be.release();
    }
  }
}
