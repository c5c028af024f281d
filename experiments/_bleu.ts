/**
 * Corpus BLEU (Papineni et al., 2002) with one reference per candidate, and position-wise tag
 * accuracy, for `seq2seq.ts`. Tokens are compared by value (`===` on their string form).
 *
 * BLEU = BP · exp(Σₙ ¼·log pₙ), n = 1…4, where pₙ is the corpus-level modified n-gram precision
 * (each candidate n-gram's count clipped to its count in the reference, summed over all sentences,
 * divided by the total number of candidate n-grams), and BP = 1 if c > r else exp(1 − r/c), with c
 * and r the total candidate and reference lengths. No smoothing: a zero pₙ makes BLEU 0 (as
 * sacreBLEU with `smooth_method="none"`).
 *
 * @module
 */

/** A tokenised sentence. */
export type Tokens = readonly (string | number)[];

/** Corpus BLEU and its parts. */
export interface BleuScore {
  /** BLEU in [0, 1] (multiply by 100 for the usual scale). */
  bleu: number;
  /** Modified precisions p₁…p₄ (0 where no candidate has an n-gram of that order). */
  precisions: number[];
  /** Clipped matches per order. */
  matches: number[];
  /** Candidate n-grams per order. */
  totals: number[];
  /** The brevity penalty. */
  brevityPenalty: number;
  /** Total candidate length c. */
  candidateLength: number;
  /** Total reference length r. */
  referenceLength: number;
}

/** The largest n-gram order. */
export const BLEU_MAX_ORDER = 4;

function ngramCounts(tokens: Tokens, n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Corpus BLEU of candidates against one reference each (see the module documentation).
 *
 * @param candidates The system outputs.
 * @param references One reference per candidate.
 * @returns BLEU, the precisions, the clipped counts, the brevity penalty and the lengths.
 * @throws {RangeError} If the two lists differ in length or are empty.
 * @example
 * ```ts
 * import { corpusBleu } from "./_bleu.ts";
 * const s = corpusBleu([["a", "b", "c", "d", "e", "x"]], [["a", "b", "c", "d", "e", "f"]]);
 * // (5/6 · 4/5 · 3/4 · 2/3)^(1/4) = (1/3)^(1/4)
 * if (Math.abs(s.bleu - Math.pow(1 / 3, 0.25)) > 1e-12) throw new Error(`${s.bleu}`);
 * ```
 */
export function corpusBleu(
  candidates: readonly Tokens[],
  references: readonly Tokens[],
): BleuScore {
  if (candidates.length !== references.length || candidates.length === 0) {
    throw new RangeError(
      `Cannot compute BLEU: expected as many candidates as references (at least one), got ` +
        `${candidates.length} and ${references.length}`,
    );
  }
  const matches = new Array<number>(BLEU_MAX_ORDER).fill(0);
  const totals = new Array<number>(BLEU_MAX_ORDER).fill(0);
  let c = 0, r = 0;
  candidates.forEach((cand, s) => {
    const ref = references[s];
    c += cand.length;
    r += ref.length;
    for (let n = 1; n <= BLEU_MAX_ORDER; n++) {
      const refCounts = ngramCounts(ref, n);
      for (const [gram, count] of ngramCounts(cand, n)) {
        matches[n - 1] += Math.min(count, refCounts.get(gram) ?? 0);
        totals[n - 1] += count;
      }
    }
  });
  const precisions = matches.map((m, i) => totals[i] === 0 ? 0 : m / totals[i]);
  const brevityPenalty = c === 0 ? 0 : c > r ? 1 : Math.exp(1 - r / c);
  const bleu = precisions.some((p) => p === 0)
    ? 0
    : brevityPenalty * Math.exp(precisions.reduce((a, p) => a + Math.log(p), 0) / BLEU_MAX_ORDER);
  return {
    bleu,
    precisions,
    matches,
    totals,
    brevityPenalty,
    candidateLength: c,
    referenceLength: r,
  };
}

/**
 * Position-wise accuracy over the reference length: Σ #{i < |ref| : cand[i] = ref[i]} / Σ |ref|
 * (a candidate shorter than its reference scores the missing positions as wrong; extra candidate
 * tokens are not counted).
 *
 * @param candidates The system outputs.
 * @param references One reference per candidate.
 * @returns The accuracy in [0, 1].
 * @throws {RangeError} If the lists differ in length or the references hold no token.
 * @example
 * ```ts
 * import { tagAccuracy } from "./_bleu.ts";
 * if (tagAccuracy([["a", "x"]], [["a", "b", "c"]]) !== 1 / 3) throw new Error("unexpected");
 * ```
 */
export function tagAccuracy(candidates: readonly Tokens[], references: readonly Tokens[]): number {
  let correct = 0, total = 0;
  if (candidates.length !== references.length) {
    throw new RangeError(
      `Cannot compute tag accuracy: ${candidates.length} candidates for ${references.length} references`,
    );
  }
  candidates.forEach((cand, s) => {
    const ref = references[s];
    total += ref.length;
    for (let i = 0; i < ref.length && i < cand.length; i++) if (cand[i] === ref[i]) correct++;
  });
  if (total === 0) {
    throw new RangeError("Cannot compute tag accuracy: the references hold no token");
  }
  return correct / total;
}
