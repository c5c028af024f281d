/**
 * Genre fine-tuning of a pre-trained language model (the project's GLUE stand-in, SPEC §6): the
 * protocol of P1 and P2 Table 6 (how each method's model is fine-tuned and evaluated), its
 * schedule and configuration check, and the fine-tuning run `gpt2.ts` reports. Split from
 * `lm.ts` (pre-training), which it uses for the data and the progress format.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { genrePassages, type LabelSet } from "../core/data/mod.ts";
import { type Batch, GPT, type GPTConfig } from "../core/gpt2.ts";
import { sparseMethodTraits, type SparseOptions } from "../core/sparse.ts";
import { assertCosineSchedule, type CosineSchedule } from "../core/schedule.ts";
import { Tape } from "../core/autograd.ts";
import { Trainer } from "../core/trainer.ts";
import { loadWeights } from "../core/checkpoint.ts";
import { assertInt, assertNumber, assertOneOf } from "./_config.ts";
import { formatSeconds, type LmData } from "./lm.ts";

/** The label sets of the genre fine-tuning task, for validating `--labels`. */
export const LABEL_SETS: readonly LabelSet[] = ["genre", "group", "binary"];

/** The schedule of the genre fine-tuning: 10% warm-up (at least one step), floor lr/10. */
export function finetuneSchedule(steps: number, lr: number): CosineSchedule {
  return {
    totalSteps: steps,
    peakLr: lr,
    warmupSteps: Math.max(1, Math.round(steps / 10)),
    minLr: lr / 10,
  };
}

/**
 * Checks the fine-tuning keys (`finetuneSteps`, `finetuneBatch`, `finetuneLr`, `passageTokens`,
 * `maxPerDoc`, `labels`) before any work.
 *
 * @throws {RangeError|TypeError} On the first invalid value.
 */
export function checkFinetuneConfig(cfg: {
  blockSize: number;
  finetuneSteps: number;
  finetuneBatch: number;
  finetuneLr: number;
  passageTokens: number;
  maxPerDoc: number;
  labels: string;
}): LabelSet {
  // The schedule needs a step after its warm-up step.
  assertInt("finetuneSteps", cfg.finetuneSteps, 2);
  assertInt("finetuneBatch", cfg.finetuneBatch, 1);
  assertNumber("finetuneLr", cfg.finetuneLr, 0, { exclusiveMin: true });
  assertCosineSchedule(finetuneSchedule(cfg.finetuneSteps, cfg.finetuneLr));
  assertInt("passageTokens", cfg.passageTokens, 1, cfg.blockSize);
  assertInt("maxPerDoc", cfg.maxPerDoc, 1);
  return assertOneOf("labels", cfg.labels, LABEL_SETS);
}

/** Options of {@linkcode finetuneGenre}. */
export interface FinetuneOptions {
  /** Progress label. */
  label: string;
  /** The backend. */
  backend: Backend;
  /** The pre-trained model's configuration (its method decides how it is fine-tuned). */
  model: GPTConfig;
  /** The pre-trained checkpoint. */
  checkpoint: string;
  /** The data (documents for passages). */
  data: LmData;
  /** Tokens per passage. */
  passageTokens: number;
  /** Passages per document at most. */
  maxPerDoc: number;
  /** Label set of the task. */
  labels: LabelSet;
  /** Optimizer steps. */
  steps: number;
  /** Passages per step. */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Seed (batch order, head initialisation). */
  seed: number;
}

/** How a pre-trained model is fine-tuned and evaluated (see {@linkcode finetuneProtocol}). */
export interface FinetuneProtocol {
  /** The sparse options of the fine-tuned model. */
  sparse: SparseOptions;
  /** Whether it is evaluated with its dense weights (else with its 2:4 weights β·S(W)). */
  evalDense: boolean;
}

/**
 * The fine-tuning protocol of P1 and P2 Table 6 (SPEC §6): a soft-threshold (S-STE) model is
 * fine-tuned with β·S(W) in the forward (its pre-trained β and β recipe) and a plain backward —
 * no MVUE, no FP8 — and evaluated with β·S(W); every other model is fine-tuned and evaluated
 * dense (P1 fine-tunes a +DF model plain dense; STE, SR-STE and T-SR-STE models likewise).
 *
 * @param pretrained The sparse options the model was pre-trained with.
 * @returns The fine-tuned model's sparse options and its evaluation weights.
 */
export function finetuneProtocol(pretrained: SparseOptions): FinetuneProtocol {
  if (sparseMethodTraits(pretrained.method).weight === "soft") {
    return {
      sparse: { ...pretrained, mvue: false, mvueOnWeight: false, fp8: false },
      evalDense: false,
    };
  }
  return { sparse: { method: "dense" }, evalDense: true };
}

