/** Corpus BLEU against hand-computed cases (each expected value derived in its comment). */

import { corpusBleu, tagAccuracy } from "./_bleu.ts";
import { assert, assertThrows } from "../reference/testing.ts";

const words = (s: string) => s.split(" ");
const near = (a: number, b: number, label: string) =>
  assert(Math.abs(a - b) <= 1e-12, `${label}: expected ${b}, got ${a}`);

Deno.test("BLEU: a perfect match is 1 with BP 1", () => {
  const s = corpusBleu([words("a b c d e")], [words("a b c d e")]);
  near(s.bleu, 1, "bleu");
  near(s.brevityPenalty, 1, "BP");
});

Deno.test("BLEU: one substitution at the end gives (5/6·4/5·3/4·2/3)^(1/4)", () => {
  // unigrams 5/6, bigrams ab bc cd de of 5, trigrams 3/4, 4-grams 2/3; c = r = 6 so BP = 1.
  const s = corpusBleu([words("a b c d e x")], [words("a b c d e f")]);
  assert(s.matches.join() === "5,4,3,2" && s.totals.join() === "6,5,4,3", `${s.matches}`);
  near(s.bleu, Math.pow(1 / 3, 0.25), "bleu");
});

Deno.test("BLEU: brevity penalty exp(1 − r/c) for a short candidate with perfect precisions", () => {
  // c = 6, r = 8: every precision is 1, BLEU = BP = exp(1 − 8/6) = exp(−1/3) ≈ 0.7165.
  const s = corpusBleu([words("a b c d e f")], [words("a b c d e f g h")]);
  assert(s.precisions.every((p) => p === 1), `${s.precisions}`);
  near(s.brevityPenalty, Math.exp(-1 / 3), "BP");
  near(s.bleu, Math.exp(-1 / 3), "bleu");
});

Deno.test("BLEU: a longer candidate has BP 1", () => {
  // c = 5 > r = 4; p = 4/5, 3/4, 2/3, 1/2 → (4·3·2·1 / (5·4·3·2))^(1/4) = (1/5)^(1/4).
  const s = corpusBleu([words("a b c d z")], [words("a b c d")]);
  near(s.brevityPenalty, 1, "BP");
  near(s.bleu, Math.pow(1 / 5, 0.25), "bleu");
});

Deno.test("BLEU: no common token gives 0 with all precisions 0", () => {
  const s = corpusBleu([words("p q r s")], [words("a b c d")]);
  assert(s.bleu === 0 && s.precisions.every((p) => p === 0), `${s.bleu} ${s.precisions}`);
});

Deno.test("BLEU: a zero 4-gram precision gives 0 without smoothing (Papineni's 'the the …')", () => {
  // Unigram 'the' clipped to its 2 reference occurrences: p₁ = 2/7; no bigram matches.
  const s = corpusBleu([words("the the the the the the the")], [words("the cat is on the mat")]);
  near(s.precisions[0], 2 / 7, "p1");
  assert(s.bleu === 0, `expected 0, got ${s.bleu}`);
});

Deno.test("BLEU: counts pool over the corpus (not an average of sentence scores)", () => {
  // Sentence 2 alone has no matching 4-gram (BLEU 0); pooled: p = 7/8, 5/6, 3/4, 1/2, c = r = 8.
  const s = corpusBleu([words("a b c d"), words("x y z w")], [words("a b c d"), words("x y z q")]);
  near(s.bleu, Math.pow((7 / 8) * (5 / 6) * (3 / 4) * (1 / 2), 0.25), "bleu");
  assert(corpusBleu([words("x y z w")], [words("x y z q")]).bleu === 0, "sentence 2 alone");
});

Deno.test("BLEU: numeric tokens, an empty candidate and mismatched lists", () => {
  near(corpusBleu([[1, 2, 3, 4]], [[1, 2, 3, 4]]).bleu, 1, "numbers");
  const empty = corpusBleu([[]], [[1, 2]]);
  assert(empty.bleu === 0 && empty.brevityPenalty === 0, `${empty.bleu} ${empty.brevityPenalty}`);
  assertThrows(() => corpusBleu([[1]], []), RangeError, "as many candidates as references");
});

Deno.test("tagAccuracy: position-wise over the reference length", () => {
  // 2 of 3 in sentence 1 (the extra candidate token is ignored), 1 of 2 in sentence 2 → 3/5.
  near(tagAccuracy([words("a b x y"), words("c")], [words("a b c"), words("c d")]), 3 / 5, "acc");
  assertThrows(() => tagAccuracy([[]], [[]]), RangeError, "no token");
});
