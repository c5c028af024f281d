/**
 * The train/validation split of the corpus: by document, stratified by genre, drawn by the
 * counter-based generator of `_hash.ts` (so the split is the same on every machine).
 *
 * @module
 */

import { BROWN_GENRES } from "./genres.ts";
import { assertSeed, splitWords, STREAM_SPLIT, uniformIndex } from "./_hash.ts";
/** Options of {@linkcode stratifiedSplit}. */
export interface SplitOptions {
  /** Seed of the shuffle, an integer in `[0, 2^53)` (default 1337). */
  seed?: number;
  /** Fraction of each genre's documents that goes to validation, in `(0, 1)` (default 0.1). */
  valFraction?: number;
}

/**
 * Splits documents into train and validation by document, stratified by genre.
 *
 * Per genre (in {@linkcode BROWN_GENRES} order; genres are matched by name, unknown names are
 * stratified after them in first-seen order), the `n` documents sorted by id are shuffled by a
 * Fisher–Yates shuffle driven by the counter-based generator (tuple `(1, seed lo, seed hi,
 * stratum, i)` for position `i`, from the last position down), and the first
 * `k = clamp(round(n · valFraction), 1, n − 1)` go to validation (`k = 0` when `n = 1`). So every
 * genre with two or more documents is in both splits.
 *
 * @param documents Each document's id and genre; ids must be unique.
 * @param options Seed and validation fraction.
 * @returns The ids of each split, in input order.
 * @throws {RangeError} If an id repeats, the seed is invalid or `valFraction` is not in `(0, 1)`.
 * @example
 * ```ts
 * import { stratifiedSplit } from "./split.ts";
 * const docs = [1, 2, 3, 4, 5].flatMap((i) => [
 *   { id: `a${i}`, genre: "news" },
 *   { id: `k${i}`, genre: "fiction" },
 * ]);
 * const { train, val } = stratifiedSplit(docs, { seed: 7, valFraction: 0.2 });
 * if (train.length !== 8 || val.length !== 2) throw new Error("unexpected");
 * ```
 */
export function stratifiedSplit(
  documents: readonly { id: string; genre: string }[],
  options: SplitOptions = {},
): { train: string[]; val: string[] } {
  const action = "split the documents";
  const seed = options.seed ?? 1337;
  const valFraction = options.valFraction ?? 0.1;
  assertSeed(seed, "the seed", action);
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new RangeError(`Cannot ${action}: valFraction must be in (0, 1), got ${valFraction}`);
  }
  const seen = new Set<string>();
  const strata = new Map<string, string[]>();
  for (const g of BROWN_GENRES) strata.set(g.name, []);
  for (const d of documents) {
    if (seen.has(d.id)) throw new RangeError(`Cannot ${action}: duplicate document id ${d.id}`);
    seen.add(d.id);
    if (!strata.has(d.genre)) strata.set(d.genre, []);
    strata.get(d.genre)!.push(d.id);
  }
  const [seedLo, seedHi] = splitWords(seed);
  const valIds = new Set<string>();
  let stratum = 0;
  for (const ids of strata.values()) {
    const order = [...ids].sort();
    for (let i = order.length - 1; i > 0; i--) {
      const j = uniformIndex(i + 1, [STREAM_SPLIT, seedLo, seedHi, stratum, i]);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const n = order.length;
    const k = n < 2 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * valFraction)));
    for (let i = 0; i < k; i++) valIds.add(order[i]);
    stratum++;
  }
  const train: string[] = [];
  const val: string[] = [];
  for (const d of documents) (valIds.has(d.id) ? val : train).push(d.id);
  return { train, val };
}
