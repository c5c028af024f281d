/**
 * GPT-2 as in nanoGPT (SPEC §4): learned token and position embeddings, pre-LayerNorm blocks of
 * causal self-attention (`c_attn [3d, d]`, `c_proj [d, d]`) and an MLP (`c_fc [4d, d]` → exact-erf
 * GELU → `c_proj [d, 4d]`), a final LayerNorm and an output head tied to the token embedding. No
 * biases in the linears. The FFN linears are 2:4 {@linkcode SparseLinear} layers (configurable);
 * everything else is dense. A classification head (mean-pool the final hidden states, then
 * `Linear(d, numClasses)`) replaces the language-model head for genre fine-tuning.
 *
 * Initialisation (nanoGPT): linear and embedding weights `N(0, 0.02)`, residual projections
 * (`attn.c_proj`, `mlp.c_proj`) `N(0, 0.02/√(2·nLayer))`, LayerNorm 1 and 0; drawn on the host
 * (`init.ts`) from the run seed with one stream per parameter (its position in
 * {@linkcode GPT.parameters}), so every backend starts from the same bits.
 *
 * Over 600 lines: one model (its config checks, parameters, forward with and without the cache
 * of activations, and the classification head) reads best as one file, as nanoGPT's `model.py`.
 *
 * @module
 */

import type { Backend, Tensor } from "./backend.ts";
import { Tape, type Variable } from "./autograd.ts";
import * as ops from "./ops.ts";
import {
  Embedding,
  LayerNorm,
  Linear,
  type Module,
  type Parameter,
  type ResidualStream,
} from "./nn.ts";
import { SparseModel } from "./sparse_model.ts";
import {
  type ResolvedSparseOptions,
  resolveSparseOptions,
  SparseLinear,
  type SparseOptions,
  type StepContext,
} from "./sparse.ts";
import { normal } from "./init.ts";
import { dropoutStream, initStream } from "./streams.ts";

/** A linear layer of a block that may be made 2:4 sparse. */
export type SparseSite = "attn.c_attn" | "attn.c_proj" | "mlp.c_fc" | "mlp.c_proj";

/** Every {@linkcode SparseSite}. */
export const SPARSE_SITES: readonly SparseSite[] = [
  "attn.c_attn",
  "attn.c_proj",
  "mlp.c_fc",
  "mlp.c_proj",
];

/** The model configuration. */
export interface GPTConfig {
  /** Vocabulary size `V`. */
  vocabSize: number;
  /** Maximum sequence length (rows of the position embedding). */
  blockSize: number;
  /** Number of blocks. */
  nLayer: number;
  /** Number of attention heads. */
  nHead: number;
  /** Width `d`. */
  nEmbd: number;
  /** Dropout probability (embeddings, attention probabilities, residual branches); 0 = none. */
  dropout: number;
  /** The 2:4 training method of the sparse linears and its options. */
  sparse: SparseOptions;
  /** Which linears of every block are sparse (default: the FFN, `mlp.c_fc` and `mlp.c_proj`). */
  sparseSites?: SparseSite[];
  /** Number of classes of a classification head; omit (or 0) for the language-model head. */
  numClasses?: number;
}

/** {@linkcode GPTConfig} with every default filled in and the sparse options resolved. */
export type ResolvedGPTConfig = Required<GPTConfig> & { sparse: Required<SparseOptions> };

/** Named model sizes: the GPT-2 family (SPEC §4) and tiny sizes for tests. */
export type GPTPreset = "gpt2-124m" | "gpt2-350m" | "gpt2-774m" | "tiny" | "mini";

const PRESET_SHAPES: Record<GPTPreset, Omit<GPTConfig, "sparse" | "dropout">> = {
  "gpt2-124m": { vocabSize: 50257, blockSize: 1024, nLayer: 12, nHead: 12, nEmbd: 768 },
  "gpt2-350m": { vocabSize: 50257, blockSize: 1024, nLayer: 24, nHead: 16, nEmbd: 1024 },
  "gpt2-774m": { vocabSize: 50257, blockSize: 1024, nLayer: 36, nHead: 20, nEmbd: 1280 },
  /** The test size: vocab 32, block 8, 2 layers, width 16, 2 heads. */
  tiny: { vocabSize: 32, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16 },
  /** A CPU-sized model for quick experiments. */
  mini: { vocabSize: 2048, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128 },
};

