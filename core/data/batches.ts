/**
 * Deterministic next-token batches: random windows of a token stream drawn by the counter-based
 * generator of `_hash.ts`, the same on every machine, in any order of calls and after a resume.
 *
 * @module
 */

import { assertSeed, splitWords, STREAM_BATCH, uniformIndex } from "./_hash.ts";

/** Options of {@linkcode getBatch}. */
export interface BatchOptions {
  /** Sequences per batch, a positive integer. */
  batchSize: number;
  /** Tokens per sequence, a positive integer; the token array needs at least `blockSize + 1`. */
  blockSize: number;
  /** Seed, an integer in `[0, 2^53)`. */
  seed: number;
  /** Training step, an integer in `[0, 2^53)`. */
  step: number;
}

/** A batch of next-token prediction windows: a GPT-2 `Batch` (`gpt2.ts`) plus its block size. */
export interface WindowBatch {
  /** `batchSize × blockSize` input ids, row-major. */
  tokens: Int32Array;
  /** The ids one position later: `targets[r, t] = tokens[r, t + 1]` within a window. */
  targets: Int32Array;
  /** Number of rows. */
  batchSize: number;
  /** Number of columns. */
  blockSize: number;
}

/**
 * A deterministic batch of random windows: row `r` of step `step` starts at a uniform position
 * `s ∈ [0, tokens.length − blockSize − 1]` drawn by the counter-based generator from the tuple
 * `(2, seed lo, seed hi, step lo, step hi, r)` (lo/hi: the value mod 2^32 and its quotient), and
 * holds the inputs `tokens[s … s + blockSize − 1]`, the targets `tokens[s + 1 … s + blockSize]`.
 * The same seed and step give the same batch on any machine and in any order of calls, so every
 * training method sees the same data, and a resumed run continues the same sequence. Windows may
 * cross document boundaries (the end-of-text token is then part of the window).
 *
 * @param tokens The token stream (a split's tokens, possibly remapped to a reduced vocabulary).
 * @param options Batch size, block size, seed and step.
 * @returns The inputs and targets.
 * @throws {RangeError} If a size is not a positive integer, the seed or step is invalid, or the
 * stream is shorter than `blockSize + 1`.
 * @example
 * ```ts
 * import { getBatch } from "./batches.ts";
 * const tokens = Uint16Array.from({ length: 100 }, (_, i) => i);
 * const b = getBatch(tokens, { batchSize: 2, blockSize: 4, seed: 1, step: 0 });
 * if (b.targets[0] !== b.tokens[0] + 1) throw new Error("targets are not shifted");
 * ```
 */
export function getBatch(tokens: ArrayLike<number>, options: BatchOptions): WindowBatch {
  const action = "draw a batch";
  const { batchSize, blockSize, seed, step } = options;
  for (const [name, value] of [["batchSize", batchSize], ["blockSize", blockSize]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`Cannot ${action}: ${name} must be a positive integer, got ${value}`);
    }
  }
  assertSeed(seed, "the seed", action);
  assertSeed(step, "the step", action);
  const windows = tokens.length - blockSize;
  if (windows < 1) {
    throw new RangeError(
      `Cannot ${action}: the token stream needs at least blockSize + 1 = ${
        blockSize + 1
      } tokens, got ${tokens.length}`,
    );
  }
  const [seedLo, seedHi] = splitWords(seed);
  const [stepLo, stepHi] = splitWords(step);
  const inputs = new Int32Array(batchSize * blockSize);
  const targets = new Int32Array(batchSize * blockSize);
  for (let r = 0; r < batchSize; r++) {
    const s = uniformIndex(windows, [STREAM_BATCH, seedLo, seedHi, stepLo, stepHi, r]);
    for (let t = 0; t < blockSize; t++) {
      inputs[r * blockSize + t] = tokens[s + t];
      targets[r * blockSize + t] = tokens[s + t + 1];
    }
  }
  return { tokens: inputs, targets, batchSize, blockSize };
}

/** Options of {@linkcode batchIterator}. */
export interface BatchIteratorOptions {
  /** Sequences per batch. */
  batchSize: number;
  /** Tokens per sequence. */
  blockSize: number;
  /** Seed, an integer in `[0, 2^53)`. */
  seed: number;
  /** First step (default 0), e.g. the step a resumed run continues from. */
  startStep?: number;
  /** Number of batches (default: unbounded). */
  steps?: number;
}

/**
 * The batches of consecutive steps: `getBatch(tokens, { ..., step })` for
 * `step = startStep, startStep + 1, …`.
 *
 * @param tokens The token stream.
 * @param options Batch size, block size, seed, first step and number of steps.
 * @returns A generator of batches.
 * @throws {RangeError} As {@linkcode getBatch}, on the first `next()`, or if `steps` is invalid.
 * @example
 * ```ts
 * import { batchIterator, getBatch } from "./batches.ts";
 * const tokens = Uint16Array.from({ length: 50 }, (_, i) => i);
 * const options = { batchSize: 1, blockSize: 3, seed: 4, startStep: 7, steps: 2 };
 * const batches = [...batchIterator(tokens, options)];
 * const again = getBatch(tokens, { batchSize: 1, blockSize: 3, seed: 4, step: 8 });
 * if (batches.length !== 2 || batches[1].tokens.join() !== again.tokens.join()) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function* batchIterator(
  tokens: ArrayLike<number>,
  options: BatchIteratorOptions,
): Generator<WindowBatch, void, void> {
  const start = options.startStep ?? 0;
  const steps = options.steps ?? Infinity;
  if (steps !== Infinity && (!Number.isInteger(steps) || steps < 0)) {
    throw new RangeError(
      `Cannot iterate batches: steps must be a non-negative integer, got ${steps}`,
    );
  }
  for (let i = 0; i < steps; i++) {
    yield getBatch(tokens, { ...options, step: start + i });
  }
}
