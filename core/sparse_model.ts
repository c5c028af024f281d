/**
 * What the models with 2:4 layers share (GPT-2 and the ViT): their parameter list, their sparse
 * layers and the bracket of an optimizer step around those layers — the side of a model the
 * `Trainer` sees (`TrainableModel`).
 *
 * @module
 */

import type { Tensor } from "./backend.ts";
import type { Module, Parameter } from "./nn.ts";
import type { SparseLinear, StepContext } from "./sparse.ts";

/** A model with 2:4 sparse layers: subclasses build their modules, then {@linkcode register}. */
export abstract class SparseModel implements Module {
  #parameters: Parameter[] = [];
  #sparseLayers: SparseLinear[] = [];
  #step: StepContext | undefined = undefined;

  /**
   * Records the model's parameters (in the model's order) and its sparse layers (in `layerIndex`
   * order); called once by the subclass's constructor.
   *
   * @param parameters Every parameter.
   * @param sparseLayers The 2:4 layers.
   */
  protected register(parameters: Parameter[], sparseLayers: SparseLinear[]): void {
    this.#parameters = parameters;
    this.#sparseLayers = sparseLayers;
  }

  /**
   * Computes every sparse layer's initial state (S-STE's β, SPEC 1.3); once, after building.
   *
   * @returns The model, ready to train.
   */
  protected async initialized(): Promise<this> {
    for (const layer of this.#sparseLayers) await layer.initialize();
    return this;
  }

  /** The open optimizer step, or `undefined` between steps. */
  protected get openStep(): StepContext | undefined {
    return this.#step;
  }

  /** Every parameter, in the model's order. */
  parameters(): Parameter[] {
    return [...this.#parameters];
  }

  /** The 2:4 sparse layers, in parameter order (their `layerIndex`). */
  sparseLayers(): SparseLinear[] {
    return [...this.#sparseLayers];
  }

  /** Total number of parameter values. */
  get parameterCount(): number {
    return this.#parameters.reduce((n, p) => n + p.size, 0);
  }

  /**
   * Starts an optimizer step: every sparse layer builds its `W̃` and mask (see
   * `SparseLinear.beginStep`); the forward pass is the training one until {@linkcode endStep}.
   *
   * @param ctx The step, the run seed and the phase.
   * @returns Each sparse layer's flip count (`[1]` tensor) or `undefined` where no mask was computed.
   * @throws {Error} If a step is already open.
   */
  async beginStep(ctx: StepContext): Promise<(Tensor | undefined)[]> {
    if (this.#step !== undefined) {
      throw new Error(`Cannot begin step ${ctx.step}: step ${this.#step.step} is still open`);
    }
    const flips: (Tensor | undefined)[] = [];
    for (const layer of this.#sparseLayers) flips.push(await layer.beginStep(ctx));
    this.#step = ctx;
    return flips;
  }

  /** Ends the open step (before `backend.release()`). */
  endStep(): void {
    for (const layer of this.#sparseLayers) layer.endStep();
    this.#step = undefined;
  }
}
