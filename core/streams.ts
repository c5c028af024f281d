/**
 * Where every random draw of a run comes from. All randomness is counter-based (`reference/rng.ts`:
 * Philox4x32-10 keyed by the run seed, indexed by `(stream, counter)`), so the pair (seed, step)
 * determines every draw, a resumed run draws exactly the uniforms an uninterrupted one would, and
 * the reference and WebGPU backends draw the same ones.
 *
 * Streams are laid out in blocks of {@linkcode STREAMS_PER_BLOCK} = 4096: block 0 holds the weight
 * initialisation (one stream per parameter, in the model's parameter order); block `step + 1` holds
 * the draws of optimizer step `step` (0-based):
 *
 * | slot in the block | use |
 * |---|---|
 * | `i` (0 ≤ i < 1024) | MVUE of `∇Zᵀ` of sparse layer `i` (its weight gradient) |
 * | `1024 + i` | MVUE of `W̃ᵀ` of sparse layer `i` (the `mvueOnWeight` ablation) |
 * | `2048 + j` (0 ≤ j < 2048) | dropout site `j` |
 *
 * so `stream = (step + 1)·4096 + slot`, which stays below 2^32 for steps below 2^20 − 1.
 *
 * @module
 */

/** Number of streams reserved per optimizer step (and for initialisation). */
export const STREAMS_PER_BLOCK = 4096;
/** Largest number of sparse layers a model may have (slots per MVUE operand). */
export const MAX_SPARSE_LAYERS = 1024;
/** Largest number of dropout sites a model may have. */
export const MAX_DROPOUT_SITES = 2048;
/** Optimizer steps must be below this bound (streams are 32-bit). */
export const MAX_STEPS = 2 ** 32 / STREAMS_PER_BLOCK - 1;

function checkIndex(value: number, bound: number, name: string, action: string): void {
  if (!Number.isInteger(value) || value < 0 || value >= bound) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be an integer in [0, ${bound}), got ${value}`,
    );
  }
}

/**
 * The stream of the initial values of parameter number `parameterIndex` (block 0).
 *
 * @param parameterIndex Position of the parameter in the model's parameter order.
 * @returns The stream.
 * @throws {RangeError} If the index is not an integer in `[0, 4096)`.
 */
export function initStream(parameterIndex: number): number {
  checkIndex(parameterIndex, STREAMS_PER_BLOCK, "the parameter index", "pick an init stream");
  return parameterIndex;
}

/**
 * The stream of an MVUE draw in optimizer step `step` for sparse layer `layer`: slot `layer` for
 * the weight-gradient operand `∇Zᵀ`, slot `1024 + layer` for the `mvueOnWeight` operand `W̃ᵀ`.
 *
 * @param step 0-based optimizer step.
 * @param layer 0-based index of the sparse layer in the model.
 * @param operand `"gradient"` (`∇Zᵀ`, default) or `"weight"` (`W̃ᵀ`).
 * @returns The stream.
 * @throws {RangeError} If `step` or `layer` is out of range.
 * @example
 * ```ts
 * import { mvueStream } from "./streams.ts";
 * if (mvueStream(0, 0) !== 4096 || mvueStream(2, 1, "weight") !== 3 * 4096 + 1025) {
 *   throw new Error("unexpected layout");
 * }
 * ```
 */
export function mvueStream(
  step: number,
  layer: number,
  operand: "gradient" | "weight" = "gradient",
): number {
  const action = "pick an MVUE stream";
  checkIndex(step, MAX_STEPS, "the step", action);
  checkIndex(layer, MAX_SPARSE_LAYERS, "the sparse-layer index", action);
  const slot = operand === "weight" ? MAX_SPARSE_LAYERS + layer : layer;
  return (step + 1) * STREAMS_PER_BLOCK + slot;
}

/**
 * The stream of dropout site `site` in optimizer step `step`.
 *
 * @param step 0-based optimizer step.
 * @param site 0-based dropout site (the model numbers its sites).
 * @returns The stream.
 * @throws {RangeError} If `step` or `site` is out of range.
 */
export function dropoutStream(step: number, site: number): number {
  const action = "pick a dropout stream";
  checkIndex(step, MAX_STEPS, "the step", action);
  checkIndex(site, MAX_DROPOUT_SITES, "the dropout site", action);
  return (step + 1) * STREAMS_PER_BLOCK + 2 * MAX_SPARSE_LAYERS + site;
}