/**
 * A configuration from a preset, with overrides.
 *
 * @param preset The size.
 * @param overrides Fields to replace (default: dense training, no dropout).
 * @returns The configuration.
 * @throws {TypeError} On an unknown preset.
 * @example
 * ```ts
 * import { gptConfig } from "./gpt2.ts";
 * const c = gptConfig("gpt2-124m", { sparse: { method: "s-ste" } });
 * if (c.nLayer !== 12 || c.nEmbd !== 768) throw new Error("unexpected");
 * ```
 */
export function gptConfig(preset: GPTPreset, overrides: Partial<GPTConfig> = {}): GPTConfig {
  const shape = PRESET_SHAPES[preset];
  if (shape === undefined) {
    throw new TypeError(
      `Cannot build a GPT config: unknown preset ${JSON.stringify(preset)} (expected one of ${
        Object.keys(PRESET_SHAPES).join(", ")
      })`,
    );
  }
  return { ...shape, dropout: 0, sparse: { method: "dense" }, ...overrides };
}

/**
 * Validates a configuration and fills in its defaults.
 *
 * @param config The configuration.
 * @returns The resolved configuration.
 * @throws {RangeError} On a size that is not a positive integer, `nEmbd % nHead != 0`, a dropout
 * outside `[0, 1)`, or a sparse site repeated.
 * @throws {TypeError} On an unknown sparse site or invalid sparse options.
 */
