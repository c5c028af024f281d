/**
 * A damaged data cache is rebuilt, never silently: a truncated token file, a truncated vocabulary
 * and a vocabulary built from another `train.bin` are each rebuilt with a line naming the file and
 * why, and the rebuilt data equal the originals (the build is deterministic).
 */

import { prepareBrown } from "../core/data/mod.ts";
import { type LmData, loadLmData } from "../experiments/lm.ts";
import { assert, assertEqualArrays } from "../reference/testing.ts";

async function logged(fn: () => Promise<LmData>): Promise<{ data: LmData; lines: string[] }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => lines.push(String(line));
  try {
    return { data: await fn(), lines };
  } finally {
    console.log = log;
  }
}

function expectLine(lines: string[], parts: string[], label: string): void {
  assert(
    lines.some((l) => parts.every((p) => l.includes(p))),
    `${label}: no line with ${JSON.stringify(parts)} in:\n${lines.join("\n").slice(0, 2000)}`,
  );
}

Deno.test("a truncated token cache or vocabulary is rebuilt with a message naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await prepareBrown({ outDir: dir, log: () => {} });
    const { data: original } = await logged(() => loadLmData(dir, 64));

    const train = `${dir}/train.bin`;
    const bytes = await Deno.readFile(train);
    await Deno.writeFile(train, bytes.subarray(0, bytes.length >> 1));
    const tokens = await logged(() => loadLmData(dir, 64));
    expectLine(tokens.lines, [train, "truncated", "building it"], "truncated train.bin");
    assertEqualArrays(tokens.data.train, original.train, "rebuilt training tokens");

    const vocabFile = `${dir}/vocab_64.json`;
    const text = await Deno.readTextFile(vocabFile);
    await Deno.writeTextFile(vocabFile, text.slice(0, 100));
    const vocab = await logged(() => loadLmData(dir, 64));
    expectLine(vocab.lines, [vocabFile, "invalid JSON", "rebuilding it"], "truncated vocabulary");
    expectLine(vocab.lines, [vocabFile, "does not exist; building it"], "truncated vocabulary");
    assertEqualArrays(vocab.data.val, original.val, "rebuilt vocabulary");

    const stale = JSON.parse(await Deno.readTextFile(vocabFile));
    await Deno.writeTextFile(vocabFile, JSON.stringify({ ...stale, trainChecksum: "0" }));
    const rebuilt = await logged(() => loadLmData(dir, 64));
    expectLine(rebuilt.lines, [vocabFile, "another train.bin; building it"], "stale vocabulary");
    assertEqualArrays(rebuilt.data.train, original.train, "vocabulary rebuilt for train.bin");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
