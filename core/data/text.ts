/**
 * Readable text from the part-of-speech-tagged Brown corpus (normative for the token cache).
 *
 * The tag after the last `/` of each `word/tag` is dropped; words are joined by single spaces
 * except that `, . ; : ? ! ) ] }` and closing quotes take no space before them, `( [ {` and
 * opening quotes take no space after them, and `/` binds to both neighbours. A `.` right after a
 * word ending in `.` (an abbreviation closing a sentence, `Jr.` `.`) is dropped. Inch marks, which
 * the corpus writes as a word ending in `''` followed by a stray `''` token (`1/4''` `''`), become
 * `1/4"`. The corpus's double quotes `` `` `` (open) and `''` (close) both become `"`. A lone `'`
 * alternates open/close within a paragraph. Sentences of a paragraph are joined by a space,
 * paragraphs by a blank line (`"\n\n"`).
 *
 * @module
 */

const PARAGRAPH_SEPARATOR = "\n\n";
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
 * import { stripTags } from "./text.ts";
 * const words = stripTags("The/at jury/nn said/vbd 1-1/2/cd ./.");
 * if (words.join(" ") !== "The jury said 1-1/2 .") throw new Error("unexpected");
 * ```
 */
export function stripTags(line: string): string[] {
  return splitTagged(line).map(([word]) => word);
}

/** Splits one line of the tagged corpus into `[word, tag]` pairs (see {@linkcode stripTags}). */
export function splitTagged(line: string): [string, string][] {
  const items: [string, string][] = [];
  for (const item of line.split(/\s+/)) {
    if (item === "") continue;
    const slash = item.lastIndexOf("/");
    if (slash <= 0 || slash === item.length - 1) {
      throw new RangeError(
        `Cannot strip the part-of-speech tag: expected word/tag, got ${JSON.stringify(item)}`,
      );
    }
    items.push([item.slice(0, slash), item.slice(slash + 1)]);
  }
  return items;
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
 * import { joinWords } from "./text.ts";
 * const words = ["``", "Only", "a", "few", "''", ",", "he", "said", "(", "twice", ")", "."];
 * const text = joinWords(words);
 * if (text !== '"Only a few", he said (twice).') throw new Error(text);
 * ```
 */
export function joinWords(words: readonly string[]): string {
  return joinWordsWithSpans(words).text;
}

/** Where one corpus word sits in the joined text. */
export interface WordSpan {
  /** Index of the word in the input list. */
  word: number;
  /** First character of the word in the text. */
  start: number;
  /** One past its last character. */
  end: number;
}

/**
 * {@linkcode joinWords}, also returning the character span of every word that is printed (the
 * stray `''` after an inch mark and the `.` after an abbreviation are not).
 *
 * @param words The words of a paragraph, in order.
 * @returns The text and the spans, in word order.
 */
export function joinWordsWithSpans(
  words: readonly string[],
): { text: string; spans: WordSpan[] } {
  let out = "";
  const spans: WordSpan[] = [];
  let glueNext = true;
  let singleQuoteOpen = false;
  let previous = "";
  for (const [index, word] of words.entries()) {
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
    spans.push({ word: index, start: out.length, end: out.length + text.length });
    out += text;
    glueNext = glueAfter;
  }
  return { text: out, spans };
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
 * import { brownDocumentText } from "./text.ts";
 * const tagged = "\n\n\tThe/at jury/nn said/vbd ./.\nIt/pps agreed/vbd ./.\n\n\n\tNo/rb ./.\n";
 * const doc = brownDocumentText(tagged);
 * if (doc.text !== "The jury said. It agreed.\n\nNo." || doc.words !== 9) {
 *   throw new Error(doc.text);
 * }
 * ```
 */
export function brownDocumentText(tagged: string): { text: string; words: number } {
  const { text, words } = brownTaggedText(tagged);
  return { text, words };
}

/** A printed corpus word's span in a document's text, with its part-of-speech tag. */
export interface TaggedSpan {
  /** First character. */
  start: number;
  /** One past the last character. */
  end: number;
  /** The corpus tag (e.g. `nn`, `vbd-hl`, `pps+bez`). */
  tag: string;
}

/**
 * {@linkcode brownDocumentText} with the span and tag of every printed word (for part-of-speech
 * tagging; the text is the same).
 *
 * @param tagged The contents of one corpus file.
 * @returns The text, the number of corpus words and the tagged spans in text order.
 * @throws {RangeError} If an item is not of the form `word/tag`.
 */
export function brownTaggedText(
  tagged: string,
): { text: string; words: number; spans: TaggedSpan[] } {
  const paragraphs: string[] = [];
  const spans: TaggedSpan[] = [];
  let words = 0;
  let offset = 0;
  for (const block of tagged.split(/\n[ \t]*\n/)) {
    const items: [string, string][] = [];
    for (const line of block.split("\n")) items.push(...splitTagged(line));
    if (items.length === 0) continue;
    words += items.length;
    if (paragraphs.length > 0) offset += PARAGRAPH_SEPARATOR.length;
    const joined = joinWordsWithSpans(items.map(([word]) => word));
    for (const { word, start, end } of joined.spans) {
      spans.push({ start: offset + start, end: offset + end, tag: items[word][1] });
    }
    paragraphs.push(joined.text);
    offset += joined.text.length;
  }
  return { text: paragraphs.join(PARAGRAPH_SEPARATOR), words, spans };
}
