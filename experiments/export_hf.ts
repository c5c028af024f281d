/**
 * Exports a twofour GPT to a Hugging Face `transformers` GPT-2 directory (`config.json`,
 * `model.safetensors`) plus `twofour_reference.safetensors`: a fixed batch and twofour's logits on
 * it, against which `tools/hf_layout_check.py` (NumPy) and `experiments/hf_check.py`
 * (`GPT2LMHeadModel.from_pretrained`) compare. What to expect: both checks agree within float32
 * tolerance (1e-4 absolute + 1e-4 relative); see `results/interop/`.
 *
 * The model is either a twofour checkpoint (`--checkpoint=PATH`; its configuration is read from the
 * checkpoint; with `--data=data/brown`, the reduced vocabulary's GPT-2 ids go into the metadata) or, for a
 * self-contained demonstration, a fresh model of size `--model` trained for `--steps` steps on a
 * synthetic next-token rule (`t' = (5t + 3) mod V`) on the reference backend.
 *
 * Usage:
 *   deno task export_hf --method=s-ste --out=results/interop/tiny_s-ste
 *   deno task export_hf --checkpoint=run/ckpt.safetensors --data=data/brown --out=export/s-ste
 *
 * @module
 */

import {
  type Backend,
  GPT,
  GPT2_VOCAB_SIZE,
  type GPTConfig,
  gptConfig,
  type GPTPreset,
  type HfVocabMap,
  loadSafetensors,
  loadVocab,
  loadWeights,
  ReferenceBackend,
  saveHfGpt2,
  saveHfReference,
  SPARSE_METHODS,
  Trainer,
} from "../core/mod.ts";
import { assertInt, assertNumber, assertOneOf, parseConfig, runCli } from "./_config.ts";

// ---- configuration ------------------------------------------------------------------------------
const DEFAULTS = {
  /** A twofour checkpoint to export (empty: train a fresh model on the synthetic rule). */
  checkpoint: "",
  /** Brown data folder whose reduced vocabulary the checkpoint's model uses (empty: not recorded). */
  data: "",
  /** Fresh model: preset size (`tiny` or `mini`). */
  model: "tiny",
  /** Fresh model: the 2:4 method of the FFN linears. */
  method: "s-ste",
  /** Fresh model: training steps on the synthetic rule. */
  steps: 30,
  /** Fresh model: peak learning rate. */
  lr: 1e-2,
  /** Seed (initialisation, training batches; the reference batch uses seed + 1). */
  seed: 1,
  /** Sequences in a batch (training and reference). */
  batch: 4,
  /** Export the dense master weights W instead of the effective 2:4 weights. */
  dense: false,
  /** Output directory. */
  out: "results/interop/export",
};
type Config = typeof DEFAULTS;

/** `batch` sequences of length `T` following `t' = (5t + 3) mod V` from seeded starts. */
function ruleBatch(vocabSize: number, T: number, batch: number, seed: number) {
  let state = (seed * 2654435761) >>> 0;
  const tokens = new Int32Array(batch * T);
  const targets = new Int32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    let t = state % vocabSize;
    for (let i = 0; i < T; i++) {
      tokens[b * T + i] = t;
      t = (5 * t + 3) % vocabSize;
      targets[b * T + i] = t;
    }
  }
  return { tokens, targets, batchSize: batch };
}

async function fromCheckpoint(backend: Backend, config: Config) {
  const { metadata } = await loadSafetensors(config.checkpoint);
  const modelConfig = JSON.parse(metadata.model) as GPTConfig;
  const model = await GPT.create(backend, modelConfig, { seed: 0 });
  await loadWeights(config.checkpoint, model);
  let vocab: HfVocabMap | undefined;
  const reduced = model.config.vocabSize < GPT2_VOCAB_SIZE; // the full vocabulary is the identity
  if (reduced && config.data !== "") vocab = await loadVocab(config.data, model.config.vocabSize);
  else if (reduced) console.log("vocabulary map: not recorded (no --data)");
  return { model, vocab };
}

/** The sizes `--model` may name (the small presets of `gptConfig`). */
const MODEL_SIZES: readonly GPTPreset[] = ["tiny", "mini"];

async function trainFresh(backend: Backend, config: Config) {
  const modelConfig = gptConfig(assertOneOf("model", config.model, MODEL_SIZES), {
    sparse: { method: assertOneOf("method", config.method, SPARSE_METHODS) },
  });
  const model = await GPT.create(backend, modelConfig, { seed: config.seed });
  const trainer = new Trainer(model, {
    totalSteps: config.steps,
    peakLr: config.lr,
    warmupSteps: Math.min(5, Math.floor(config.steps / 2)),
    minLr: config.lr / 10,
    seed: config.seed,
  });
  const { vocabSize, blockSize } = model.config;
  for (let s = 0; s < config.steps; s++) {
    const { loss } = await trainer.trainStep(
      ruleBatch(vocabSize, blockSize, config.batch, config.seed * 1000 + s),
    );
    if (s === 0 || s === config.steps - 1) console.log(`step ${s}: loss ${loss.toFixed(4)}`);
  }
  return { model, vocab: undefined };
}

/**
 * Exports with `--key=value` arguments.
 *
 * @param args Command-line arguments.
 * @throws {TypeError|RangeError} On an invalid flag, before any work.
 */
export async function main(args: string[]): Promise<void> {
  const config = parseConfig(DEFAULTS, args);
  assertInt("steps", config.steps, 1);
  assertInt("batch", config.batch, 1);
  assertInt("seed", config.seed, 0, 2 ** 32 - 1);
  assertNumber("lr", config.lr, 0, { exclusiveMin: true });
  assertOneOf("model", config.model, MODEL_SIZES);
  assertOneOf("method", config.method, SPARSE_METHODS);
  const backend = new ReferenceBackend();
  const { model, vocab } = config.checkpoint
    ? await fromCheckpoint(backend, config)
    : await trainFresh(backend, config);
  await saveHfGpt2(config.out, model, { dense: config.dense, vocab });
  const { vocabSize, blockSize } = model.config;
  const reference = ruleBatch(vocabSize, blockSize, config.batch, config.seed + 1);
  const logits = await saveHfReference(config.out, model, {
    tokens: reference.tokens,
    batchSize: reference.batchSize,
    dense: config.dense,
  });
  backend.release();
  const c = model.config;
  console.log(
    `exported ${c.sparse.method} (${config.dense ? "dense W" : "effective weights"}), ` +
      `V=${c.vocabSize} T=${c.blockSize} L=${c.nLayer} h=${c.nHead} d=${c.nEmbd} to ${config.out}; ` +
      `reference logits [${config.batch}, ${blockSize}, ${vocabSize}] (${logits.length} values)`,
  );
}

if (import.meta.main) await runCli(main);
