/**
 * The small model of P2's mechanism figures (`p2_discontinuity.ts`, `p2_beta.ts`,
 * `p2_finetune.ts`): a two-layer tanh MLP classifier whose two weights are 2:4 sparse by hard
 * thresholding (STE, SPEC 1.1/2.1) or soft thresholding with a per-tensor β (S-STE, SPEC 1.2/1.3),
 * trained with Adam on a teacher-student task, in f64 plain loops (a few ms a step). The pruning
 * function can be evaluated with the current mask or with a frozen one (the smooth piece of SPEC
 * 1.2's function that the mask selects), which is what the discontinuity measurements compare
 * (SPEC §11.7).
 *
 * @module
 */

import { prune24 } from "../reference/prune.ts";
import { assertInt, parseList } from "./_config.ts";
import { gaussianMatrix, seededRandom } from "../reference/testing.ts";

/** How the weights are made 2:4: none, hard thresholding, soft thresholding with β. */
export type Thresholding = "dense" | "hard" | "soft";

/** S-STE's β: `mse-frozen` (SPEC 1.3), `mse-dynamic` (recomputed every step), or a constant. */
export type BetaChoice = "mse-frozen" | "mse-dynamic" | number;

/** A teacher-student classification task: Gaussian inputs labelled by a random tanh MLP. */
export interface Task {
  inputs: number;
  classes: number;
  train: { x: Float64Array; y: Int32Array; n: number };
  test: { x: Float64Array; y: Int32Array; n: number };
}

/** The task and student sizes every P2 figure starts from (each `--key` overrides one). */
export const MLP_DEFAULTS = {
  inputs: 32,
  hidden: 64,
  classes: 8,
  teacherHidden: 32,
  trainSize: 4096,
  testSize: 1024,
};

/** Sizes of the task and the student. */
export interface MlpSizes {
  inputs: number;
  hidden: number;
  classes: number;
  teacherHidden: number;
  trainSize: number;
  testSize: number;
}

/** Comma-separated distinct non-negative integers (seeds), at least `min` of them. */
export function parseSeeds(name: string, text: string, min: number): number[] {
  const seeds = parseList(name, text, (item) => {
    const v = Number(item);
    if (!Number.isInteger(v) || v < 0) {
      throw new TypeError(
        `Bad value for --${name}: expected comma-separated integers >= 0, got ${text}`,
      );
    }
    return v;
  });
  if (new Set(seeds).size !== seeds.length || seeds.length < min) {
    throw new RangeError(
      `Bad value for --${name}: expected at least ${min} distinct seeds, got ${text}`,
    );
  }
  return seeds;
}

/** The sizes block of a config. */
export function mlpSizes(cfg: MlpSizes): MlpSizes {
  for (const key of ["inputs", "hidden", "classes", "teacherHidden"] as const) {
    assertInt(key, cfg[key], 4);
    if (key !== "teacherHidden" && key !== "classes" && cfg[key] % 4 !== 0) {
      throw new RangeError(
        `Bad value for --${key}: 2:4 groups need a multiple of 4, got ${cfg[key]}`,
      );
    }
  }
  assertInt("trainSize", cfg.trainSize, 8);
  assertInt("testSize", cfg.testSize, 8);
  const { inputs, hidden, classes, teacherHidden, trainSize, testSize } = cfg;
  return { inputs, hidden, classes, teacherHidden, trainSize, testSize };
}

function gaussian(rows: number, cols: number, seed: number, scale = 1): Float64Array {
  return Float64Array.from(gaussianMatrix(rows, cols, seed).data, (v) => v * scale);
}

/**
 * Makes a task: inputs `N(0, I)`, labels the argmax of a random teacher `tanh(x·T1ᵀ)·T2ᵀ`.
 * `labelSeed` picks the teacher's output layer (fine-tuning tasks share `seed`'s hidden layer).
 */
