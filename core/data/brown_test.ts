/**
 * The real Brown corpus, prepared once into a temporary directory: statistics, the token
 * files, the split, text, vocabulary reduction, passages, batches, reuse, corruption and rebuilds.
 *
 * @module
 */

import { getBatch } from "./batches.ts";
import { loadBrown } from "./brown.ts";
import { DataCacheError, GPT2_EOT, GPT2_VOCAB_SIZE } from "./cache.ts";
import { BROWN_GENRES } from "./genres.ts";
import { genrePassages } from "./passages.ts";
import { prepareBrown } from "./prepare.ts";
import { decodeTokens, loadVocab } from "./vocab.ts";
import { assert, assertRejects } from "../../reference/testing.ts";
import { assertEquals } from "./_testing.ts";

// The real corpus: prepared once into a temporary directory, shared by the steps.

/** Documents per genre in the Brown corpus, and the hand-computed validation counts at 0.1. */
const GENRE_DOCS: Record<string, [number, number]> = {
  news: [44, 4],
  editorial: [27, 3],
  reviews: [17, 2],
  religion: [17, 2],
  hobbies: [36, 4],
  lore: [48, 5],
  belles_lettres: [75, 8],
  government: [30, 3],
  learned: [80, 8],
  fiction: [29, 3],
  mystery: [24, 2],
  science_fiction: [6, 1],
  adventure: [29, 3],
  romance: [29, 3],
  humor: [9, 1],
};

