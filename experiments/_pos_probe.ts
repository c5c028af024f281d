/**
 * Part-of-speech probing of a pre-trained LM (the downstream task with thousands of labels beside
 * genre classification, SPEC §6): the frozen model's final hidden states of Brown windows, a
 * linear softmax probe trained on the training documents' tokens, accuracy on the validation
 * documents' tokens (split by document; labels from `core/data/pos.ts`).
 *
 * @module
 */

import type { GPT } from "../core/gpt2.ts";
import type { BrownDocument } from "../core/data/mod.ts";
import { UNIVERSAL_TAGS } from "../core/data/mod.ts";
import { uniforms } from "../reference/rng.ts";

/** Labelled windows of a split: `count` windows of `blockSize` tokens, one label per token. */
export interface PosWindows {
  /** Token ids (the model's vocabulary), `count·blockSize`. */
  tokens: Int32Array;
  /** Universal tag index per token, −1 where none. */
  labels: Int8Array;
  /** Number of windows. */
  count: number;
}

/**
 * Windows of `blockSize` tokens from each document: `min(perDoc, ⌊n/blockSize⌋)` of them, the
 * first `blockSize` tokens of equal slots of the document (no overlap, no window crossing
 * documents), as for the genre passages.
 *
 * @param tokens The split's tokens in the model's vocabulary.
 * @param labels The split's labels, aligned with `tokens`.
 * @param documents The split's documents.
 * @param o `{ blockSize, perDoc }`.
 */
export function posWindows(
  tokens: ArrayLike<number>,
  labels: Int8Array,
  documents: readonly BrownDocument[],
  o: { blockSize: number; perDoc: number },
): PosWindows {
  const starts: number[] = [];
  for (const doc of documents) {
    const n = doc.end - doc.start;
    const k = Math.min(o.perDoc, Math.floor(n / o.blockSize));
    for (let j = 0; j < k; j++) starts.push(doc.start + j * Math.floor(n / k));
  }
  const T = o.blockSize;
  const out = {
    tokens: new Int32Array(starts.length * T),
    labels: new Int8Array(starts.length * T),
  };
  starts.forEach((s, w) => {
    for (let t = 0; t < T; t++) {
      out.tokens[w * T + t] = tokens[s + t];
      out.labels[w * T + t] = labels[s + t];
    }
  });
  return { ...out, count: starts.length };
}

/** The labelled tokens' hidden states (`[n, nEmbd]`) and labels, `batchSize` windows at a time. */
export async function probeFeatures(
  model: GPT,
  windows: PosWindows,
  o: { blockSize: number; batchSize: number; dense: boolean },
): Promise<{ features: Float32Array; labels: Int8Array }> {
  const d = model.config.nEmbd, T = o.blockSize;
  let n = 0;
  for (const l of windows.labels) if (l >= 0) n++;
  const features = new Float32Array(n * d), labels = new Int8Array(n);
  let row = 0;
  for (let w = 0; w < windows.count; w += o.batchSize) {
    const b = Math.min(o.batchSize, windows.count - w);
    const hidden = await model.hiddenStates(
      windows.tokens.subarray(w * T, (w + b) * T),
      b,
      { dense: o.dense },
    );
    model.backend.release();
    for (let i = 0; i < b * T; i++) {
      const label = windows.labels[w * T + i];
      if (label < 0) continue;
      features.set(hidden.subarray(i * d, (i + 1) * d), row * d);
      labels[row++] = label;
    }
  }
  return { features, labels };
}

/** Options of {@linkcode trainLinearProbe}. */
export interface ProbeOptions {
  /** Passes over the training tokens. */
  epochs: number;
  /** Adam learning rate. */
  lr: number;
  /** Tokens per Adam step. */
  batchSize: number;
  /** L2 penalty on the weights. */
  l2: number;
  /** Seed of the order of the tokens. */
  seed: number;
}

/** A trained softmax probe: standardisation and the `[classes, d + 1]` weights (bias last). */
export interface LinearProbe {
  /** Feature means of the training tokens. */
  mean: Float64Array;
  /** Feature standard deviations of the training tokens (1 where 0). */
  scale: Float64Array;
  /** `classes × (d + 1)` weights, row-major, the bias last in each row. */
  weights: Float64Array;
  /** Number of classes. */
  classes: number;
}

/**
 * Trains a multinomial logistic regression on standardised features with Adam (minibatches in a
 * seeded order), in float64 on the host.
 *
 * @param features `[n, d]` features.
 * @param labels `n` labels in `[0, classes)`.
 * @param d Feature width.
 * @param classes Number of classes.
 * @param o Epochs, learning rate, batch size, L2 penalty, seed.
 */
