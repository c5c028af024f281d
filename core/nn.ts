/**
 * Dense modules: {@linkcode Parameter}, {@linkcode Linear} (no bias, `W[out, in]`, `Z = X·Wᵀ`),
 * {@linkcode LayerNorm} and {@linkcode Embedding}. The 2:4 sparse linear layer lives in
 * `sparse.ts`.
 *
 * Parameters hold persistent backend tensors (`backend.keep`); initial values are host arrays
 * (`init.ts`), so every backend starts from the same bits.
 *
 * @module
 */

import type { Backend, Tensor } from "./backend.ts";
import { type Tape, Variable } from "./autograd.ts";
import * as ops from "./ops.ts";

/** A trainable tensor: a named {@linkcode Variable} with a persistent value. */
export class Parameter extends Variable {
  /** The parameter's name (nanoGPT's state-dict name, e.g. `transformer.wte.weight`). */
  declare readonly name: string;
  /** Whether AdamW applies decoupled weight decay to it (not to norms, biases, embeddings). */
  readonly weightDecay: boolean;

  /**
   * Uploads `data` as a persistent tensor.
   *
   * @param backend The backend.
   * @param name The parameter's name.
   * @param data Initial values (row-major).
   * @param shape The shape (its product must equal `data.length`).
   * @param options `{ weightDecay }` (default `false`).
   * @throws {RangeError} From the backend, if `data` does not match `shape`.
   */
  constructor(
    backend: Backend,
    name: string,
    data: Float32Array,
    shape: readonly number[],
    options: { weightDecay?: boolean } = {},
  ) {
    super(backend.keep(backend.tensor(data, shape)), { requiresGrad: true, name });
    this.weightDecay = options.weightDecay ?? false;
  }

  /** Number of elements. */
  get size(): number {
    return this.value.size;
  }
}

/** Anything that owns parameters. */
export interface Module {
  /** The module's parameters, in a fixed order. */
  parameters(): Parameter[];
}

/**
 * A bias-free linear layer `Z = X·Wᵀ`, `W[out, in]`; AdamW decays its weight.
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { Tape, Variable } from "./autograd.ts";
 * import { Linear } from "./nn.ts";
 * const backend = new ReferenceBackend();
 * const layer = new Linear(backend, "fc.weight", new Float32Array([1, 0, 0, 2]), 2, 2);
 * const tape = new Tape(backend, { recording: false });
 * const x = new Variable(backend.tensor(new Float32Array([3, 4]), [1, 2]));
 * const z = await backend.read(layer.forward(tape, x).value);
 * if (z[0] !== 3 || z[1] !== 8) throw new Error("unexpected");
 * ```
 */
export class Linear implements Module {
  /** The weight `[out, in]`. */
  readonly weight: Parameter;

  /**
   * Creates the layer with the given initial weight.
   *
   * @param backend The backend.
   * @param name The weight's name.
   * @param init Initial weight values `[out, in]`, row-major.
   * @param inFeatures Input width.
   * @param outFeatures Output width.
   */
  constructor(
    backend: Backend,
    name: string,
    init: Float32Array,
    inFeatures: number,
    outFeatures: number,
  ) {
    this.weight = new Parameter(backend, name, init, [outFeatures, inFeatures], {
      weightDecay: true,
    });
  }

  /** Returns `[weight]`. */
  parameters(): Parameter[] {
    return [this.weight];
  }

  /**
   * `Z = X·Wᵀ`.
   *
   * @param tape The tape.
   * @param x Input `[T, in]`.
   * @returns `[T, out]`.
   */
  forward(tape: Tape, x: Variable): Variable {
    return ops.linear(tape, x, this.weight);
  }
}

/** LayerNorm with a scale (init 1) and a shift (init 0), neither decayed. */
export class LayerNorm implements Module {
  /** The scale `[d]`. */
  readonly weight: Parameter;
  /** The shift `[d]`. */
  readonly bias: Parameter;
  /** The variance epsilon. */
  readonly eps: number;

  /**
   * Creates the norm with scale 1 and shift 0.
   *
   * @param backend The backend.
   * @param name Prefix of the parameter names (`<name>.weight`, `<name>.bias`).
   * @param width `d`.
   * @param options `{ eps }` (default `1e-5`).
   */
  constructor(backend: Backend, name: string, width: number, options: { eps?: number } = {}) {
    this.weight = new Parameter(backend, `${name}.weight`, new Float32Array(width).fill(1), [
      width,
    ]);
    this.bias = new Parameter(backend, `${name}.bias`, new Float32Array(width), [width]);
    this.eps = options.eps ?? 1e-5;
  }

  /** Returns `[weight, bias]`. */
  parameters(): Parameter[] {
    return [this.weight, this.bias];
  }

  /**
   * Normalises each row of `x[N, d]`.
   *
   * @param tape The tape.
   * @param x Input `[N, d]`.
   * @returns `[N, d]`.
   */
  forward(tape: Tape, x: Variable): Variable {
    return ops.layerNorm(tape, x, this.weight, this.bias, { eps: this.eps });
  }

  /**
   * Normalises a residual stream, adding its pending branch first in the same pass
   * (`ops.addLayerNorm`).
   *
   * @param tape The tape.
   * @param stream The stream `x [N, d]` and the branch not yet added to it, if any.
   * @returns The stream with its branch added (`x`) and its normalisation (`y`).
   */
  forwardResidual(tape: Tape, stream: ResidualStream): { x: Variable; y: Variable } {
    const { x, pending } = stream;
    if (pending === undefined) return { x, y: this.forward(tape, x) };
    const opts = { eps: this.eps };
    const [sum, y] = ops.addLayerNorm(tape, [x, pending], this.weight, this.bias, opts);
    return { x: sum, y };
  }
}

/**
 * A residual stream whose last branch is not added yet: the next LayerNorm adds it in its own pass
 * ({@linkcode LayerNorm.forwardResidual}), saving the separate add.
 */
export interface ResidualStream {
  /** The stream so far `[N, d]`. */
  x: Variable;
  /** A branch `[N, d]` still to be added to `x`. */
  pending?: Variable;
}

/** A lookup table `[V, d]` (not decayed). */
export class Embedding implements Module {
  /** The table `[V, d]`. */
  readonly weight: Parameter;

  /**
   * Creates the table with the given initial values.
   *
   * @param backend The backend.
   * @param name The table's name.
   * @param init Initial values `[V, d]`, row-major.
   * @param count `V`.
   * @param width `d`.
   */
  constructor(backend: Backend, name: string, init: Float32Array, count: number, width: number) {
    this.weight = new Parameter(backend, name, init, [count, width]);
  }

  /** Returns `[weight]`. */
  parameters(): Parameter[] {
    return [this.weight];
  }

  /**
   * Rows picked by `indices`.
   *
   * @param tape The tape.
   * @param indices An `i32` tensor `[N]`.
   * @returns `[N, d]`.
   */
  forward(tape: Tape, indices: Tensor): Variable {
    return ops.embedding(tape, this.weight, indices);
  }
}
