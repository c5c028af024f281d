/**
 * Vocabulary reduction for small models: dense ids for the most frequent GPT-2 ids of the
 * training split and one `<unk>` for the rest, cached as `vocab_<size>.json`; and decoding ids
 * back to text for samples.
 *
 * @module
 */

import { writeFileAtomic } from "../safetensors.ts";
import { DataCacheError, DEFAULT_BROWN_DIR, GPT2_VOCAB_SIZE } from "./cache.ts";
import { loadBrown } from "./brown.ts";

/**
 * A vocabulary for a small model: dense ids `0 … size − 1` standing for the most frequent source
 * (GPT-2) ids, the last one for every other id.
 */
export interface Vocab {
  /** Number of dense ids (the model's embedding rows). */
  size: number;
  /** The dense id of `<unk>` (`size − 1`), or −1 for the full vocabulary (no unknown id). */
  unkId: number;
  /** Size of the source vocabulary (50257 for GPT-2). */
  sourceVocabSize: number;
  /** The source id of each dense id; −1 at `unkId`. */
  sourceIds: Int32Array;
  /**
   * Maps source ids to dense ids.
   *
   * @throws {RangeError} If an id is not an integer in `[0, sourceVocabSize)`.
   */
  remap(tokens: ArrayLike<number>): Uint16Array;
}

/** Options of {@linkcode buildVocab}. */
export interface BuildVocabOptions {
  /** The source vocabulary size (default {@linkcode GPT2_VOCAB_SIZE}). */
  sourceVocabSize?: number;
}

/**
 * Builds a reduced vocabulary from training tokens: dense ids `0 … size − 2` are the `size − 1`
 * most frequent source ids in order of decreasing count (ties: the smaller id first; ids that never
 * occur count 0), dense id `size − 1` is `<unk>`. With `size` 0 or undefined, the full source
 * vocabulary with the identity map and no `<unk>`.
 *
 * @param trainTokens The training tokens (source ids).
 * @param size The reduced size, an integer in `[2, sourceVocabSize]`, or 0/undefined for full.
 * @param options The source vocabulary size.
 * @returns The vocabulary.
 * @throws {RangeError} If `size` is out of range or a token is outside the source vocabulary.
 * @example
 * ```ts
 * import { buildVocab } from "./vocab.ts";
 * const vocab = buildVocab([5, 5, 5, 2, 2, 9, 7], 3, { sourceVocabSize: 10 });
 * // 5 (3×) → 0, 2 (2×) → 1, everything else → <unk> = 2.
 * if (vocab.remap([5, 2, 9, 0]).join() !== "0,1,2,2") throw new Error("unexpected");
 * ```
 */
export function buildVocab(
  trainTokens: ArrayLike<number>,
  size?: number,
  options: BuildVocabOptions = {},
): Vocab {
  const action = "build a vocabulary";
  const sourceVocabSize = options.sourceVocabSize ?? GPT2_VOCAB_SIZE;
  if (!Number.isInteger(sourceVocabSize) || sourceVocabSize < 1 || sourceVocabSize > 65536) {
    throw new RangeError(
      `Cannot ${action}: sourceVocabSize must be an integer in [1, 65536], got ${sourceVocabSize}`,
    );
  }
  if (size === undefined || size === 0) {
    const ids = new Int32Array(sourceVocabSize);
    for (let i = 0; i < sourceVocabSize; i++) ids[i] = i;
    return makeVocab(ids, -1, sourceVocabSize);
  }
  if (!Number.isInteger(size) || size < 2 || size > sourceVocabSize) {
    throw new RangeError(
      `Cannot ${action}: size must be 0 (full) or an integer in [2, ${sourceVocabSize}], ` +
        `got ${size}`,
    );
  }
  const counts = new Float64Array(sourceVocabSize);
  for (let i = 0; i < trainTokens.length; i++) {
    const t = trainTokens[i];
    if (!(t >= 0 && t < sourceVocabSize && Number.isInteger(t))) {
      throw new RangeError(
        `Cannot ${action}: token ${i} is ${t}, outside [0, ${sourceVocabSize})`,
      );
    }
    counts[t]++;
  }
  const order = Array.from({ length: sourceVocabSize }, (_, i) => i);
  order.sort((a, b) => counts[b] - counts[a] || a - b);
  const ids = new Int32Array(size);
  for (let i = 0; i < size - 1; i++) ids[i] = order[i];
  ids[size - 1] = -1;
  return makeVocab(ids, size - 1, sourceVocabSize);
}

function makeVocab(sourceIds: Int32Array, unkId: number, sourceVocabSize: number): Vocab {
  const dense = new Int32Array(sourceVocabSize).fill(unkId);
  for (let i = 0; i < sourceIds.length; i++) if (sourceIds[i] >= 0) dense[sourceIds[i]] = i;
  return {
    size: sourceIds.length,
    unkId,
    sourceVocabSize,
    sourceIds,
    remap(tokens: ArrayLike<number>): Uint16Array {
      const out = new Uint16Array(tokens.length);
      for (let i = 0; i < tokens.length; i++) {
        const t = tokens[i];
        if (!(t >= 0 && t < sourceVocabSize && Number.isInteger(t))) {
          throw new RangeError(
            `Cannot remap tokens: token ${i} is ${t}, outside [0, ${sourceVocabSize})`,
          );
        }
        out[i] = dense[t];
      }
      return out;
    },
  };
}

