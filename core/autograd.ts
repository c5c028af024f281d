/**
 * Reverse-mode automatic differentiation over backend tensors.
 *
 * A {@linkcode Variable} wraps a {@linkcode Tensor} and, after {@linkcode Tape.backward}, its
 * gradient. Every operation of `ops.ts` computes its output with the backend and, when one of its
 * inputs needs a gradient, records a backward closure on the {@linkcode Tape}. `backward(loss)`
 * seeds the loss gradient with a `[1]` tensor holding 1 and runs the closures in reverse order of
 * recording (a valid topological order, since an operation is recorded after its inputs exist);
 * gradients reaching the same variable twice are summed with the backend's `add`.
 *
 * The tape holds no tensors of its own: gradients are backend temporaries, freed by the next
 * `backend.release()` like every other activation of the step.
 *
 * @module
 */

import type { Backend, Tensor } from "./backend.ts";

/** Options of the {@linkcode Variable} constructor. */
export interface VariableOptions {
  /** Whether gradients flow to this variable (default `false`). */
  requiresGrad?: boolean;
  /** A name for messages (parameters carry their nanoGPT name). */
  name?: string;
}

/** A value in the computation graph: a tensor, and its gradient once `backward` has reached it. */
export class Variable {
  /** The value. */
  value: Tensor;
  /** `∂loss/∂value` after {@linkcode Tape.backward}; `undefined` until a gradient arrives. */
  grad: Tensor | undefined = undefined;
  /** Whether gradients flow to (and through) this variable. */
  readonly requiresGrad: boolean;
  /** Optional name, used in error messages. */
  readonly name: string | undefined;

  /**
   * Wraps a tensor.
   *
   * @param value The tensor.
   * @param options `{ requiresGrad, name }`.
   */
  constructor(value: Tensor, options: VariableOptions = {}) {
    this.value = value;
    this.requiresGrad = options.requiresGrad ?? false;
    this.name = options.name;
  }

  /** The value's shape. */
  get shape(): readonly number[] {
    return this.value.shape;
  }
}

/** Options of the {@linkcode Tape} constructor. */
export interface TapeOptions {
  /**
   * Record backward closures (default `true`). A tape with `recording: false` evaluates a model
   * without building a graph (evaluation, finite differences).
   */
  recording?: boolean;
}

interface TapeNode {
  outputs: readonly Variable[];
  backward: (grads: readonly (Tensor | undefined)[]) => void;
}

/**
 * Records the backward closures of one forward pass and runs them in reverse.
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { Tape, Variable } from "./autograd.ts";
 * import { mul } from "./ops.ts";
 * const backend = new ReferenceBackend();
 * const tape = new Tape(backend);
 * const x = new Variable(backend.tensor(new Float32Array([3]), [1]), { requiresGrad: true });
 * tape.backward(mul(tape, x, x)); // d(x²)/dx = 2x
 * const [g] = await backend.read(x.grad!);
 * if (g !== 6) throw new Error(`unexpected gradient ${g}`);
 * ```
 */
export class Tape {
  /** The backend every recorded operation runs on. */
  readonly backend: Backend;
  /** Whether operations record backward closures. */
  readonly recording: boolean;
  #nodes: TapeNode[] = [];

  /**
   * Makes an empty tape.
   *
   * @param backend The backend of every tensor on this tape.
   * @param options `{ recording }` (default `true`).
   */
  constructor(backend: Backend, options: TapeOptions = {}) {
    this.backend = backend;
    this.recording = options.recording ?? true;
  }

  /** Number of recorded backward closures. */
  get size(): number {
    return this.#nodes.length;
  }

  /**
   * Wraps an operation's output and, if the tape records and an input needs a gradient, records
   * `backward`, which receives `∂loss/∂output` and must {@linkcode Tape.accumulate} into the inputs.
   *
   * @param value The operation's output tensor.
   * @param inputs The operation's differentiable inputs.
   * @param backward The backward closure.
   * @returns The output variable (requiring a gradient iff the closure was recorded).
   */
  record(
    value: Tensor,
    inputs: readonly Variable[],
    backward: (grad: Tensor) => void,
  ): Variable {
    return this.recordMany([value], inputs, ([grad]) => backward(grad!))[0];
  }

  /**
   * {@linkcode Tape.record} for an operation with several outputs: `backward` runs once, after
   * every output's consumers, if any output has a gradient by then, and receives each output's
   * gradient (`undefined` for one that got none).
   *
   * @param values The operation's output tensors.
   * @param inputs The operation's differentiable inputs.
   * @param backward The backward closure.
   * @returns The output variables, in order.
   */
  recordMany(
    values: readonly Tensor[],
    inputs: readonly Variable[],
    backward: (grads: readonly (Tensor | undefined)[]) => void,
  ): Variable[] {
    const requiresGrad = this.recording && inputs.some((v) => v.requiresGrad);
    const outputs = values.map((value) => new Variable(value, { requiresGrad }));
    if (requiresGrad) this.#nodes.push({ outputs, backward });
    return outputs;
  }

  /**
   * Adds `grad` to `v.grad` (or sets it); does nothing when `v` needs no gradient.
   *
   * @param v The variable receiving the gradient.
   * @param grad A tensor of `v`'s shape.
   * @throws {RangeError} If the shapes differ.
   */
  accumulate(v: Variable, grad: Tensor): void {
    if (!v.requiresGrad) return;
    if (!sameShape(v.value.shape, grad.shape)) {
      throw new RangeError(
        `Cannot accumulate the gradient of ${v.name ?? "a variable"}: shape [${v.value.shape}] ` +
          `vs gradient shape [${grad.shape}]`,
      );
    }
    v.grad = v.grad === undefined ? grad : this.backend.add(v.grad, grad);
  }

  /**
   * Back-propagates from a scalar: seeds `loss.grad` with a `[1]` tensor of 1 (added to any
   * gradient it already has) and runs every recorded closure in reverse order, then clears the tape.
   *
   * @param loss A `[1]`-shaped variable recorded on this tape.
   * @throws {RangeError} If `loss` is not `[1]`-shaped.
   * @throws {Error} If the tape does not record, or `loss` needs no gradient.
   */
  backward(loss: Variable): void {
    if (loss.value.shape.length !== 1 || loss.value.shape[0] !== 1) {
      throw new RangeError(
        `Cannot back-propagate: the loss must have shape [1], got [${loss.value.shape}]`,
      );
    }
    if (!this.recording) {
      throw new Error("Cannot back-propagate: this tape was created with recording: false");
    }
    if (!loss.requiresGrad) {
      throw new Error(
        "Cannot back-propagate: the loss does not depend on any variable needing a gradient",
      );
    }
    this.accumulate(loss, this.backend.full([1], 1));
    const nodes = this.#nodes;
    this.#nodes = [];
    for (let i = nodes.length - 1; i >= 0; i--) {
      const { outputs, backward } = nodes[i];
      const grads = outputs.map((o) => o.grad);
      if (grads.some((g) => g !== undefined)) backward(grads);
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
