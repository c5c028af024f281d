/**
 * The prepared Brown cache (`train.bin`, `val.bin`, `meta.json`): its metadata types and the
 * loader that checks the files agree. Reads only the cache and imports no package, so a machine
 * without network trains from the cache alone; `prepare.ts` builds it.
 *
 * @module
 */

import { DataCacheError, DEFAULT_BROWN_DIR } from "./cache.ts";
import type { BrownGenre } from "./genres.ts";
import { loadTokens } from "./token_file.ts";
import { hex } from "./_hash.ts";

/** The `format` field of `meta.json`. */
export const BROWN_FORMAT = "twofour-brown";
/** The cache format version of `meta.json`. */
export const BROWN_FORMAT_VERSION = 1;

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
 * import { DataCacheError, loadBrown } from "./mod.ts";
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
  if (meta === null || typeof meta !== "object" || meta.format !== BROWN_FORMAT) {
    fail(`not a ${BROWN_FORMAT} file`);
  }
  if (meta.version !== BROWN_FORMAT_VERSION) {
    fail(`cache format version ${meta.version}, expected ${BROWN_FORMAT_VERSION}`);
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