/**
 * Builds the model a pre-trained checkpoint is fine-tuned as ({@linkcode finetuneProtocol}): the
 * pre-trained weights (and, for S-STE, its β), a fresh classification head of `classes` outputs.
 *
 * @param backend The backend.
 * @param o The pre-trained configuration, its checkpoint, the number of classes and the seed of
 * the head's initialisation.
 * @returns The model and whether it is evaluated dense.
 */
export async function finetuneModel(
  backend: Backend,
  o: { model: GPTConfig; checkpoint: string; classes: number; seed: number },
): Promise<{ model: GPT; evalDense: boolean }> {
  const protocol = finetuneProtocol(o.model.sparse ?? { method: "dense" });
  const config: GPTConfig = { ...o.model, sparse: protocol.sparse, numClasses: o.classes };
  const model = await GPT.create(backend, config, { seed: o.seed });
  const head = model.parameters().filter((p) => p.name.startsWith("classifier")).map((p) => p.name);
  // The same method restores S-STE's pre-trained β; a dense model loads the weights alone.
  await loadWeights(o.checkpoint, model, { allowMissing: head });
  return { model, evalDense: protocol.evalDense };
}

/**
 * Fine-tunes a pre-trained model on genre classification of Brown passages (the project's GLUE
 * stand-in) with a mean-pooling classification head, and returns validation accuracy. The model
 * is fine-tuned and evaluated as {@linkcode finetuneProtocol} says (dense, or S-STE's β·S(W)).
 */
export async function finetuneGenre(
  o: FinetuneOptions,
): Promise<
  {
    accuracy: number;
    majority: number;
    classes: number;
    trainPassages: number;
    valPassages: number;
    evalDense: boolean;
  }
> {
  const vocab = o.data.vocab;
  const opts = { passageTokens: o.passageTokens, maxPerDoc: o.maxPerDoc, labels: o.labels, vocab };
  const train = genrePassages(o.data.brown.train, opts);
  const val = genrePassages(o.data.brown.val, opts);
  const classes = train.labelNames.length;
  const { model, evalDense } = await finetuneModel(o.backend, {
    model: o.model,
    checkpoint: o.checkpoint,
    classes,
    seed: o.seed,
  });
  const trainer = new Trainer(model, { ...finetuneSchedule(o.steps, o.lr), seed: o.seed });
  const P = o.passageTokens;
  const pick = (src: typeof train, rows: number[]): Batch => {
    const tokens = new Int32Array(rows.length * P);
    const targets = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      tokens.set(src.tokens.subarray(r * P, (r + 1) * P), i * P);
      targets[i] = src.labels[r];
    });
    return { tokens, targets, batchSize: rows.length };
  };
  // Deterministic shuffled order (xorshift on the seed). Not the project's Philox: the committed
  // fine-tune accuracies were produced with this order, and changing it would change them.
  let state = (o.seed * 2654435761 + 1) >>> 0 || 1;
  const rand = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
  const order: number[] = [];
  const t0 = performance.now();
  for (let s = 0; s < o.steps; s++) {
    const rows: number[] = [];
    for (let i = 0; i < o.batchSize; i++) {
      if (order.length === 0) {
        const perm = Array.from({ length: train.count }, (_, k) => k);
        for (let k = perm.length - 1; k > 0; k--) {
          const j = Math.floor(rand() * (k + 1));
          [perm[k], perm[j]] = [perm[j], perm[k]];
        }
        order.push(...perm);
      }
      rows.push(order.pop()!);
    }
    const r = await trainer.trainStep(pick(train, rows));
    if ((s + 1) % 25 === 0 || s + 1 === o.steps) {
      console.log(
        `${o.label.padEnd(12)} finetune ${s + 1}/${o.steps}  loss ${r.loss.toFixed(3)}  ${
          formatSeconds((performance.now() - t0) / 1000)
        }`,
      );
    }
  }
  let correct = 0;
  for (let start = 0; start < val.count; start += o.batchSize) {
    const rows = Array.from(
      { length: Math.min(o.batchSize, val.count - start) },
      (_, i) => start + i,
    );
    const batch = pick(val, rows);
    const tape = new Tape(o.backend, { recording: false });
    const logits = model.forward(
      tape,
      o.backend.indices(batch.tokens, [batch.tokens.length]),
      batch.batchSize,
      { dense: evalDense },
    );
    const values = await o.backend.read(logits.value);
    for (let i = 0; i < rows.length; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) {
        if (values[i * classes + c] > values[i * classes + best]) best = c;
      }
      if (best === batch.targets[i]) correct++;
    }
    o.backend.release();
  }
  // The accuracy of always answering the most frequent validation class: the floor to beat.
  const counts = new Array<number>(classes).fill(0);
  for (const l of val.labels) counts[l]++;
  return {
    accuracy: correct / val.count,
    majority: Math.max(...counts) / val.count,
    classes,
    trainPassages: train.count,
    valPassages: val.count,
    evalDense,
  };
}
