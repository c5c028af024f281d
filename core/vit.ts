/**
 * A small vision Transformer (ViT, Dosovitskiy et al. 2021) for the image experiment: each image
 * is cut into `patchSize²` patches in raster order, each patch embedded by a linear layer, a class
 * token prepended as the FIRST position (as in ViT and DeiT), learned position embeddings added,
 * then GPT-2's pre-norm {@linkcode Block}s with full (non-causal) self-attention — every position,
 * the class token included, attends to every position of its image (`ops.selfAttention`) — a final
 * LayerNorm and a linear head on the class token. The FFN linears are 2:4
 * {@linkcode SparseLinear} layers (SPEC §2.8 and 2.10); everything else is dense.
 *
 * The patch embedding sees each patch's pixels, normalised with Fashion-MNIST's mean and standard
 * deviation, plus two indicator features: 1 on patch rows (the patch embedding's bias) and 1 on
 * the class row (the class token's embedding), so the whole input is one `[B·T, patchSize² + 2]`
 * matrix built on the host.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { Tape, type Variable } from "./autograd.ts";
import * as ops from "./ops.ts";
import { Embedding, LayerNorm, Linear } from "./nn.ts";
import {
  type Block,
  buildBlocks,
  type EvaluationOptions,
  SPARSE_SITES,
  type SparseSite,
} from "./gpt2.ts";
import { type ResolvedSparseOptions, resolveSparseOptions, type SparseOptions } from "./sparse.ts";
import { SparseModel } from "./sparse_model.ts";
import { normal } from "./init.ts";
import { initStream } from "./streams.ts";

/** Fashion-MNIST's pixel mean and standard deviation (of `value/255`), the input normalisation. */
export const PIXEL_NORMALISATION = { mean: 0.2860, std: 0.3530 } as const;

/** The ViT configuration. */
export interface ViTConfig {
  /** Image side in pixels (square, one channel). */
  imageSize: number;
  /** Patch side in pixels (divides `imageSize`). */
  patchSize: number;
  /** Number of blocks. */
  nLayer: number;
  /** Number of attention heads. */
  nHead: number;
  /** Width `d` (a multiple of `nHead` and of 4). */
  nEmbd: number;
  /** Number of classes. */
  numClasses: number;
  /** The 2:4 training method of the sparse linears and its options. */
  sparse: SparseOptions;
  /** Which linears of every block are sparse (default: the FFN, `mlp.c_fc` and `mlp.c_proj`). */
  sparseSites?: SparseSite[];
}

/** {@linkcode ViTConfig} with defaults filled in and the sparse options resolved. */
export type ResolvedViTConfig = Required<ViTConfig> & { sparse: ResolvedSparseOptions };

/** A batch of `B` images (`imageSize²` grey levels 0..255 each) and their labels. */
export interface ImageBatch {
  /** Pixels, `B·imageSize²` bytes, image-major. */
  images: Uint8Array;
  /** Labels, `B` entries in `[0, numClasses)`. */
  labels: Int32Array;
  /** Number of images `B`. */
  batchSize: number;
}

/**
 * Validates a configuration and fills in its defaults.
 *
 * @param config The configuration.
 * @returns The resolved configuration.
 * @throws {RangeError} On a size that is not a positive integer, a patch size that does not divide
 * the image, or a width that is not a multiple of `nHead` and of 4.
 * @throws {TypeError} On an unknown sparse site or invalid sparse options.
 */