export function makeTask(sizes: MlpSizes, seed: number, labelSeed = seed): Task {
  const { inputs, classes, teacherHidden: th } = sizes;
  const t1 = gaussian(th, inputs, 1000 * seed + 1, 1 / Math.sqrt(inputs));
  const t2 = gaussian(classes, th, 1000 * labelSeed + 2, 3 / Math.sqrt(th));
  const split = (n: number, stream: number) => {
    const x = gaussian(n, inputs, 1000 * seed + stream);
    const y = new Int32Array(n);
    const h = new Float64Array(th);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < th; j++) {
        let a = 0;
        for (let k = 0; k < inputs; k++) a += t1[j * inputs + k] * x[i * inputs + k];
        h[j] = Math.tanh(a);
      }
      let best = -Infinity;
      for (let c = 0; c < classes; c++) {
        let z = 0;
        for (let j = 0; j < th; j++) z += t2[c * th + j] * h[j];
        if (z > best) [best, y[i]] = [z, c];
      }
    }
    return { x, y, n };
  };
  return { inputs, classes, train: split(sizes.trainSize, 3), test: split(sizes.testSize, 4) };
}

// ---- thresholding ------------------------------------------------------------------------------

/** The hard top-2 mask of SPEC 1.1 (the reference's tie rule), of rows of `cols` weights. */
export function top2Mask(w: Float64Array, cols: number): Uint8Array {
  return prune24({ rows: w.length / cols, cols, data: Float32Array.from(w) }).mask;
}

/**
 * The pruning function with a given mask: `hard` → `W⊙M`; `soft` → `β·sign(w)(|w| − τ)` on the
 * kept entries, τ = the largest pruned magnitude of the group under `mask` (SPEC 1.2 when `mask` is
 * `W`'s own top-2 mask; with a frozen mask, the same smooth piece continued); `dense` → `W`.
 */
export function threshold(
  w: Float64Array,
  mask: Uint8Array,
  kind: Thresholding,
  beta = 1,
): Float64Array {
  if (kind === "dense") return w.slice();
  const out = new Float64Array(w.length);
  for (let g = 0; g < w.length; g += 4) {
    let tau = 0;
    if (kind === "soft") {
      for (let i = g; i < g + 4; i++) if (!mask[i]) tau = Math.max(tau, Math.abs(w[i]));
    }
    for (let i = g; i < g + 4; i++) {
      if (!mask[i]) continue;
      out[i] = kind === "hard" ? w[i] : beta * Math.sign(w[i]) * (Math.abs(w[i]) - tau);
    }
  }
  return out;
}

/**
 * The gradient of the pruning function's output, on the piece `mask` selects, pulled back to `w`:
 * `∂L/∂w` given `G = ∂L/∂W̃` — `M⊙G` for `hard`; for `soft`, `β·G` on the kept entries and, on the
 * pruned entry whose magnitude is τ, `−β·sign(w_p)·Σ_kept sign(w_i)·G_i` (τ moves with it); `G`
 * for `dense`. This is the true gradient of the loss as a function of `w` wherever the mask does
 * not change, unlike the straight-through estimate.
 */
export function pieceGradient(
  w: Float64Array,
  mask: Uint8Array,
  kind: Thresholding,
  beta: number,
  g: Float64Array,
): Float64Array {
  if (kind === "dense") return g.slice();
  const out = new Float64Array(w.length);
  for (let q = 0; q < w.length; q += 4) {
    let p = -1;
    for (let i = q; i < q + 4; i++) {
      if (!mask[i] && (p < 0 || Math.abs(w[i]) > Math.abs(w[p]))) p = i;
    }
    let pull = 0;
    for (let i = q; i < q + 4; i++) {
      if (!mask[i]) continue;
      out[i] = kind === "hard" ? g[i] : beta * g[i];
      pull += Math.sign(w[i]) * g[i];
    }
    if (kind === "soft" && p >= 0) out[p] = -beta * Math.sign(w[p]) * pull;
  }
  return out;
}

/** SPEC 1.3's MSE β of `w` under `mask`: `⟨W, S⟩/⟨S, S⟩` (1 when S = 0). */
export function mseBeta(w: Float64Array, mask: Uint8Array): number {
  const s = threshold(w, mask, "soft", 1);
  let num = 0, den = 0;
  for (let i = 0; i < w.length; i++) {
    num += w[i] * s[i];
    den += s[i] * s[i];
  }
  return den === 0 ? 1 : num / den;
}

