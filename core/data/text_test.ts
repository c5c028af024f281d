/**
 * Text rebuilding from the tagged corpus, on hand-made lines.
 *
 * @module
 */

import { brownDocumentText, joinWords, stripTags } from "./text.ts";
import { assertThrows } from "../../reference/testing.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("stripTags drops the tag after the last slash", () => {
  assertEquals(
    stripTags("\tThe/at Fulton/np-tl County/nn-tl said/vbd ./."),
    ["The", "Fulton", "County", "said", "."],
    "simple line",
  );
  assertEquals(stripTags("13-1/2/cd //in ``/`` didn't/dod* ''/''"), [
    "13-1/2",
    "/",
    "``",
    "didn't",
    "''",
  ], "slashes and quote tokens");
  assertEquals(stripTags("   \t "), [], "blank line");
  assertThrows(() => stripTags("The/at jury"), RangeError, '"jury"');
  assertThrows(() => stripTags("/at"), RangeError, "expected word/tag");
  assertThrows(() => stripTags("jury/"), RangeError, "expected word/tag");
});

Deno.test("joinWords spaces punctuation, brackets and quotes like printed text", () => {
  const cases: [string[], string][] = [
    [[], ""],
    [["Hello", ",", "world", "!"], "Hello, world!"],
    [["Is", "it", "?"], "Is it?"],
    [["a", ";", "b", ":", "c", "."], "a; b: c."],
    [["``", "No", "evidence", "''", "was", "found", "."], '"No evidence" was found.'],
    [["he", "said", ",", "``", "Go", "''", "."], 'he said, "Go".'],
    [["(", "AP", ")", "--", "The", "end"], "(AP) -- The end"],
    [["[", "sic", "]", "x"], "[sic] x"],
    [["the", "'", "pro", "'", "letters", "and", "'", "con", "'"], "the 'pro' letters and 'con'"],
    [["counts", "/", "minute"], "counts/minute"],
    [["$1,000", "and", "4-1/2%", "of", "it"], "$1,000 and 4-1/2% of it"],
    [["give", "'em", "hell"], "give 'em hell"],
    [["won", "by", "Ivan", "Allen", "Jr.", "."], "won by Ivan Allen Jr."],
    [["Wait", "!", "Now", "."], "Wait! Now."],
    [
      ["holes", "1/4''", "''", "deep", "and", "4'", "10''", "''", "tall"],
      'holes 1/4" deep and 4\' 10" tall',
    ],
    [["``", "x", "''", "''"], '"x""'],
  ];
  for (const [words, text] of cases) assertEquals(joinWords(words), text, words.join(" "));
});

Deno.test("a lone single quote alternates open/close within a paragraph only", () => {
  const doc = brownDocumentText("\n\n\t'/' a/at '/' b/nn '/'\n\n\n\t'/' c/nn '/'\n");
  assertEquals(doc.text, "'a' b '\n\n'c'", "quotes reset at the paragraph");
});

Deno.test("brownDocumentText rebuilds paragraphs and counts corpus words", () => {
  const tagged = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./.\n" +
    "It/pps agreed/vbd ./.\n\n\n\tHe/pps left/vbd ;/. ;/.\nshe/pps stayed/vbd ./.\n";
  const doc = brownDocumentText(tagged);
  assertEquals(doc.text, 'The jury said "no". It agreed.\n\nHe left;; she stayed.', "text");
  assertEquals(doc.words, 17, "word count");
  assertThrows(() => brownDocumentText("\tThe/at jury\n"), RangeError, "expected word/tag");
});