export function resolveViTConfig(config: ViTConfig): ResolvedViTConfig {
  const action = "configure the ViT";
  for (const key of ["imageSize", "patchSize", "nLayer", "nHead", "nEmbd", "numClasses"] as const) {
    const v = config[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Cannot ${action}: ${key} must be a positive integer, got ${v}`);
    }
  }
  if (config.imageSize % config.patchSize !== 0) {
    throw new RangeError(
      `Cannot ${action}: patchSize must divide imageSize, got ${config.patchSize} and ${config.imageSize}`,
    );
  }
  if (config.nEmbd % config.nHead !== 0 || config.nEmbd % 4 !== 0) {
    throw new RangeError(
      `Cannot ${action}: nEmbd must be a multiple of nHead and of 4, got ${config.nEmbd} (nHead ${config.nHead})`,
    );
  }
  const sites = config.sparseSites ?? ["mlp.c_fc", "mlp.c_proj"];
  for (const s of sites) {
    if (!SPARSE_SITES.includes(s)) {
      throw new TypeError(`Cannot ${action}: unknown sparse site ${JSON.stringify(s)}`);
    }
  }
  return {
    ...config,
    sparse: resolveSparseOptions(config.sparse),
    sparseSites: SPARSE_SITES.filter((s) => sites.includes(s)),
  };
}

/**
 * The ViT. Create it with {@linkcode ViT.create}; train it with the `Trainer` (it is a
 * `TrainableModel<ImageBatch>`).
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { ViT } from "./vit.ts";
 * const backend = new ReferenceBackend();
 * const model = await ViT.create(backend, {
 *   imageSize: 8, patchSize: 4, nLayer: 1, nHead: 2, nEmbd: 16, numClasses: 3,
 *   sparse: { method: "ste" },
 * }, { seed: 1 });
 * const batch = { images: new Uint8Array(2 * 64).fill(100), labels: new Int32Array([0, 2]), batchSize: 2 };
 * const predictions = await model.predict(batch);
 * if (predictions.length !== 2) throw new Error("one prediction per image");
 * ```
 */
export class ViT extends SparseModel {
  /** The resolved configuration. */
  readonly config: ResolvedViTConfig;
  /** The backend holding the parameters. */
  readonly backend: Backend;
  /** Patch embedding `[d, patchSize² + 2]`. */
  readonly patchEmbed: Linear;
  /** Position embedding `[1 + patches, d]` (the class token's row first). */
  readonly posEmbed: Embedding;
  /** The transformer blocks. */
  readonly blocks: readonly Block[];
  /** Final LayerNorm. */
  readonly lnF: LayerNorm;
  /** Classification head `[numClasses, d]`. */
  readonly head: Linear;

  private constructor(backend: Backend, config: ViTConfig, seed: number) {
    super();
    this.config = resolveViTConfig(config);
    this.backend = backend;
    const { nLayer, nEmbd: d, sparse, sparseSites, numClasses } = this.config;
    let parameterIndex = 0;
    const draw = (count: number, std: number) =>
      normal(seed, initStream(parameterIndex++), count, std);
    const features = this.features;
    this.patchEmbed = new Linear(
      backend,
      "patch_embed.weight",
      draw(d * features, 0.02),
      features,
      d,
    );
    this.posEmbed = new Embedding(
      backend,
      "pos_embed.weight",
      draw(this.seqLen * d, 0.02),
      this.seqLen,
      d,
    );
    const { blocks, sparseLayers } = buildBlocks(backend, {
      nLayer,
      width: d,
      sparse,
      sparseSites,
      prefix: (l) => `blocks.${l}`,
      draw,
      skip: (streams) => (parameterIndex += streams),
    });
    this.blocks = blocks;
    this.lnF = new LayerNorm(backend, "ln_f", d);
    parameterIndex += 2;
    this.head = new Linear(backend, "head.weight", draw(numClasses * d, 0.02), d, numClasses);
    this.register([
      ...this.patchEmbed.parameters(),
      ...this.posEmbed.parameters(),
      ...blocks.flatMap((b) => b.parameters()),
      ...this.lnF.parameters(),
      ...this.head.parameters(),
    ], sparseLayers);
  }

  /**
   * Builds and initialises a model: weights `N(0, 0.02)` (residual projections
   * `N(0, 0.02/√(2·nLayer))`) drawn from `seed` with one stream per parameter, LayerNorms 1 and 0,
   * then S-STE's β from the initial weights.
   *
   * @param backend The backend to hold the parameters.
   * @param config The configuration.
   * @param init `{ seed }`: the initialisation seed.
   * @returns The model.
   * @throws {RangeError} On an invalid configuration.
   * @throws {TypeError} On invalid sparse options.
   */
  static async create(backend: Backend, config: ViTConfig, init: { seed: number }): Promise<ViT> {
    return await new ViT(backend, config, init.seed).initialized();
  }

  /** Patches per image. */
  get patches(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2;
  }

  /** Positions per image: the class token and the patches. */
  get seqLen(): number {
    return this.patches + 1;
  }

  /** Input features of a row: a patch's pixels and the two indicators. */
  get features(): number {
    return this.config.patchSize ** 2 + 2;
  }

  /**
   * The host-built input rows of a batch: per image, the class row then its patches in raster
   * order, each `[normalised pixels…, isPatch, isClass]`.
   *
   * @param batch The images.
   * @returns `[B·T, patchSize² + 2]` values, row-major.
   * @throws {RangeError} If the pixel count is not `B·imageSize²`.
   */
  inputRows(batch: ImageBatch): Float32Array {
    const { imageSize: n, patchSize: p } = this.config;
    const { images, batchSize: B } = batch;
    if (!Number.isInteger(B) || B < 1 || images.length !== B * n * n) {
      throw new RangeError(
        `Cannot embed the images: expected ${B}·${n}² pixels, got ${images.length}`,
      );
    }
    const F = this.features, T = this.seqLen, perSide = n / p;
    const { mean, std } = PIXEL_NORMALISATION;
    const rows = new Float32Array(B * T * F);
    for (let b = 0; b < B; b++) {
      rows[b * T * F + p * p + 1] = 1;
      for (let patch = 0; patch < this.patches; patch++) {
        const row = (b * T + 1 + patch) * F;
        const top = Math.floor(patch / perSide) * p, left = (patch % perSide) * p;
        for (let i = 0; i < p; i++) {
          for (let j = 0; j < p; j++) {
            const pixel = images[b * n * n + (top + i) * n + left + j];
            rows[row + i * p + j] = (pixel / 255 - mean) / std;
          }
        }
        rows[row + p * p] = 1;
      }
    }
    return rows;
  }

  /**
   * The forward pass to the logits `[B, numClasses]`. Inside a step it is the training forward;
   * outside, the evaluation forward (the tape must not record).
   *
   * @param tape The tape.
   * @param batch The images (labels unused).
   * @param options `{ dense }`: evaluate the sparse layers with their dense weight (outside a step).
   * @returns The logits.
   * @throws {RangeError} From {@linkcode ViT.inputRows}, or if MVUE is on and `B·T % 4 != 0`.
   */
  forward(tape: Tape, batch: ImageBatch, options: EvaluationOptions = {}): Variable {
    const be = this.backend;
    const { batchSize: B } = batch;
    const T = this.seqLen;
    const x0 = ops.constant(be.tensor(this.inputRows(batch), [B * T, this.features]));
    const positions = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) positions[i] = i % T;
    let x = ops.add(
      tape,
      this.patchEmbed.forward(tape, x0),
      this.posEmbed.forward(tape, be.indices(positions, [B * T])),
    );
    const nHead = this.config.nHead;
    // Every image has all T positions: the bias only hides the layout's query slots.
    const fullAttention = ops.attentionBias(
      be,
      { batchSize: B, queryLen: T, keyLen: T, nHead },
      new Int32Array(B).fill(T),
    );
    this.blocks.forEach((block, layer) => {
      x = block.forward(tape, x, {
        batchSize: B,
        seqLen: T,
        nHead,
        layer,
        dropout: 0,
        step: this.openStep,
        evaluation: options,
        fullAttention,
      });
    });
    x = this.lnF.forward(tape, x);
    const classRows = new Int32Array(B);
    for (let b = 0; b < B; b++) classRows[b] = b * T;
    return this.head.forward(tape, ops.embedding(tape, x, be.indices(classRows, [B])));
  }

  /**
   * The mean cross-entropy of a batch.
   *
   * @param tape The tape.
   * @param batch The images and labels.
   * @param options Evaluation options (outside a step).
   * @returns The loss, `[1]`.
   * @throws {RangeError} If the labels are not `B` classes in range.
   */
  loss(tape: Tape, batch: ImageBatch, options: EvaluationOptions = {}): Variable {
    const { labels, batchSize } = batch;
    if (
      !(labels instanceof Int32Array) || labels.length !== batchSize ||
      labels.some((l) => l < 0 || l >= this.config.numClasses)
    ) {
      throw new RangeError(
        `Cannot compute the ViT loss: expected ${batchSize} labels in [0, ${this.config.numClasses}), got ${labels.length}`,
      );
    }
    const logits = this.forward(tape, batch, options);
    return ops.crossEntropy(tape, logits, this.backend.indices(labels, [batchSize]));
  }

  /**
   * The predicted class of every image (the arg-max logit; the first on ties), outside training.
   * Allocates temporaries: call `backend.release()` after a series of predictions.
   *
   * @param batch The images.
   * @param options `{ dense }`: use the sparse layers' dense weights.
   * @returns `B` class indices.
   * @throws {Error} If called while a step is open.
   */
  async predict(batch: ImageBatch, options: EvaluationOptions = {}): Promise<Int32Array> {
    if (this.openStep !== undefined) {
      throw new Error(`Cannot predict while step ${this.openStep.step} is open`);
    }
    const tape = new Tape(this.backend, { recording: false });
    const logits = await this.backend.read(this.forward(tape, batch, options).value);
    const C = this.config.numClasses;
    const out = new Int32Array(batch.batchSize);
    for (let b = 0; b < out.length; b++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (logits[b * C + c] > logits[b * C + best]) best = c;
      out[b] = best;
    }
    return out;
  }
}
