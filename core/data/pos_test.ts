import {
  cachedBrownPosTags,
  loadBrownPosTags,
  POS_TAGS_FILE,
  tokenTagLabels,
  UNIVERSAL_TAGS,
  universalTag,
} from "./pos.ts";
import { loadBrown } from "./brown.ts";
import { DEFAULT_BROWN_DIR } from "./cache.ts";
import { prepareBrown } from "./prepare.ts";
import { brownTaggedText } from "./text.ts";
import { assert, assertThrows } from "../../reference/testing.ts";

Deno.test("universalTag: Brown tags with suffixes and contractions map to the universal set", () => {
  const cases: [string, string][] = [
    ["nn", "NOUN"],
    ["nns-tl", "NOUN"],
    ["np$", "NOUN"],
    ["nr", "NOUN"],
    ["vbd", "VERB"],
    ["bez", "VERB"],
    ["hvd-hl", "VERB"],
    ["md", "VERB"],
    ["do", "VERB"],
    ["jj", "ADJ"],
    ["jjt-tl", "ADJ"],
    ["rb", "ADV"],
    ["ql", "ADV"],
    ["wrb", "ADV"],
    ["wql", "ADV"],
    ["*", "ADV"],
    ["rp", "PRT"],
    ["to", "PRT"],
    ["in", "ADP"],
    ["in-tl", "ADP"],
    ["at", "DET"],
    ["dts", "DET"],
    ["ap", "DET"],
    ["wdt", "DET"],
    ["ex", "DET"],
    ["abn", "DET"],
    ["pps", "PRON"],
    ["pp$", "PRON"],
    ["ppss+md", "PRON"],
    ["wps", "PRON"],
    ["pn", "PRON"],
    ["cc", "CONJ"],
    ["cs", "CONJ"],
    ["cd", "NUM"],
    ["od", "NUM"],
    ["cd$", "NUM"],
    [".", "PUNCT"],
    [",", "PUNCT"],
    ["--", "PUNCT"],
    ["``", "PUNCT"],
    ["''", "PUNCT"],
    ["(-hl", "PUNCT"],
    ["uh", "X"],
    ["fw-nn", "X"],
    ["nil", "X"],
  ];
  for (const [brown, want] of cases) {
    const got = universalTag(brown);
    assert(got === want, `${brown}: ${got}, expected ${want}`);
  }
  assert(UNIVERSAL_TAGS.length === 12, "twelve tags");
});

Deno.test("tokenTagLabels: a token takes the tag of the word its first non-space character is in", () => {
  const { text, spans } = brownTaggedText(
    "\n\n\tThe/at jury's/nn$ verdict/nn ./.\n\n\tNo/rb ./.\n",
  );
  assert(text === "The jury's verdict.\n\nNo.", text);
  const pieces = ["The", " jury", "'s", " verd", "ict", ".", "\n\n", "No", "."];
  assert(pieces.join("") === text, "pieces cover the text");
  const id = (t: string) => UNIVERSAL_TAGS.indexOf(t as typeof UNIVERSAL_TAGS[number]);
  const want = ["DET", "NOUN", "NOUN", "NOUN", "NOUN", "PUNCT", null, "ADV", "PUNCT"];
  const got = tokenTagLabels(spans, pieces);
  want.forEach((w, i) => {
    assert(
      got[i] === (w === null ? -1 : id(w)),
      `token ${i} ${JSON.stringify(pieces[i])}: ${got[i]}`,
    );
  });
  // A token that starts between words (here a space inside no span) is rejected.
  assertThrows(
    () =>
      tokenTagLabels([{ start: 0, end: 1, tag: "nn" }, { start: 3, end: 4, tag: "nn" }], [
        "a",
        "?",
        "  b",
      ]),
    RangeError,
    "Cannot label token 1",
  );
});

Deno.test("brownTaggedText: spans index the text, skipping the words joinWords drops", () => {
  // `Jr.` then `.` prints one period; the stray `''` after an inch mark is not printed.
  const { text, spans, words } = brownTaggedText(
    "\tMr./np Jones/np Jr./np ./. 1/4''/cd ''/'' ok/jj\n",
  );
  assert(text === 'Mr. Jones Jr. 1/4" ok', text);
  assert(words === 7, `words ${words}`);
  const printed = spans.map((s) => `${text.slice(s.start, s.end)}/${s.tag}`).join(" ");
  assert(printed === 'Mr./np Jones/np Jr./np 1/4"/cd ok/jj', printed);
});

Deno.test("cachedBrownPosTags writes the labels once and reads them back for the same tokens", async () => {
  await prepareBrown({ outDir: DEFAULT_BROWN_DIR, log: () => {} });
  const dir = await Deno.makeTempDir({ prefix: "twofour_pos_" });
  try {
    for (const name of ["meta.json", "train.bin", "val.bin"]) {
      await Deno.copyFile(`${DEFAULT_BROWN_DIR}/${name}`, `${dir}/${name}`);
    }
    const data = await loadBrown(dir);
    const built = await cachedBrownPosTags(dir, data);
    const direct = await loadBrownPosTags(data);
    assert(
      built.train.every((l, i) => l === direct.train[i]) &&
        built.val.every((l, i) => l === direct.val[i]),
      "the cached labels should equal the built ones",
    );
    // A changed label in the file comes back: the second call reads the file, not the corpus.
    const path = `${dir}/${POS_TAGS_FILE}`;
    const bytes = await Deno.readFile(path);
    const first = direct.train.findIndex((l) => l >= 0);
    bytes[12 + first] = (direct.train[first] + 1) % UNIVERSAL_TAGS.length;
    await Deno.writeFile(path, bytes);
    const read = await cachedBrownPosTags(dir, data);
    assert(read.train[first] === bytes[12 + first], "the file's label should be read back");
    // Labels written for other tokens (another hash) are rebuilt.
    bytes[4] ^= 1;
    await Deno.writeFile(path, bytes);
    const rebuilt = await cachedBrownPosTags(dir, data);
    assert(rebuilt.train[first] === direct.train[first], "a stale file should be rebuilt");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