export function resolveGPTConfig(config: GPTConfig): ResolvedGPTConfig {
  const action = "configure GPT-2";
  for (const key of ["vocabSize", "blockSize", "nLayer", "nHead", "nEmbd"] as const) {
    const v = config[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Cannot ${action}: ${key} must be a positive integer, got ${v}`);
    }
  }
  if (config.nEmbd % config.nHead !== 0) {
    throw new RangeError(
      `Cannot ${action}: nEmbd must be a multiple of nHead, got ${config.nEmbd} and ${config.nHead}`,
    );
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    throw new RangeError(`Cannot ${action}: dropout must be in [0, 1), got ${config.dropout}`);
  }
  const sites = config.sparseSites ?? ["mlp.c_fc", "mlp.c_proj"];
  for (const s of sites) {
    if (!SPARSE_SITES.includes(s)) {
      throw new TypeError(
        `Cannot ${action}: unknown sparse site ${JSON.stringify(s)} (expected ${
          SPARSE_SITES.join(", ")
        })`,
      );
    }
  }
  if (new Set(sites).size !== sites.length) {
    throw new RangeError(`Cannot ${action}: a sparse site is repeated in [${sites}]`);
  }
  const numClasses = config.numClasses ?? 0;
  if (!Number.isInteger(numClasses) || numClasses < 0) {
    throw new RangeError(`Cannot ${action}: numClasses must be an integer >= 0, got ${numClasses}`);
  }
  return {
    vocabSize: config.vocabSize,
    blockSize: config.blockSize,
    nLayer: config.nLayer,
    nHead: config.nHead,
    nEmbd: config.nEmbd,
    dropout: config.dropout,
    sparse: resolveSparseOptions(config.sparse),
    sparseSites: SPARSE_SITES.filter((s) => sites.includes(s)),
    numClasses,
  };
}

/**
 * A batch of `B` sequences of length `T`, sequence-major. For the language-model head `targets`
 * holds the next token of every position (`B·T` entries); for a classification head, one class per
 * sequence (`B` entries).
 */
export interface Batch {
  /** Token ids, `B·T` entries. */
  tokens: Int32Array;
  /** Targets: `B·T` next-token ids, or `B` class labels. */
  targets: Int32Array;
  /** Number of sequences `B`. */
  batchSize: number;
}

/** Options of the forward pass outside training. */
export interface EvaluationOptions {
  /** Evaluate the sparse layers with their dense weight `W` (how P1 models are evaluated). */
  dense?: boolean;
}

type BlockLinear = Linear | SparseLinear;

/**
 * One pre-LayerNorm transformer block, `x + attn(ln_1(x))` then `x + mlp(ln_2(x))`; its linears
 * are dense or 2:4 sparse according to the model's sparse sites.
 */
export class Block implements Module {
  /** `ln_1`. */
  readonly ln1: LayerNorm;
  /** `attn.c_attn` `[3d, d]`. */
  readonly cAttn: Linear | SparseLinear;
  /** `attn.c_proj` `[d, d]`. */
  readonly attnProj: Linear | SparseLinear;
  /** `ln_2`. */
  readonly ln2: LayerNorm;
  /** `mlp.c_fc` `[4d, d]`. */
  readonly cFc: Linear | SparseLinear;
  /** `mlp.c_proj` `[d, 4d]`. */
  readonly mlpProj: Linear | SparseLinear;

  /**
   * Creates the block's modules in nanoGPT's order with the given factories.
   *
   * @param make Factories of the norms (by name) and the linears (by site and shape).
   * @param d The width.
   */
  constructor(make: {
    norm: (name: string) => LayerNorm;
    linear: (site: SparseSite, inFeatures: number, outFeatures: number) => BlockLinear;
  }, d: number) {
    this.ln1 = make.norm("ln_1");
    this.cAttn = make.linear("attn.c_attn", d, 3 * d);
    this.attnProj = make.linear("attn.c_proj", d, d);
    this.ln2 = make.norm("ln_2");
    this.cFc = make.linear("mlp.c_fc", d, 4 * d);
    this.mlpProj = make.linear("mlp.c_proj", 4 * d, d);
  }

  /** The block's parameters in nanoGPT's order. */
  parameters(): Parameter[] {
    return [this.ln1, this.cAttn, this.attnProj, this.ln2, this.cFc, this.mlpProj]
      .flatMap((m) => m.parameters());
  }

  /**
   * The block's forward pass, `x + attn(ln_1(x))` then `x + mlp(ln_2(x))` with causal attention
   * (or full attention, `fullAttention` given) and exact-erf GELU. Inside a training step (`step`
   * given) dropout draws from the streams `1 + 3·layer` (attention probabilities), `2 + 3·layer` and
   * `3 + 3·layer` (residual branches).
   *
   * @param tape The tape.
   * @param x The input `[B·T, d]`.
   * @param options The shape, the block's index, the dropout and the step (or the evaluation
   * options outside a step), and the key mask of full attention.
   * @returns The output `[B·T, d]`.
   * @throws {RangeError} If full attention is asked for with dropout inside a step (its
   * probabilities have no dropout), or from the attention on shapes that do not match.
   */
  forward(tape: Tape, x: Variable, options: BlockForwardOptions): Variable {
    const out = this.forwardResidual(tape, { x }, options);
    return ops.add(tape, out.x, out.pending!);
  }

  /**
   * {@linkcode Block.forward} on a residual stream with a pending branch (added by `ln_1` in its
   * own pass), leaving the MLP branch pending for the next LayerNorm: the same values, without the
   * residual adds' separate passes.
   *
   * @param tape The tape.
   * @param stream The input stream `[B·T, d]` and its pending branch, if any.
   * @param options As {@linkcode Block.forward}.
   * @returns The stream after the attention branch, with the MLP branch pending.
   * @throws {RangeError} As {@linkcode Block.forward}.
   */
  forwardResidual(
    tape: Tape,
    stream: ResidualStream,
    options: BlockForwardOptions,
  ): Required<ResidualStream> {
    const { batchSize, seqLen, nHead, layer: l, dropout, step, evaluation = {}, fullAttention } =
      options;
    const drop = (v: Variable, site: number) =>
      step === undefined ? v : ops.dropout(tape, v, {
        p: dropout,
        seed: step.seed,
        stream: dropoutStream(step.step, site),
      });
    const linear = (layer: BlockLinear, v: Variable) =>
      layer instanceof SparseLinear ? layer.forward(tape, v, evaluation) : layer.forward(tape, v);
    // Attention branch.
    const { x, y: h1 } = this.ln1.forwardResidual(tape, stream);
    const qkv = linear(this.cAttn, h1);
    const attnDropout = step === undefined || dropout === 0 ? undefined : {
      p: dropout,
      seed: step.seed,
      stream: dropoutStream(step.step, 1 + 3 * l),
    };
    let y: Variable;
    if (fullAttention === undefined) {
      y = ops.causalSelfAttention(tape, qkv, { batchSize, seqLen, nHead, dropout: attnDropout });
    } else {
      if (attnDropout !== undefined) {
        throw new RangeError(
          `Cannot run block ${l} with full attention: it has no attention dropout, got dropout ${dropout}`,
        );
      }
      y = ops.selfAttention(tape, qkv, fullAttention, {
        batchSize,
        queryLen: seqLen,
        keyLen: seqLen,
        nHead,
      });
    }
    const attended = { x, pending: drop(linear(this.attnProj, y), 2 + 3 * l) };
    // MLP branch.
    const { x: x2, y: h2 } = this.ln2.forwardResidual(tape, attended);
    const h = ops.gelu(tape, linear(this.cFc, h2));
    return { x: x2, pending: drop(linear(this.mlpProj, h), 3 + 3 * l) };
  }
}

/** What {@linkcode buildBlocks} needs besides the backend. */
export interface BuildBlocksOptions {
  /** Number of blocks. */
  nLayer: number;
  /** Width `d`. */
  width: number;
  /** The resolved sparse method of the sparse linears. */
  sparse: ResolvedSparseOptions;
  /** Which linears are sparse. */
  sparseSites: readonly SparseSite[];
  /** The name prefix of block `l` (e.g. `transformer.h.l`). */
  prefix: (layer: number) => string;
  /** Draws a parameter's initial values from its own stream (the next in the model's order). */
  draw: (count: number, std: number) => Float32Array;
  /** Skips the init streams of constant-initialised parameters (LayerNorm weight and bias). */
  skip: (streams: number) => void;
}

/**
 * Builds `nLayer` blocks in nanoGPT's parameter order and initialisation (linears `N(0, 0.02)`,
 * residual projections `N(0, 0.02/√(2·nLayer))`, LayerNorms 1 and 0), the linears of
 * `sparseSites` as {@linkcode SparseLinear} layers numbered in order.
 *
 * @param backend The backend.
 * @param options Sizes, sparse method and sites, names and the init draws.
 * @returns The blocks and their sparse layers.
 */
export function buildBlocks(
  backend: Backend,
  options: BuildBlocksOptions,
): { blocks: Block[]; sparseLayers: SparseLinear[] } {
  const { nLayer, width: d, sparse, sparseSites, prefix, draw, skip } = options;
  const residualStd = 0.02 / Math.sqrt(2 * nLayer);
  const sparseLayers: SparseLinear[] = [];
  const blocks: Block[] = [];
  for (let l = 0; l < nLayer; l++) {
    blocks.push(
      new Block({
        norm: (name) => {
          skip(2); // weight and bias: constant init, streams reserved for the order
          return new LayerNorm(backend, `${prefix(l)}.${name}`, d);
        },
        linear: (site, inFeatures, outFeatures) => {
          const name = `${prefix(l)}.${site}.weight`;
          const std = site.endsWith("c_proj") ? residualStd : 0.02;
          const init = draw(inFeatures * outFeatures, std);
          if (!sparseSites.includes(site)) {
            return new Linear(backend, name, init, inFeatures, outFeatures);
          }
          const layer = new SparseLinear(backend, name, init, { inFeatures, outFeatures }, {
            sparse,
            layerIndex: sparseLayers.length,
          });
          sparseLayers.push(layer);
          return layer;
        },
      }, d),
    );
  }
  return { blocks, sparseLayers };
}

/** Options of {@linkcode Block.forward}. */
export interface BlockForwardOptions {
  /** Number of sequences `B`. */
  batchSize: number;
  /** Sequence length `T`. */
  seqLen: number;
  /** Number of attention heads. */
  nHead: number;
  /** The block's index (selects its dropout streams). */
  layer: number;
  /** Dropout probability (0 = none). */
  dropout: number;
  /** The open training step, or `undefined` when evaluating. */
  step?: StepContext;
  /** Evaluation options of the sparse layers (outside a step). */
  evaluation?: EvaluationOptions;
  /**
   * Full (non-causal) self-attention: every position attends to every unmasked position of its
   * sequence. The key mask from `ops.attentionBias` for `{ batchSize, queryLen: seqLen,
   * keyLen: seqLen, nHead }`; omit for GPT-2's causal attention.
   */
  fullAttention?: Tensor;
}

/**
 * GPT-2 (nanoGPT architecture) with 2:4 sparse linears. Create it with {@linkcode GPT.create}.
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { GPT, gptConfig } from "./gpt2.ts";
 * const backend = new ReferenceBackend();
 * const model = await GPT.create(backend, gptConfig("tiny"), { seed: 1 });
 * const batch = { tokens: new Int32Array(8).fill(3), targets: new Int32Array(8).fill(4), batchSize: 1 };
 * const loss = await model.evaluate(batch);
 * if (!(loss > 2 && loss < 5)) throw new Error(`unexpected initial loss ${loss}`); // ≈ ln 32
 * ```
 */
export class GPT extends SparseModel {
  /** The resolved configuration. */
  readonly config: ResolvedGPTConfig;
  /** The backend holding the parameters. */
  readonly backend: Backend;
  /** Token embedding `[V, d]`, tied to the output head. */
  readonly wte: Embedding;
  /** Position embedding `[blockSize, d]`. */
  readonly wpe: Embedding;
  /** The transformer blocks. */
  readonly blocks: readonly Block[];
  /** Final LayerNorm. */
  readonly lnF: LayerNorm;
  /** Classification head `[numClasses, d]` (when `numClasses > 0`). */
  readonly classifier: Linear | undefined;

  private constructor(backend: Backend, config: GPTConfig, seed: number) {
    super();
    this.config = resolveGPTConfig(config);
    this.backend = backend;
    const { vocabSize, blockSize, nLayer, nEmbd: d, sparse, sparseSites, numClasses } = this.config;
    // Parameters are created in nanoGPT's state-dict order; each draws from its own stream.
    let parameterIndex = 0;
    const draw = (count: number, std: number) =>
      normal(seed, initStream(parameterIndex++), count, std);

    const table = (name: string, rows: number) =>
      new Embedding(backend, name, draw(rows * d, 0.02), rows, d);
    this.wte = table("transformer.wte.weight", vocabSize);
    this.wpe = table("transformer.wpe.weight", blockSize);
    const { blocks, sparseLayers } = buildBlocks(backend, {
      nLayer,
      width: d,
      sparse,
      sparseSites,
      prefix: (l) => `transformer.h.${l}`,
      draw,
      skip: (streams) => (parameterIndex += streams),
    });
    this.blocks = blocks;
    this.lnF = new LayerNorm(backend, "transformer.ln_f", d);
    parameterIndex += 2;
    this.classifier = numClasses > 0
      ? new Linear(backend, "classifier.weight", draw(numClasses * d, 0.02), d, numClasses)
      : undefined;
    this.register([
      ...this.wte.parameters(),
      ...this.wpe.parameters(),
      ...blocks.flatMap((b) => b.parameters()),
      ...this.lnF.parameters(),
      ...(this.classifier?.parameters() ?? []),
    ], sparseLayers);
  }

  /**
   * Builds and initialises a model: weights drawn from `seed`, then S-STE's β computed from the
   * initial weights and frozen (SPEC 1.3).
   *
   * @param backend The backend to hold the parameters.
   * @param config The configuration.
   * @param init `{ seed }`: the initialisation seed, an integer in `[0, 2^53)`.
   * @returns The model.
   * @throws {RangeError} On an invalid configuration or seed.
   * @throws {TypeError} On an invalid sparse method or site.
   */
  static async create(backend: Backend, config: GPTConfig, init: { seed: number }): Promise<GPT> {
    return await new GPT(backend, config, init.seed).initialized();
  }

  /** The trunk of {@linkcode GPT.forward}: embeddings, blocks and the final LayerNorm. */
  #hidden(
    tape: Tape,
    tokens: Tensor,
    batchSize: number,
    options: EvaluationOptions,
  ): Variable {
    const be = this.backend;
    const { blockSize, nHead } = this.config;
    const n = tokens.size;
    if (!Number.isInteger(batchSize) || batchSize < 1 || n % batchSize !== 0) {
      throw new RangeError(
        `Cannot run GPT-2: the token count ${n} must be a positive multiple of the batch size ${batchSize}`,
      );
    }
    const T = n / batchSize;
    if (T > blockSize) {
      throw new RangeError(
        `Cannot run GPT-2: sequence length ${T} exceeds the block size ${blockSize}`,
      );
    }
    const step = this.openStep;
    const drop = (x: Variable, site: number) =>
      step === undefined ? x : ops.dropout(tape, x, {
        p: this.config.dropout,
        seed: step.seed,
        stream: dropoutStream(step.step, site),
      });

    const positions = new Int32Array(n);
    for (let i = 0; i < n; i++) positions[i] = i % T;
    const tok = this.wte.forward(tape, tokens);
    const pos = this.wpe.forward(tape, be.indices(positions, [n]));
    let stream: ResidualStream = { x: drop(ops.add(tape, tok, pos), 0) };
    this.blocks.forEach((block, layer) => {
      stream = block.forwardResidual(tape, stream, {
        batchSize,
        seqLen: T,
        nHead,
        layer,
        dropout: this.config.dropout,
        step,
        evaluation: options,
      });
    });
    return this.lnF.forwardResidual(tape, stream).y;
  }

  /**
   * The forward pass. Inside a step (between {@linkcode GPT.beginStep} and {@linkcode GPT.endStep})
   * it is the training forward (dropout on, sparse layers in their step state); outside, the
   * evaluation forward (dropout off; the tape must not record).
   *
   * @param tape The tape.
   * @param tokens An `i32` tensor of `B·T` token ids.
   * @param batchSize `B`.
   * @param options Evaluation options (`{ dense }`), ignored inside a step.
   * @returns Logits: `[B·T, V]` (language model) or `[B, numClasses]` (classifier).
   * @throws {RangeError} If `T` exceeds the block size or the token count is not a multiple of `B`.
   */
  forward(
    tape: Tape,
    tokens: Tensor,
    batchSize: number,
    options: EvaluationOptions = {},
  ): Variable {
    const x = this.#hidden(tape, tokens, batchSize, options);
    if (this.classifier !== undefined) {
      return this.classifier.forward(tape, ops.meanPool(tape, x, batchSize));
    }
    return ops.matmul(tape, x, this.wte.weight, { transB: true }); // tied head: x·wteᵀ
  }

  /**
   * The final hidden states (the output of the last LayerNorm, before any head) of a batch,
   * outside training, read back: the features a probe is trained on.
   *
   * @param tokens `B·T` token ids.
   * @param batchSize `B`.
   * @param options `{ dense }`: use the sparse layers' dense weight.
   * @returns `[B·T, nEmbd]` values, row-major.
   * @throws {Error} If called while a step is open.
   */
  async hiddenStates(
    tokens: Int32Array,
    batchSize: number,
    options: EvaluationOptions = {},
  ): Promise<Float32Array> {
    if (this.openStep !== undefined) {
      throw new Error(`Cannot read hidden states while step ${this.openStep.step} is open`);
    }
    const tape = new Tape(this.backend, { recording: false });
    const indices = this.backend.indices(tokens, [tokens.length]);
    return await this.backend.read(this.#hidden(tape, indices, batchSize, options).value);
  }

  /**
   * The mean cross-entropy of a batch (next-token, or class for a classifier).
   *
   * @param tape The tape.
   * @param batch Tokens, targets and batch size.
   * @param options Evaluation options (`{ dense }`), ignored inside a step.
   * @returns The loss, `[1]`.
   * @throws {TypeError} If the tokens or targets are not `Int32Array`s.
   * @throws {RangeError} If the targets have the wrong length, or from {@linkcode GPT.forward}.
   */
  loss(tape: Tape, batch: Batch, options: EvaluationOptions = {}): Variable {
    const { tokens, targets, batchSize } = batch;
    if (!(tokens instanceof Int32Array) || !(targets instanceof Int32Array)) {
      throw new TypeError("Cannot compute the GPT-2 loss: tokens and targets must be Int32Arrays");
    }
    const expected = this.classifier !== undefined ? batchSize : tokens.length;
    if (targets.length !== expected) {
      throw new RangeError(
        `Cannot compute the GPT-2 loss: expected ${expected} targets for ${tokens.length} tokens ` +
          `in ${batchSize} sequences, got ${targets.length}`,
      );
    }
    const be = this.backend;
    const logits = this.forward(tape, be.indices(tokens, [tokens.length]), batchSize, options);
    return ops.crossEntropy(tape, logits, be.indices(targets, [targets.length]));
  }

  /**
   * Evaluates the loss of a batch outside training (no graph, no dropout), reading it back.
   * Allocates temporaries: call `backend.release()` when done with a series of evaluations.
   *
   * @param batch Tokens, targets and batch size.
   * @param options `{ dense }`: evaluate the sparse layers with their dense weight.
   * @returns The mean cross-entropy.
   * @throws {Error} If called while a step is open.
   */
  async evaluate(batch: Batch, options: EvaluationOptions = {}): Promise<number> {
    if (this.openStep !== undefined) {
      throw new Error(`Cannot evaluate while step ${this.openStep.step} is open`);
    }
    const tape = new Tape(this.backend, { recording: false });
    const [loss] = await this.backend.read(this.loss(tape, batch, options).value);
    return loss;
  }
}
