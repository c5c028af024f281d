/**
 * Labelled passages for genre classification, the project's stand-in for GLUE-style fine-tuning:
 * non-overlapping windows cut out of each document of a split, labelled by its genre.
 *
 * @module
 */

import type { BrownSplit } from "./brown.ts";
import { genreLabel, labelNames, type LabelSet } from "./genres.ts";
import type { Vocab } from "./vocab.ts";

/** Options of {@linkcode genrePassages}. */
export interface GenrePassageOptions {
  /** Tokens per passage, a positive integer. */
  passageTokens: number;
  /** At most this many passages per document (default: as many as fit). */
  maxPerDoc?: number;
  /** The label set (default `"genre"`, 15-way). */
  labels?: LabelSet;
  /** Remap the passages' tokens to this reduced vocabulary. */
  vocab?: Vocab;
}

/** Labelled passages for genre classification. */
export interface GenrePassages {
  /** Tokens per passage. */
  passageTokens: number;
  /** Number of passages. */
  count: number;
  /** The label set used. */
  labelSet: LabelSet;
  /** Class names; label `i` is `labelNames[i]`. */
  labelNames: string[];
  /** `count × passageTokens` token ids, row-major (remapped when a vocabulary was given). */
  tokens: Int32Array;
  /** The label of each passage. */
  labels: Int32Array;
  /** The Brown genre of each passage. */
  genres: string[];
  /** The document id of each passage. */
  documents: string[];
}

/**
 * Cuts labelled passages for genre classification (the project's stand-in for GLUE-style
 * fine-tuning) out of the documents of one split. A document of `n` tokens (its end-of-text token
 * excluded) gives `k = min(maxPerDoc, floor(n / passageTokens))` passages: it is divided into `k`
 * equal slots of `floor(n / k)` tokens and each passage is the first `passageTokens` tokens of a
 * slot, so passages never overlap, never cross a document boundary and are spread over the whole
 * document. Documents shorter than one passage give none. Deterministic; passages come in document
 * order.
 *
 * @param split A split from {@linkcode loadBrown}.
 * @param options Passage length, per-document cap, label set, optional reduced vocabulary.
 * @returns The passages with their labels.
 * @throws {RangeError} If `passageTokens` or `maxPerDoc` is not a positive integer, the label set
 * is unknown, or a document's genre is not a Brown genre.
 * @example
 * ```ts
 * import { genrePassages } from "./passages.ts";
 * const split = {
 *   name: "val" as const,
 *   tokens: Uint16Array.from([1, 2, 3, 4, 5, 50256, 6, 7, 50256]),
 *   documents: [
 *     { id: "ca01", genre: "news", split: "val" as const, words: 5, start: 0, end: 5 },
 *     { id: "cr01", genre: "humor", split: "val" as const, words: 2, start: 6, end: 8 },
 *   ],
 * };
 * const p = genrePassages(split, { passageTokens: 2, labels: "binary" });
 * if (p.count !== 3 || p.labels.join() !== "0,0,1" || p.tokens.join() !== "1,2,3,4,6,7") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function genrePassages(split: BrownSplit, options: GenrePassageOptions): GenrePassages {
  const action = "cut genre passages";
  const { passageTokens, vocab } = options;
  const maxPerDoc = options.maxPerDoc ?? Infinity;
  const labelSet = options.labels ?? "genre";
  const names = labelNames(labelSet);
  if (!Number.isInteger(passageTokens) || passageTokens < 1) {
    throw new RangeError(
      `Cannot ${action}: passageTokens must be a positive integer, got ${passageTokens}`,
    );
  }
  if (maxPerDoc !== Infinity && (!Number.isInteger(maxPerDoc) || maxPerDoc < 1)) {
    throw new RangeError(
      `Cannot ${action}: maxPerDoc must be a positive integer, got ${maxPerDoc}`,
    );
  }
  const starts: number[] = [];
  const labels: number[] = [];
  const genres: string[] = [];
  const documents: string[] = [];
  for (const d of split.documents) {
    const label = genreLabel(d.genre, labelSet);
    const n = d.end - d.start;
    const k = Math.min(maxPerDoc, Math.floor(n / passageTokens));
    if (k < 1) continue;
    const slot = Math.floor(n / k);
    for (let j = 0; j < k; j++) {
      starts.push(d.start + j * slot);
      labels.push(label);
      genres.push(d.genre);
      documents.push(d.id);
    }
  }
  const tokens = new Int32Array(starts.length * passageTokens);
  for (let p = 0; p < starts.length; p++) {
    const window = split.tokens.subarray(starts[p], starts[p] + passageTokens);
    tokens.set(vocab === undefined ? window : vocab.remap(window), p * passageTokens);
  }
  return {
    passageTokens,
    count: starts.length,
    labelSet,
    labelNames: names,
    tokens,
    labels: Int32Array.from(labels),
    genres,
    documents,
  };
}
