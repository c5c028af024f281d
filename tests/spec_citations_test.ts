/**
 * Every "SPEC §N" citation in the repository's sources and documents resolves to a section heading
 * of `SPEC.md` with the same number. Scans `.ts`, `.py` and `.md` files under the repository root
 * (not `results/`, `data/`, `node_modules/` or hidden folders) and fails naming `file:line` of
 * each citation that has no section.
 *
 * @module
 */

import { join, relative } from "node:path";
import { assert } from "../reference/testing.ts";
import { repoFiles, ROOT } from "./_repo_files.ts";

const SCANNED = /\.(ts|py|md)$/;

/** A section number as written (`9`, `2.7`), one cited place. */
export interface Citation {
  section: string;
  line: number;
}

const NUMBER = String.raw`\d+(?:\.\d+)*`;
// `§N`, `§N–M` (both ends are checked), `§§N`.
const SECTION_SIGN = new RegExp(String.raw`§§?\s*(${NUMBER})(?:\s*[–-]\s*(${NUMBER}))?`, "g");
// `SPEC N.M` without the sign, and the list that follows it: `SPEC 2.2, 2.3`, `SPEC 2.2/2.3`,
// `SPEC 2.7–2.8`. A list item needs a dot (`9, 12 groups` is not a list of sections) unless it
// ends a range.
const SPEC_WORD = new RegExp(
  String
    .raw`\bSPEC (${NUMBER})((?:\s*(?:,\s*|/|\s+and\s+)\d+\.\d+(?:\.\d+)*|\s*[–-]\s*${NUMBER})*)`,
  "g",
);

/**
 * The section numbers a text cites, with their lines: every `§N` (the project uses the sign only
 * for its spec) and every `SPEC N.M` written without it.
 *
 * @param text A file's contents.
 * @returns The citations in order of appearance.
 */
export function findCitations(text: string): Citation[] {
  const found: Citation[] = [];
  text.split("\n").forEach((content, index) => {
    const line = index + 1;
    for (const m of content.matchAll(SECTION_SIGN)) {
      found.push({ section: m[1], line });
      if (m[2]) found.push({ section: m[2], line });
    }
    for (const m of content.matchAll(SPEC_WORD)) {
      found.push({ section: m[1], line });
      for (const more of m[2].matchAll(new RegExp(NUMBER, "g"))) {
        found.push({ section: more[0], line });
      }
    }
  });
  return found.map((c) => ({ ...c, section: c.section.replace(/\.$/, "") }));
}

/**
 * The section numbers of a Markdown document's headings (`## 2. Title`, `### 2.7 Title`).
 *
 * @param markdown The document.
 * @returns The numbers, without a trailing dot.
 */
export function sectionNumbers(markdown: string): Set<string> {
  const heading = new RegExp(String.raw`^#{1,6}\s+(?:§\s*)?(${NUMBER})\.?(?:\s|$)`, "gm");
  return new Set([...markdown.matchAll(heading)].map((m) => m[1]));
}

Deno.test("findCitations reads signs, ranges, double signs and SPEC-word lists", () => {
  const sign = "\u00a7";
  const text = [
    `a (SPEC ${sign}2.7) b`,
    `SPEC ${sign}1.2–1.3 and ${sign}${sign}9.`,
    "SPEC 2.2, 2.3, 2.5 and 1.3; SPEC 2.2/2.3",
    `SPEC ${sign}9, 12 groups; SPEC 3 (gated); SPEC 1–2`,
    `no citation: SPEC_HARD_CASES, spec 2.7, ${sign} alone`,
  ].join("\n");
  const got = findCitations(text).map((c) => `${c.line}:${c.section}`);
  const want = [
    "1:2.7",
    "2:1.2",
    "2:1.3",
    "2:9",
    "3:2.2",
    "3:2.3",
    "3:2.5",
    "3:1.3",
    "3:2.2",
    "3:2.3",
    "4:9",
    "4:3",
    "4:1",
    "4:2",
  ];
  assert(got.join() === want.join(), `citations: got ${got.join()}, want ${want.join()}`);
});

Deno.test("sectionNumbers reads numbered headings only", () => {
  const doc = "# SPEC\n## 0. Conventions\n### 2.7 MVUE\n#### 10.1 Rules\n## Notes 3\ntext ## 4.";
  const got = [...sectionNumbers(doc)].join();
  assert(got === "0,2.7,10.1", `sections: got ${got}, want 0,2.7,10.1`);
});

Deno.test("every SPEC citation in the repository resolves to a section of SPEC.md", async () => {
  let spec: string;
  try {
    spec = await Deno.readTextFile(join(ROOT, "SPEC.md"));
  } catch (e) {
    throw new Error(
      `Cannot resolve SPEC citations: SPEC.md is missing at the repository root ${ROOT}, got ${e}`,
    );
  }
  const sections = sectionNumbers(spec);
  const unresolved: string[] = [];
  let count = 0, files = 0;
  for await (const path of repoFiles(ROOT, SCANNED)) {
    const citations = findCitations(await Deno.readTextFile(path));
    if (citations.length > 0) files++;
    count += citations.length;
    for (const { section, line } of citations) {
      if (!sections.has(section)) {
        unresolved.push(`${relative(ROOT, path)}:${line}: §${section}`);
      }
    }
  }
  console.log(`spec_citations: ${count} citations in ${files} files, ${sections.size} sections`);
  assert(count > 0, "Cannot check SPEC citations: no citation found (is the scan broken?)");
  assert(
    unresolved.length === 0,
    `${unresolved.length} SPEC citations have no section in SPEC.md:\n${unresolved.join("\n")}`,
  );
});
