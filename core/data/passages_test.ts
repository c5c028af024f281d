/**
 * Genre passages cut from a hand-made split.
 *
 * @module
 */

import type { BrownSplit } from "./brown.ts";
import { GPT2_EOT } from "./cache.ts";
import { genrePassages } from "./passages.ts";
import { buildVocab } from "./vocab.ts";
import { assert, assertThrows } from "../../reference/testing.ts";
import { assertEquals } from "./_testing.ts";

function handSplit(): BrownSplit {
  // Three documents: 10 tokens of news, 7 of mystery, 2 of humor; EOT after each.
  const docs = [
    { id: "ca01", genre: "news", n: 10 },
    { id: "cl01", genre: "mystery", n: 7 },
    { id: "cr01", genre: "humor", n: 2 },
  ];
  const tokens: number[] = [];
  const documents = docs.map((d, k) => {
    const start = tokens.length;
    for (let i = 0; i < d.n; i++) tokens.push(100 * (k + 1) + i);
    tokens.push(GPT2_EOT);
    return { id: d.id, genre: d.genre, split: "val" as const, words: d.n, start, end: start + d.n };
  });
  return { name: "val", tokens: Uint16Array.from(tokens), documents };
}

Deno.test("genrePassages spreads non-overlapping windows inside each document", () => {
  const split = handSplit();
  const p = genrePassages(split, { passageTokens: 3 });
  // news: n=10 → k=3, slot 3 → starts 0,3,6; mystery: n=7 → k=2, slot 3 → 11,14; humor: none.
  assertEquals(p.count, 5, "count");
  assertEquals(
    [...p.tokens],
    [100, 101, 102, 103, 104, 105, 106, 107, 108, 200, 201, 202, 203, 204, 205],
    "tokens",
  );
  assertEquals([...p.labels], [0, 0, 0, 10, 10], "15-way labels");
  assertEquals(p.documents, ["ca01", "ca01", "ca01", "cl01", "cl01"], "documents");
  assertEquals(p.labelNames.length, 15, "15 names");
  const capped = genrePassages(split, { passageTokens: 3, maxPerDoc: 1, labels: "group" });
  assertEquals([...capped.tokens], [100, 101, 102, 200, 201, 202], "one per document");
  assertEquals([...capped.labels], [0, 3], "group labels");
  const two = genrePassages(split, { passageTokens: 2, maxPerDoc: 2, labels: "binary" });
  // news: k=2, slot 5 → starts 0,5; mystery: k=2, slot 3 → 11,14; humor: k=1 → 19.
  assertEquals([...two.tokens], [100, 101, 105, 106, 200, 201, 203, 204, 300, 301], "spread");
  assertEquals([...two.labels], [0, 0, 1, 1, 1], "binary labels");
  assert(!two.tokens.includes(GPT2_EOT), "a passage crossed a document boundary");
  const vocab = buildVocab(split.tokens, 4);
  const remapped = genrePassages(split, { passageTokens: 2, maxPerDoc: 1, vocab });
  assertEquals(
    [...remapped.tokens],
    [...vocab.remap([100, 101, 200, 201, 300, 301])],
    "remapped tokens",
  );
  assertThrows(() => genrePassages(split, { passageTokens: 0 }), RangeError, "passageTokens");
  assertThrows(
    () => genrePassages(split, { passageTokens: 2, maxPerDoc: 0 }),
    RangeError,
    "maxPerDoc",
  );
  assertThrows(
    () => genrePassages(split, { passageTokens: 2, labels: "five" as never }),
    RangeError,
    "label set",
  );
});