Deno.test("prepareBrown builds the real Brown cache", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "brown_" });
  const logged: string[] = [];
  try {
    const first = await prepareBrown({ outDir: dir, log: (line) => logged.push(line) });
    const { meta } = first;
    assert(!first.reused, "a fresh directory was reported as reused");

    await t.step("statistics are printed and recorded", () => {
      assert(logged.some((l) => l.startsWith("total")), `no totals printed: ${logged}`);
      assert(logged.some((l) => l.startsWith("science_fiction")), "no per-genre rows printed");
      const { train, val } = meta.splits;
      assertEquals(train.documents + val.documents, 500, "documents");
      // 1,161,192 tagged tokens: the published size of the corpus.
      assertEquals(train.words + val.words, 1161192, "corpus words");
      assertEquals(meta.tokenizer.name, "r50k_base", "tokenizer");
      assertEquals([meta.seed, meta.valFraction], [1337, 0.1], "options");
      assertEquals(meta.documents.length, 500, "document list");
    });

    const data = await loadBrown(dir);

    await t.step("token files have the documented header", async () => {
      const bytes = await Deno.readFile(`${dir}/train.bin`);
      assertEquals(new TextDecoder().decode(bytes.subarray(0, 8)), "TOKENS24", "magic");
      const view = new DataView(bytes.buffer);
      assertEquals(view.getUint32(12, true), 50257, "vocab size");
      assertEquals(Number(view.getBigUint64(16, true)), meta.splits.train.tokens, "count");
      assertEquals(bytes.length, 32 + 2 * meta.splits.train.tokens, "file length");
    });

    await t.step("the split is by document and stratified by genre", () => {
      const trainIds = new Set(data.train.documents.map((d) => d.id));
      const valIds = new Set(data.val.documents.map((d) => d.id));
      assert([...valIds].every((id) => !trainIds.has(id)), "a document is in both splits");
      assertEquals(trainIds.size + valIds.size, 500, "every document in one split");
      for (const [genre, [total, val]] of Object.entries(GENRE_DOCS)) {
        const v = data.val.documents.filter((d) => d.genre === genre).length;
        const tr = data.train.documents.filter((d) => d.genre === genre).length;
        assertEquals([tr + v, v], [total, val], `${genre} documents (total, val)`);
        assertEquals(meta.splits.val.genres[genre].documents, val, `${genre} in meta`);
      }
      for (const d of meta.documents) {
        assertEquals(d.id[1], BROWN_GENRES.find((g) => g.name === d.genre)!.code, d.id);
      }
    });

    await t.step("an end-of-text token follows every document and appears nowhere else", () => {
      for (const split of [data.train, data.val]) {
        let eots = 0;
        for (const t of split.tokens) if (t === GPT2_EOT) eots++;
        assertEquals(eots, split.documents.length, `${split.name} end-of-text count`);
        for (const d of split.documents) {
          assert(split.tokens[d.end] === GPT2_EOT, `${d.id} not followed by end-of-text`);
          assert(d.start === 0 || split.tokens[d.start - 1] === GPT2_EOT, `${d.id} start`);
        }
      }
    });

    await t.step("decoded text reads as English without part-of-speech tags", async () => {
      const first = data.train.documents[0].id === "ca01" ? data.train : data.val;
      const ca01 = first.documents.find((d) => d.id === "ca01")!;
      const text = await decodeTokens(first.tokens.subarray(ca01.start, ca01.start + 40));
      assert(
        text.startsWith(
          "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary " +
            'election produced "no evidence" that any irregularities took place.\n\nThe jury',
        ),
        `unexpected start of ca01: ${JSON.stringify(text)}`,
      );
      const val = await decodeTokens(data.val.tokens);
      const tag = /\S\/(at|nn|nns|np|vbd|vbz|jj|in|cc|rb|pps|md)\b/.exec(val);
      assert(tag === null, `a POS tag survived: ${tag?.[0]}`);
      assert(!/ [,.;:?!](\s|$)/.test(val), "a space before punctuation survived");
      assert(!val.includes("``") && !val.includes("''"), "corpus quote tokens survived");
    });

    await t.step("vocabulary reduction: dense ids, unk for rare tokens, cached", async () => {
      const vocab = await loadVocab(dir, 512);
      assertEquals([vocab.size, vocab.unkId], [512, 511], "size and unk");
      const remapped = vocab.remap(data.train.tokens);
      let unk = 0;
      for (let i = 0; i < remapped.length; i++) {
        assert(remapped[i] < 512, `dense id ${remapped[i]} out of range`);
        if (remapped[i] === 511) unk++;
        else assert(vocab.sourceIds[remapped[i]] === data.train.tokens[i], `round trip at ${i}`);
      }
      assert(unk > 0 && unk < remapped.length / 2, `implausible unk count ${unk}`);
      // " the" (262) is the most frequent GPT-2 token of the training text; rare ones map to unk.
      assertEquals(vocab.sourceIds[0], 262, "most frequent token");
      const counts = new Map<number, number>();
      for (const t of data.train.tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
      const rare = [...counts].find(([, c]) => c === 1)![0];
      assertEquals(vocab.remap([rare])[0], 511, "a token seen once maps to unk");
      const file = JSON.parse(await Deno.readTextFile(`${dir}/vocab_512.json`));
      assertEquals([file.size, file.ids.length], [512, 511], "vocab file");
      assertEquals(file.trainChecksum, meta.splits.train.checksum, "vocab file checksum");
      const again = await loadVocab(dir, 512);
      assertEquals([...again.sourceIds], [...vocab.sourceIds], "reloaded vocabulary");
      assertEquals((await loadVocab(dir)).size, GPT2_VOCAB_SIZE, "full vocabulary");
      await Deno.writeTextFile(`${dir}/vocab_512.json`, "{oops");
      await assertRejects(() => loadVocab(dir, 512), DataCacheError, "invalid JSON");
      await Deno.remove(`${dir}/vocab_512.json`);
    });

    await t.step("genre passages from the real validation split", () => {
      const p = genrePassages(data.val, { passageTokens: 64, maxPerDoc: 4 });
      assertEquals(p.count, 52 * 4, "every val document is long enough for 4 passages");
      assertEquals(new Set(p.labels).size, 15, "all 15 genres present in validation");
      const binary = genrePassages(data.val, { passageTokens: 64, maxPerDoc: 4, labels: "binary" });
      const imaginative = [...binary.labels].filter((l) => l === 1).length;
      assertEquals(imaginative, 4 * (3 + 2 + 1 + 3 + 3 + 1), "imaginative passages");
    });

    await t.step("batches from the real corpus are deterministic", () => {
      const options = { batchSize: 4, blockSize: 32, seed: 7, step: 3 };
      const a = getBatch(data.train.tokens, options);
      const b = getBatch(data.train.tokens, options);
      assertEquals(a, b, "same seed and step");
    });

    await t.step("a second prepare reuses the cache", async () => {
      const before = await Deno.stat(`${dir}/train.bin`);
      const second = await prepareBrown({ outDir: dir, log: () => {} });
      assert(second.reused, "matching cache was rebuilt");
      assertEquals(second.meta, meta, "reused metadata");
      const after = await Deno.stat(`${dir}/train.bin`);
      assertEquals(after.mtime?.getTime(), before.mtime?.getTime(), "train.bin rewritten");
    });

    await t.step("corrupt or inconsistent cache files are rejected", async () => {
      const copy = await Deno.makeTempDir({ prefix: "brown_bad_" });
      try {
        const restore = async () => {
          for (const f of ["meta.json", "train.bin", "val.bin"]) {
            await Deno.copyFile(`${dir}/${f}`, `${copy}/${f}`);
          }
        };
        await restore();
        await loadBrown(copy);
        const train = await Deno.readFile(`${copy}/train.bin`);
        train[1000] ^= 1;
        await Deno.writeFile(`${copy}/train.bin`, train);
        await assertRejects(() => loadBrown(copy), DataCacheError, "checksum mismatch");
        await restore();
        const val = await Deno.readFile(`${copy}/val.bin`);
        await Deno.writeFile(`${copy}/val.bin`, val.subarray(0, val.length - 100));
        await assertRejects(() => loadBrown(copy), DataCacheError, "truncated");
        await restore();
        const metaText = await Deno.readTextFile(`${copy}/meta.json`);
        await Deno.writeTextFile(`${copy}/meta.json`, metaText.slice(0, 500));
        await assertRejects(() => loadBrown(copy), DataCacheError, "invalid JSON");
        const edited = JSON.parse(metaText);
        edited.documents[3].start += 1;
        await Deno.writeTextFile(`${copy}/meta.json`, JSON.stringify(edited));
        await assertRejects(() => loadBrown(copy), DataCacheError, "does not fit");
        await restore();
        await Deno.copyFile(`${dir}/val.bin`, `${copy}/train.bin`);
        await assertRejects(() => loadBrown(copy), DataCacheError, "meta.json records");
        await Deno.remove(`${copy}/meta.json`);
        await assertRejects(() => loadBrown(copy), DataCacheError, "does not exist");
      } finally {
        await Deno.remove(copy, { recursive: true });
      }
    });

    await t.step("other options or a damaged cache trigger a rebuild", async () => {
      await loadVocab(dir, 64);
      const other = await prepareBrown({ outDir: dir, valFraction: 0.2, log: () => {} });
      assert(!other.reused, "a cache with another valFraction was reused");
      assertEquals(other.meta.splits.val.genres.news.documents, 9, "news at 0.2: round(8.8)");
      const val = await Deno.readFile(`${dir}/val.bin`);
      await Deno.writeFile(`${dir}/val.bin`, val.subarray(0, 40));
      const rebuilt = await prepareBrown({ outDir: dir, valFraction: 0.2, log: () => {} });
      assert(!rebuilt.reused, "a damaged cache was reused");
      assertEquals(rebuilt.meta, other.meta, "rebuild is deterministic");
      await loadBrown(dir);
      // A vocabulary built from the old train.bin is rebuilt for the new one.
      await loadVocab(dir, 64);
      const vocabFile = JSON.parse(await Deno.readTextFile(`${dir}/vocab_64.json`));
      assertEquals(vocabFile.trainChecksum, rebuilt.meta.splits.train.checksum, "stale vocabulary");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
