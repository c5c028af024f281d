/**
 * Names the whole data pipeline shares: the default cache directory, the GPT-2 tokenizer constants
 * and {@linkcode DataCacheError}.
 *
 * @module
 */

/** The default cache directory of {@linkcode prepareBrown} and {@linkcode loadBrown}. */
export const DEFAULT_BROWN_DIR = "data/brown";
/** The GPT-2 (`r50k_base`) end-of-text token id. */
export const GPT2_EOT = 50256;
/** The GPT-2 (`r50k_base`) vocabulary size. */
export const GPT2_VOCAB_SIZE = 50257;
/** The tokenizer the cache is built with (`gpt-tokenizer`'s `r50k_base`, i.e. GPT-2's BPE). */
export const TOKENIZER_NAME = "r50k_base";

/** Thrown when a cached data file (`.bin`, `meta.json`, `vocab_*.json`) is missing or corrupt. */
export class DataCacheError extends Error {
  /** Creates the error; `message` names the file and the problem. */
  constructor(message: string) {
    super(message);
    this.name = "DataCacheError";
  }
}