export function trainLinearProbe(
  features: Float32Array,
  labels: Int8Array,
  d: number,
  classes: number,
  o: ProbeOptions,
): LinearProbe {
  const n = labels.length;
  const mean = new Float64Array(d), scale = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mean[k] += features[i * d + k] / n;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) scale[k] += (features[i * d + k] - mean[k]) ** 2 / n;
  }
  for (let k = 0; k < d; k++) scale[k] = Math.sqrt(scale[k]) || 1;
  const D = d + 1;
  const weights = new Float64Array(classes * D);
  const m = new Float64Array(weights.length), v = new Float64Array(weights.length);
  const grad = new Float64Array(weights.length);
  const x = new Float64Array(D), p = new Float64Array(classes);
  let t = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    // Fisher–Yates with Philox uniforms of stream `epoch`.
    const u = uniforms(o.seed, epoch, n);
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.min(i, Math.floor(u[i] * (i + 1)));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let start = 0; start < n; start += o.batchSize) {
      const rows = order.slice(start, start + o.batchSize);
      grad.fill(0);
      for (const r of rows) {
        standardise(features, r, mean, scale, x);
        softmax(weights, x, classes, p);
        p[labels[r]] -= 1;
        for (let c = 0; c < classes; c++) {
          for (let k = 0; k < D; k++) grad[c * D + k] += p[c] * x[k] / rows.length;
        }
      }
      t++;
      for (let i = 0; i < weights.length; i++) {
        const g = grad[i] + (i % D === d ? 0 : o.l2 * weights[i]);
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        const mHat = m[i] / (1 - 0.9 ** t), vHat = v[i] / (1 - 0.999 ** t);
        weights[i] -= o.lr * mHat / (Math.sqrt(vHat) + 1e-8);
      }
    }
  }
  return { mean, scale, weights, classes };
}

function standardise(
  features: Float32Array,
  row: number,
  mean: Float64Array,
  scale: Float64Array,
  x: Float64Array,
): void {
  const d = mean.length;
  for (let k = 0; k < d; k++) x[k] = (features[row * d + k] - mean[k]) / scale[k];
  x[d] = 1;
}

function softmax(weights: Float64Array, x: Float64Array, classes: number, p: Float64Array): void {
  const D = x.length;
  let max = -Infinity;
  for (let c = 0; c < classes; c++) {
    let z = 0;
    for (let k = 0; k < D; k++) z += weights[c * D + k] * x[k];
    p[c] = z;
    if (z > max) max = z;
  }
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += p[c] = Math.exp(p[c] - max);
  for (let c = 0; c < classes; c++) p[c] /= sum;
}

/** The fraction of rows whose arg-max class is the label. */
export function probeAccuracy(
  probe: LinearProbe,
  features: Float32Array,
  labels: Int8Array,
): number {
  const d = probe.mean.length;
  const x = new Float64Array(d + 1), p = new Float64Array(probe.classes);
  let correct = 0;
  for (let r = 0; r < labels.length; r++) {
    standardise(features, r, probe.mean, probe.scale, x);
    softmax(probe.weights, x, probe.classes, p);
    let best = 0;
    for (let c = 1; c < probe.classes; c++) if (p[c] > p[best]) best = c;
    if (best === labels[r]) correct++;
  }
  return correct / labels.length;
}

/** What {@linkcode posProbe} reports. */
export interface PosProbeResult {
  /** Validation token accuracy. */
  accuracy: number;
  /** Accuracy of always answering the most frequent validation tag. */
  majority: number;
  /** Labelled training tokens. */
  trainTokens: number;
  /** Labelled validation tokens. */
  valTokens: number;
}

/**
 * Probes a pre-trained model for part-of-speech tags: features of the training and validation
 * windows, a linear probe on the first, accuracy on the second.
 *
 * @param model The pre-trained model (frozen).
 * @param train Training windows.
 * @param val Validation windows.
 * @param o Window length, forward batch size, evaluation weights (`dense`), probe options.
 */
export async function posProbe(
  model: GPT,
  train: PosWindows,
  val: PosWindows,
  o: { blockSize: number; batchSize: number; dense: boolean; probe: ProbeOptions },
): Promise<PosProbeResult> {
  const tr = await probeFeatures(model, train, o);
  const va = await probeFeatures(model, val, o);
  const classes = UNIVERSAL_TAGS.length;
  const probe = trainLinearProbe(tr.features, tr.labels, model.config.nEmbd, classes, o.probe);
  const counts = new Array<number>(classes).fill(0);
  for (const l of va.labels) counts[l]++;
  return {
    accuracy: probeAccuracy(probe, va.features, va.labels),
    majority: Math.max(...counts) / va.labels.length,
    trainTokens: tr.labels.length,
    valTokens: va.labels.length,
  };
}
