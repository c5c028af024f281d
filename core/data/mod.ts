/**
 * The language data every experiment trains on: the Brown corpus (500 documents of edited American
 * English, 15 genres) tokenised with the GPT-2 BPE and cached as binary token files, like nanoGPT's
 * `prepare.py` (`deno task prepare` builds the cache; everything but {@linkcode prepareBrown} reads
 * only the cache and imports no package).
 *
 * One file per concern: `cache.ts` (shared names), `genres.ts` (labels), `text.ts` (POS-tag text
 * rebuilding), `split.ts` (the train/validation split), `token_file.ts` (the `.bin` format),
 * `brown.ts` (loading the cache), `prepare.ts` (building it), `vocab.ts` (vocabulary reduction),
 * `batches.ts` (training windows), `passages.ts` (genre classification passages), `pos.ts`
 * (part-of-speech labels of the tokens); and the images of the ViT experiment, Fashion-MNIST
 * (`fashion_mnist.ts`).
 *
 * @module
 */

export * from "./cache.ts";
export * from "./genres.ts";
export * from "./text.ts";
export * from "./split.ts";
export * from "./token_file.ts";
export {
  type BrownCounts,
  type BrownData,
  type BrownDocument,
  type BrownMeta,
  type BrownSplit,
  type BrownSplitMeta,
  loadBrown,
} from "./brown.ts";
export * from "./prepare.ts";
export * from "./vocab.ts";
export * from "./batches.ts";
export * from "./passages.ts";
export * from "./pos.ts";
export * from "./fashion_mnist.ts";
