/**
 * The import layering of STYLE.md, checked on every TypeScript file of the repository: a `_`-file
 * is private to its folder (a subfolder is another folder); `reference/` imports nothing outside
 * itself (`node:` built-ins aside); imports run reference ← core ← gpu ← experiments, the root
 * `mod.ts` re-exports the lower three, and `tests/` may import any public module while nothing
 * imports `tests/`. Fails naming `file:line`, the specifier and the rule of each offending import.
 *
 * @module
 */

import { posix, relative, sep } from "node:path";
import { assert } from "../reference/testing.ts";
import { repoFiles, ROOT } from "./_repo_files.ts";

/** Layer of each top-level folder (`""` is the root); an import may only go to a lower or equal one. */
const LAYERS: Record<string, number> = {
  reference: 0,
  core: 1,
  gpu: 2,
  "": 2.5,
  experiments: 3,
  tests: 4,
};

/** One module reference in a file, as written. */
export interface ImportRef {
  specifier: string;
  line: number;
}

/** One import that breaks a rule. */
export interface Violation {
  file: string;
  line: number;
  specifier: string;
  rule: string;
}

// `… from "x"` (imports and re-exports, also spread over lines), `import "x"`, `import("x")`, and
// `new URL("x.ts", import.meta.url)` (workers and subprocess scripts load modules that way).
const REFERENCES = [
  /\bfrom\s*["']([^"'\n]+)["']/g,
  /\bimport\s*\(?\s*["']([^"'\n]+)["']/g,
  /\bnew URL\(\s*["']([^"'\n]+\.ts)["']\s*,\s*import\.meta\.url/g,
];

/**
 * The module specifiers a source file refers to, with their lines (doc examples included: `deno
 * test --doc` runs them from the file's folder).
 *
 * @param text A file's contents.
 * @returns The references, in order of the patterns then of appearance.
 */
export function importsOf(text: string): ImportRef[] {
  const found: ImportRef[] = [];
  for (const pattern of REFERENCES) {
    for (const m of text.matchAll(pattern)) {
      const line = text.slice(0, m.index).split("\n").length;
      found.push({ specifier: m[1], line });
    }
  }
  return found;
}

const topFolder = (path: string) => path.includes("/") ? path.slice(0, path.indexOf("/")) : "";

/**
 * The imports of a set of files that break the layering.
 *
 * @param files Source text by path relative to the repository root, `/`-separated.
 * @returns One entry per offending import.
 */
export function layeringViolations(files: ReadonlyMap<string, string>): Violation[] {
  const found: Violation[] = [];
  for (const [file, text] of files) {
    const from = topFolder(file);
    for (const { specifier, line } of importsOf(text)) {
      const add = (rule: string) => found.push({ file, line, specifier, rule });
      if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
        if (from === "reference" && !specifier.startsWith("node:")) {
          add("reference/ imports nothing outside itself");
        }
        continue;
      }
      const target = posix.normalize(posix.join(posix.dirname(file), specifier));
      const to = topFolder(target);
      if (posix.basename(target).startsWith("_") && posix.dirname(target) !== posix.dirname(file)) {
        const folder = posix.dirname(target);
        add(`a _-file is private to its folder ${folder === "." ? "(the root)" : `${folder}/`}`);
      }
      if (from === "reference" && to !== "reference") {
        add("reference/ imports nothing outside itself");
      } else if (!(to in LAYERS) || !(from in LAYERS)) {
        add(`${to in LAYERS ? from : to}/ has no place in the layering`);
      } else if (LAYERS[to] > LAYERS[from]) {
        add(`imports run reference ← core ← gpu ← (mod.ts) ← experiments ← tests`);
      }
    }
  }
  return found;
}

Deno.test("layeringViolations finds each kind of offending import, and only those", () => {
  // `%` stands for a quote, so the repository scan does not take these for this file's imports.
  const files = new Map<string, string>(
    [
      ["reference/a.ts", "import { b } from %./_b.ts%;\nimport { m } from %../core/m.ts%;"],
      ["reference/c.ts", "import %npm:left-pad%;\nimport { join } from %node:path%;"],
      ["core/m.ts", "import { g } from %../gpu/g.ts%;\nexport * from %../reference/a.ts%;"],
      ["core/cpu/k.ts", "import {\n  x,\n} from %../_private.ts%;\nimport { y } from %./_y.ts%;"],
      ["gpu/g.ts", "const w = new URL(%../experiments/_lm.ts%, import.meta.url);"],
      ["experiments/e.ts", "const t = await import(%../tests/_helper.ts%);\nimport %../mod.ts%;"],
      [
        "tests/t.ts",
        "import { e } from %../experiments/e.ts%;\nimport { z } from %../tools/z.ts%;",
      ],
      ["mod.ts", "export * from %./gpu/g.ts%;"],
    ].map(([file, text]) => [file, text.replaceAll("%", '"')]),
  );
  const got = layeringViolations(files).map((v) =>
    `${v.file}:${v.line} ${v.specifier} | ${v.rule}`
  );
  const want = [
    "reference/a.ts:2 ../core/m.ts | reference/ imports nothing outside itself",
    "reference/c.ts:1 npm:left-pad | reference/ imports nothing outside itself",
    "core/m.ts:1 ../gpu/g.ts | imports run reference ← core ← gpu ← (mod.ts) ← experiments ← tests",
    "core/cpu/k.ts:3 ../_private.ts | a _-file is private to its folder core/",
    "gpu/g.ts:1 ../experiments/_lm.ts | a _-file is private to its folder experiments/",
    "gpu/g.ts:1 ../experiments/_lm.ts | imports run reference ← core ← gpu ← (mod.ts) ← experiments ← tests",
    "experiments/e.ts:1 ../tests/_helper.ts | a _-file is private to its folder tests/",
    "experiments/e.ts:1 ../tests/_helper.ts | imports run reference ← core ← gpu ← (mod.ts) ← experiments ← tests",
    "tests/t.ts:2 ../tools/z.ts | tools/ has no place in the layering",
  ];
  assert(
    got.join("\n") === want.join("\n"),
    `violations:\n${got.join("\n")}\nwant:\n${want.join("\n")}`,
  );
});

Deno.test("every import in the repository follows the layering", async () => {
  const files = new Map<string, string>();
  for await (const path of repoFiles(ROOT, /\.(ts|tsx|js|mjs)$/)) {
    files.set(relative(ROOT, path).split(sep).join("/"), await Deno.readTextFile(path));
  }
  const refs = [...files.values()].reduce((n, text) => n + importsOf(text).length, 0);
  console.log(`layering: ${refs} module references in ${files.size} files`);
  assert(
    files.has("core/mod.ts") && refs > 0,
    `Cannot check the layering: no sources under ${ROOT}`,
  );
  const bad = layeringViolations(files);
  assert(
    bad.length === 0,
    `${bad.length} imports break the layering:\n` +
      bad.map((v) => `${v.file}:${v.line}: ${v.specifier} (${v.rule})`).join("\n"),
  );
});