/**
 * Where {@linkcode loadVocab} keeps the reduced vocabulary of `size` ids in a cache directory.
 *
 * @param dir The cache directory.
 * @param size The reduced size.
 * @returns `<dir>/vocab_<size>.json`.
 * @example
 * ```ts
 * import { vocabPath } from "./vocab.ts";
 * if (vocabPath("data/brown", 512) !== "data/brown/vocab_512.json") throw new Error("unexpected");
 * ```
 */
export function vocabPath(dir: string, size: number): string {
  return `${dir}/vocab_${size}.json`;
}

/** Options of {@linkcode loadVocab}. */
export interface LoadVocabOptions {
  /** Where the line saying that the file is (re)built goes (default `console.log`). */
  log?: (line: string) => void;
}

/**
 * The reduced vocabulary of a prepared Brown cache, stored as `vocab_<size>.json` in it: read
 * when present and built from the same `train.bin` (its checksum is recorded), otherwise built
 * with {@linkcode buildVocab} from `train.bin` and written. File fields: `format`, `version`,
 * `size`, `unkId`, `sourceVocabSize`, `trainChecksum`, `coverage` (fraction of training tokens
 * that are not `<unk>`) and `ids` (the source id of dense ids `0 … size − 2`).
 *
 * @param dir The cache directory (default {@linkcode DEFAULT_BROWN_DIR}).
 * @param size The reduced size (see {@linkcode buildVocab}); 0/undefined gives the full GPT-2
 * vocabulary without touching any file.
 * @param options `{ log }`: a (re)build is announced, never silent.
 * @returns The vocabulary.
 * @throws {DataCacheError} If the cache is missing or corrupt, or the vocabulary file is corrupt.
 * @throws {RangeError} If `size` is out of range.
 */
export async function loadVocab(
  dir: string = DEFAULT_BROWN_DIR,
  size?: number,
  options: LoadVocabOptions = {},
): Promise<Vocab> {
  if (size === undefined || size === 0) return buildVocab([], 0);
  if (!Number.isInteger(size) || size < 2 || size > GPT2_VOCAB_SIZE) {
    throw new RangeError(
      `Cannot load a vocabulary: size must be 0 (full) or an integer in ` +
        `[2, ${GPT2_VOCAB_SIZE}], got ${size}`,
    );
  }
  const data = await loadBrown(dir);
  const path = vocabPath(dir, size);
  const trainChecksum = data.meta.splits.train.checksum;
  let stored: Record<string, unknown> | undefined;
  try {
    stored = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new DataCacheError(`Cannot load vocabulary ${path}: invalid JSON (${e.message})`);
    }
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (stored !== undefined && stored.trainChecksum === trainChecksum) {
    const ids = stored.ids;
    const valid = stored.format === "twofour-vocab" && stored.version === 1 &&
      stored.size === size && Array.isArray(ids) && ids.length === size - 1 &&
      ids.every((id) => Number.isInteger(id) && id >= 0 && id < GPT2_VOCAB_SIZE) &&
      new Set(ids).size === ids.length;
    if (!valid) throw new DataCacheError(`Cannot load vocabulary ${path}: malformed contents`);
    return makeVocab(Int32Array.from([...ids as number[], -1]), size - 1, GPT2_VOCAB_SIZE);
  }
  (options.log ?? console.log)(
    `Vocabulary ${path} ${
      stored === undefined ? "does not exist" : "was built from another train.bin"
    }; building it.`,
  );
  const vocab = buildVocab(data.train.tokens, size);
  const remapped = vocab.remap(data.train.tokens);
  let known = 0;
  for (let i = 0; i < remapped.length; i++) if (remapped[i] !== vocab.unkId) known++;
  const file = {
    format: "twofour-vocab",
    version: 1,
    size,
    unkId: vocab.unkId,
    sourceVocabSize: GPT2_VOCAB_SIZE,
    trainChecksum,
    coverage: known / remapped.length,
    ids: Array.from(vocab.sourceIds.subarray(0, size - 1)),
  };
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(file) + "\n"));
  return vocab;
}

/**
 * Decodes GPT-2 token ids (or ids of a reduced vocabulary) back to text, for printing samples.
 * Imports the tokenizer package (so needs it installed or the network); `<unk>` stands for the
 * unknown id of a reduced vocabulary.
 *
 * @param tokens Token ids.
 * @param vocab The reduced vocabulary the ids belong to (default: GPT-2 ids).
 * @returns The text.
 * @throws {RangeError} If an id is outside the vocabulary.
 */
export async function decodeTokens(tokens: ArrayLike<number>, vocab?: Vocab): Promise<string> {
  const bpe = await import("gpt-tokenizer/encoding/r50k_base");
  const size = vocab?.size ?? GPT2_VOCAB_SIZE;
  let text = "";
  let pending: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= size) {
      throw new RangeError(`Cannot decode tokens: token ${i} is ${t}, outside [0, ${size})`);
    }
    const source = vocab === undefined ? t : vocab.sourceIds[t];
    if (source < 0) {
      text += bpe.decode(pending) + "<unk>";
      pending = [];
    } else {
      pending.push(source);
    }
  }
  return text + bpe.decode(pending);
}
