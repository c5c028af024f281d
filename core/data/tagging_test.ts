/** The tagging task: sentence parsing, the tag vocabulary, and the prepared cache's split. */

import {
  buildTagVocab,
  buildWordVocab,
  parseTaggedSentences,
  prepareTagging,
  TAG_BOS,
  TAG_EOS,
  TAG_UNK,
} from "./tagging.ts";
import { DEFAULT_BROWN_DIR, loadBrown, prepareBrown } from "./mod.ts";
import { assert, assertThrows } from "../../reference/testing.ts";

Deno.test("parseTaggedSentences: one sentence per line, tag after the last slash", () => {
  const s = parseTaggedSentences("\n\n\tThe/at jury/nn said/vbd 1-1/2/cd ./.\n\n\n\t//in No/rb\n");
  assert(s.length === 2, `${s.length} sentences`);
  assert(s[0].words.join(" ") === "The jury said 1-1/2 .", s[0].words.join(" "));
  assert(s[0].tags.join(" ") === "at nn vbd cd .", s[0].tags.join(" "));
  assert(s[1].words[0] === "/" && s[1].tags[0] === "in", `${s[1].words} ${s[1].tags}`);
  assertThrows(() => parseTaggedSentences("a/at b"), RangeError, '"b"');
  assertThrows(() => parseTaggedSentences("a/"), RangeError, "word/tag");
});

Deno.test("buildTagVocab: specials first, then by count, ties by name", () => {
  const names = buildTagVocab([["vb", "nn", "nn"], ["at", "vb", "jj"]]);
  assert(names.join(" ") === "<bos> <eos> <unk> nn vb at jj", names.join(" "));
  assert(
    names[TAG_BOS] === "<bos>" && names[TAG_EOS] === "<eos>" && names[TAG_UNK] === "<unk>",
    "ids",
  );
});

/** The default cache, built first where the checkout has none (idempotent; a fresh clone in CI). */
async function brownCache() {
  await prepareBrown({ outDir: DEFAULT_BROWN_DIR, log: () => {} });
  return await loadBrown(DEFAULT_BROWN_DIR);
}

Deno.test("prepareTagging: the Brown task follows the token cache's document split", async () => {
  const brown = await brownCache();
  const data = await prepareTagging({
    sourceLength: 32,
    maxTags: 31,
    vocabSize: 2048,
    log: () => {},
  });
  for (const split of [data.train, data.val]) {
    for (let i = 0; i < split.size; i++) {
      const src = split.sourceOffsets[i + 1] - split.sourceOffsets[i];
      const tags = split.tagOffsets[i + 1] - split.tagOffsets[i];
      assert(src >= 1 && src <= 32 && tags >= 1 && tags <= 31, `sentence ${i}: ${src} ${tags}`);
    }
    assert(split.source.every((t) => t < data.sourceVocabSize), "source ids in the vocabulary");
    assert(split.tags.every((t) => t > TAG_UNK || t === TAG_UNK), "no <bos>/<eos> inside tags");
  }
  // Every document is in the split the token cache put it in, in corpus order, once.
  for (const which of ["train", "val"] as const) {
    const expected = brown.meta.documents.filter((d) => d.split === which).map((d) => d.id);
    const got = data[which].documents.map((d) => d.id);
    assert(got.join() === expected.join(), `${which}: documents differ from meta.json`);
    assert(
      data[which].documents.every((d) => d.sentences > 0),
      `${which}: a document without sentences`,
    );
  }
});

Deno.test("buildWordVocab and word sources: one id per word, <unk> last, same split", async () => {
  await brownCache(); // prepareTagging reads the default cache
  const ids = buildWordVocab([["b", "a", "b"], ["c", "a", "b"]], 3);
  assert(ids.get("b") === 0 && ids.get("a") === 1 && !ids.has("c"), `${[...ids]}`);
  const bpe = await prepareTagging({
    sourceLength: 32,
    maxTags: 31,
    vocabSize: 2048,
    log: () => {},
  });
  const words = await prepareTagging({
    sourceLength: 15,
    maxTags: 15,
    vocabSize: 1024,
    source: "words",
    log: () => {},
  });
  assert(words.sourceVocabSize === 1024 && words.train.size === bpe.train.size, "sizes");
  for (let i = 0; i < words.train.size; i++) {
    const s = words.train.sourceOffsets[i + 1] - words.train.sourceOffsets[i];
    const t = words.train.tagOffsets[i + 1] - words.train.tagOffsets[i];
    assert(s === t && s >= 1 && s <= 15, `sentence ${i}: ${s} words, ${t} tags`);
  }
  assert(words.train.source.some((w) => w === 1023), "rare words map to <unk>");
});