function countFlips(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

// ---- the model ----------------------------------------------------------------------------------

/** One layer's weight `[out, in]`, its mask and β. */
interface Layer {
  out: number;
  in: number;
  w: Float64Array;
  mask: Uint8Array;
  beta: number;
  m: Float64Array;
  v: Float64Array;
}

/** What one optimizer step did (the inputs of the discontinuity measurements). */
export interface StepRecord {
  step: number;
  /** Loss of the step's batch before the step (current masks). */
  loss: number;
  /** First-order prediction `⟨g, Δw⟩` with the method's (straight-through) gradient g. */
  predicted: number;
  /** First-order prediction `⟨∇F, Δw⟩` with the true gradient of the current piece. */
  predictedExact: number;
  /** Actual loss change on the same batch, masks recomputed from the new weights (ΔF₁). */
  actual: number;
  /** Loss change on the same batch with the masks (and β) of before the step (ΔF₂). */
  frozen: number;
  /** Fraction of mask bits that changed (all layers). */
  flipRate: number;
  /** β of each layer after the step. */
  betas: number[];
}

/** Training options. */
export interface MlpTrainOptions {
  kind: Thresholding;
  beta: BetaChoice;
  seed: number;
  lr: number;
  batchSize: number;
}

/**
 * The student MLP `softmax(tanh(x·W̃1ᵀ)·W̃2ᵀ)` with Adam (β = 0.9/0.95, no weight decay). The
 * weight gradient is the STE's: `∂L/∂W̃` (times β for soft thresholding: the chain rule through the
 * scale, the straight-through estimator through `S_soft`).
 */
export class Mlp {
  readonly layers: Layer[];
  kind: Thresholding;
  beta: BetaChoice;
  step = 0;

  constructor(sizes: MlpSizes, options: { kind: Thresholding; beta: BetaChoice; seed: number }) {
    const make = (out: number, inp: number, stream: number): Layer => ({
      out,
      in: inp,
      w: gaussian(out, inp, 1000 * options.seed + stream, 1 / Math.sqrt(inp)),
      mask: new Uint8Array(out * inp).fill(1),
      beta: 1,
      m: new Float64Array(out * inp),
      v: new Float64Array(out * inp),
    });
    this.layers = [make(sizes.hidden, sizes.inputs, 11), make(sizes.classes, sizes.hidden, 12)];
    this.kind = options.kind;
    this.beta = options.beta;
    this.setThresholding(options.kind, options.beta);
  }

  /** Starts a fresh Adam (zero moments, bias correction from step 1): a new fine-tuning run. */
  resetOptimizer(): void {
    for (const l of this.layers) {
      l.m.fill(0);
      l.v.fill(0);
    }
    this.step = 0;
  }

  /**
   * Switches the pruning function (fine-tuning with another one): masks from the current weights,
   * β from them (`mse-*`) or the constant; Adam's moments carry over.
   */
  setThresholding(kind: Thresholding, beta: BetaChoice): void {
    this.kind = kind;
    this.beta = beta;
    for (const l of this.layers) {
      l.mask = kind === "dense" ? l.mask.fill(1) : top2Mask(l.w, l.in);
      l.beta = kind !== "soft" ? 1 : typeof beta === "number" ? beta : mseBeta(l.w, l.mask);
    }
  }

  /**
   * Loss (and optionally the weight gradients) of rows `rows` of `data` with weights `ws`, masks
   * `masks` and βs `betas`.
   */
  #lossGrad(
    data: { x: Float64Array; y: Int32Array },
    rows: Int32Array,
    ws: Float64Array[],
    masks: Uint8Array[],
    betas: number[],
    grad: boolean,
  ): { loss: number; grads: Float64Array[]; exact: Float64Array[]; correct: number } {
    const [l1, l2] = this.layers;
    const e1 = threshold(ws[0], masks[0], this.kind, betas[0]);
    const e2 = threshold(ws[1], masks[1], this.kind, betas[1]);
    const d = l1.in, hd = l1.out, c = l2.out, b = rows.length;
    const g1 = new Float64Array(hd * d), g2 = new Float64Array(c * hd);
    const h = new Float64Array(hd), z = new Float64Array(c), dh = new Float64Array(hd);
    let loss = 0, correct = 0;
    for (const r of rows) {
      const xo = r * d;
      for (let j = 0; j < hd; j++) {
        let a = 0;
        for (let k = 0; k < d; k++) a += e1[j * d + k] * data.x[xo + k];
        h[j] = Math.tanh(a);
      }
      let zmax = -Infinity, arg = 0;
      for (let o = 0; o < c; o++) {
        let s = 0;
        for (let j = 0; j < hd; j++) s += e2[o * hd + j] * h[j];
        z[o] = s;
        if (s > zmax) [zmax, arg] = [s, o];
      }
      if (arg === data.y[r]) correct++;
      let sum = 0;
      for (let o = 0; o < c; o++) sum += Math.exp(z[o] - zmax);
      loss += Math.log(sum) + zmax - z[data.y[r]];
      if (!grad) continue;
      dh.fill(0);
      for (let o = 0; o < c; o++) {
        const dz = (Math.exp(z[o] - zmax) / sum - (o === data.y[r] ? 1 : 0)) / b;
        for (let j = 0; j < hd; j++) {
          g2[o * hd + j] += dz * h[j];
          dh[j] += dz * e2[o * hd + j];
        }
      }
      for (let j = 0; j < hd; j++) {
        const da = dh[j] * (1 - h[j] * h[j]);
        for (let k = 0; k < d; k++) g1[j * d + k] += da * data.x[xo + k];
      }
    }
    const exact = grad
      ? [g1, g2].map((g, i) => pieceGradient(ws[i], masks[i], this.kind, betas[i], g))
      : [];
    if (this.kind === "soft") {
      for (let i = 0; i < g1.length; i++) g1[i] *= betas[0];
      for (let i = 0; i < g2.length; i++) g2[i] *= betas[1];
    }
    return { loss: loss / b, grads: [g1, g2], exact, correct };
  }

  /** Mean loss and accuracy over a whole split (current masks and β). */
  evaluate(
    data: { x: Float64Array; y: Int32Array; n: number },
  ): { loss: number; accuracy: number } {
    const rows = Int32Array.from({ length: data.n }, (_, i) => i);
    const r = this.#lossGrad(
      data,
      rows,
      this.layers.map((l) => l.w),
      this.layers.map((l) => l.mask),
      this.layers.map((l) => l.beta),
      false,
    );
    return { loss: r.loss, accuracy: r.correct / data.n };
  }

  /**
   * One Adam step on a batch of `data` (rows drawn by the seeded generator), with the
   * discontinuity measurements of {@linkcode StepRecord}.
   */
  trainStep(
    data: { x: Float64Array; y: Int32Array; n: number },
    options: { lr: number; batchSize: number; seed: number },
  ): StepRecord {
    // The batch of step s is the same for every run of a seed (stream s of the seed's generator).
    const rand = seededRandom(options.seed, this.step);
    const rows = Int32Array.from({ length: options.batchSize }, () => Math.floor(rand() * data.n));
    const ws = this.layers.map((l) => l.w);
    const masks = this.layers.map((l) => l.mask);
    const betas = this.layers.map((l) => l.beta);
    const before = this.#lossGrad(data, rows, ws, masks, betas, true);
    const t = this.step + 1;
    let predicted = 0, predictedExact = 0;
    const next = this.layers.map((l, li) => {
      const g = before.grads[li], exact = before.exact[li], w = l.w.slice();
      for (let i = 0; i < w.length; i++) {
        l.m[i] = 0.9 * l.m[i] + 0.1 * g[i];
        l.v[i] = 0.95 * l.v[i] + 0.05 * g[i] * g[i];
        const update = options.lr * (l.m[i] / (1 - 0.9 ** t)) /
          (Math.sqrt(l.v[i] / (1 - 0.95 ** t)) + 1e-8);
        w[i] -= update;
        predicted -= g[i] * update;
        predictedExact -= exact[i] * update;
      }
      return w;
    });
    const frozen = this.#lossGrad(data, rows, next, masks, betas, false).loss;
    let flips = 0, entries = 0;
    this.layers.forEach((l, li) => {
      l.w = next[li];
      if (this.kind === "dense") return;
      const mask = top2Mask(l.w, l.in);
      flips += countFlips(mask, l.mask);
      entries += mask.length;
      l.mask = mask;
      if (this.kind === "soft" && this.beta === "mse-dynamic") l.beta = mseBeta(l.w, l.mask);
    });
    const after = this.#lossGrad(
      data,
      rows,
      next,
      this.layers.map((l) => l.mask),
      this.layers.map((l) => l.beta),
      false,
    ).loss;
    this.step = t;
    return {
      step: t - 1,
      loss: before.loss,
      predicted,
      predictedExact,
      actual: after - before.loss,
      frozen: frozen - before.loss,
      flipRate: entries === 0 ? 0 : flips / entries,
      betas: this.layers.map((l) => l.beta),
    };
  }
}
