/**
 * An encoder–decoder Transformer (Vaswani et al., 2017) in the style of `gpt2.ts`: learned token
 * and position embeddings per stack, pre-LayerNorm blocks, bias-free linears, exact-erf GELU MLPs,
 * a final LayerNorm per stack and an output head tied to the target embedding. Encoder blocks:
 * self-attention (keys masked beyond each source's length) and MLP; decoder blocks: causal
 * self-attention, cross-attention to the encoder output (`cross.c_q [d, d]`, `cross.c_kv [2d, d]`,
 * `cross.c_proj [d, d]`) and MLP. The MLP linears of both stacks (`mlp.c_fc`, `mlp.c_proj`) are 2:4
 * {@linkcode SparseLinear} layers; everything else is dense. No dropout.
 *
 * Initialisation as `gpt2.ts` (SPEC §4): `N(0, 0.02)` from the run seed with one stream per
 * parameter in creation order, residual projections `N(0, 0.02/√(2·nEncoderLayer))` in the encoder
 * and `N(0, 0.02/√(3·nDecoderLayer))` in the decoder (three residual branches per block).
 *
 * @module
 */

import type { Backend, Tensor } from "./backend.ts";
import { Tape, type Variable } from "./autograd.ts";
import * as ops from "./ops.ts";
import { Embedding, LayerNorm, Linear, type Module, type Parameter } from "./nn.ts";
import { SparseModel } from "./sparse_model.ts";
import {
  type ResolvedSparseOptions,
  resolveSparseOptions,
  SparseLinear,
  type SparseOptions,
} from "./sparse.ts";
import { normal } from "./init.ts";
import { initStream } from "./streams.ts";

/** The model configuration. */
export interface Seq2SeqConfig {
  /** Source vocabulary size. */
  sourceVocabSize: number;
  /** Target vocabulary size (the output head's rows). */
  targetVocabSize: number;
  /** Maximum source length (rows of the source position embedding). */
  sourceLength: number;
  /** Maximum target length, start symbol included (rows of the target position embedding). */
  targetLength: number;
  /** Encoder blocks. */
  nEncoderLayer: number;
  /** Decoder blocks. */
  nDecoderLayer: number;
  /** Attention heads. */
  nHead: number;
  /** Width `d` (a multiple of `nHead` and of 4). */
  nEmbd: number;
  /** The 2:4 method of the MLP linears. */
  sparse: SparseOptions;
}

/**
 * A batch of `B` padded sentence pairs: sources `[B, S]`, decoder inputs (start symbol, then the
 * target shifted right) and outputs (the target, then the end symbol) `[B, T]`. Positions beyond a
 * sequence's length hold any valid id; they are masked (source keys) or skipped (loss).
 */
export interface Seq2SeqBatch {
  /** Number of pairs `B`. */
  batchSize: number;
  /** Source ids, `B·S`. */
  source: Int32Array;
  /** Valid source positions of each pair, in `[1, S]`. */
  sourceLengths: Int32Array;
  /** Decoder input ids, `B·T`. */
  targetInput: Int32Array;
  /** Decoder output ids (the loss targets), `B·T`. */
  targetOutput: Int32Array;
  /** Valid decoder positions of each pair (target length + 1), in `[1, T]`. */
  targetLengths: Int32Array;
}

type MaybeSparse = Linear | SparseLinear;

interface EncoderBlock {
  ln1: LayerNorm;
  cAttn: Linear;
  attnProj: Linear;
  ln2: LayerNorm;
  cFc: MaybeSparse;
  mlpProj: MaybeSparse;
}

interface DecoderBlock extends EncoderBlock {
  lnCross: LayerNorm;
  crossQ: Linear;
  crossKv: Linear;
  crossProj: Linear;
}

/**
 * The encoder–decoder model; create it with {@linkcode Seq2Seq.create}. Its parameters (in
 * creation order, the tied head once), sparse layers (encoder MLPs, then decoder MLPs) and step
 * brackets come from {@linkcode SparseModel}; with `loss` it is a trainer's model.
 *
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { Seq2Seq } from "./seq2seq.ts";
 * const model = await Seq2Seq.create(new ReferenceBackend(), {
 *   sourceVocabSize: 10, targetVocabSize: 6, sourceLength: 4, targetLength: 4,
 *   nEncoderLayer: 1, nDecoderLayer: 1, nHead: 2, nEmbd: 8, sparse: { method: "s-ste" },
 * }, { seed: 1 });
 * const out = await model.greedyDecode(new Int32Array([3, 4, 5, 0]), new Int32Array([3]), {
 *   batchSize: 1, startId: 0, endId: 1, maxLength: 3,
 * });
 * if (out.length !== 1 || out[0].length > 3) throw new Error("unexpected");
 * ```
 */
export class Seq2Seq extends SparseModel {
  /** The configuration, sparse options resolved. */
  readonly config: Readonly<Seq2SeqConfig> & { sparse: ResolvedSparseOptions };
  /** The backend holding the parameters. */
  readonly backend: Backend;
  readonly #sourceEmbedding: Embedding;
  readonly #sourcePosition: Embedding;
  readonly #encoder: EncoderBlock[] = [];
  readonly #encoderNorm: LayerNorm;
  readonly #targetEmbedding: Embedding;
  readonly #targetPosition: Embedding;
  readonly #decoder: DecoderBlock[] = [];
  readonly #decoderNorm: LayerNorm;

  private constructor(backend: Backend, config: Seq2SeqConfig, seed: number) {
    super();
    const action = "configure the encoder-decoder";
    for (
      const key of [
        "sourceVocabSize",
        "targetVocabSize",
        "sourceLength",
        "targetLength",
        "nEncoderLayer",
        "nDecoderLayer",
        "nHead",
        "nEmbd",
      ] as const
    ) {
      if (!Number.isInteger(config[key]) || config[key] < 1) {
        throw new RangeError(
          `Cannot ${action}: ${key} must be a positive integer, got ${config[key]}`,
        );
      }
    }
    const d = config.nEmbd;
    if (d % config.nHead !== 0 || d % 4 !== 0) {
      throw new RangeError(
        `Cannot ${action}: nEmbd must be a multiple of nHead and of 4, got ${d} and ${config.nHead}`,
      );
    }
    this.config = { ...config, sparse: resolveSparseOptions(config.sparse) };
    this.backend = backend;
    let index = 0;
    const draw = (count: number, std: number) => normal(seed, initStream(index++), count, std);
    const parameters: Parameter[] = [], sparseLayers: SparseLinear[] = [];
    const keep = <M extends Module>(m: M): M => {
      parameters.push(...m.parameters());
      return m;
    };
    const norm = (name: string) => {
      index += 2; // constant init; streams reserved so the order fixes every draw
      return keep(new LayerNorm(backend, name, d));
    };
    const dense = (name: string, inF: number, outF: number, std = 0.02) =>
      keep(new Linear(backend, `${name}.weight`, draw(inF * outF, std), inF, outF));
    const mlp = (name: string, inF: number, outF: number, std = 0.02): MaybeSparse => {
      const init = draw(inF * outF, std);
      const layer = new SparseLinear(
        backend,
        `${name}.weight`,
        init,
        { inFeatures: inF, outFeatures: outF },
        { sparse: this.config.sparse, layerIndex: sparseLayers.length },
      );
      sparseLayers.push(layer);
      return keep(layer);
    };
    const embedding = (name: string, rows: number) =>
      keep(new Embedding(backend, name, draw(rows * d, 0.02), rows, d));

    // Block parts in creation order (the order fixes every parameter's init stream).
    const selfAttention = (p: string, residualStd: number) => ({
      ln1: norm(`${p}.ln_1`),
      cAttn: dense(`${p}.attn.c_attn`, d, 3 * d),
      attnProj: dense(`${p}.attn.c_proj`, d, d, residualStd),
    });
    const feedForward = (p: string, residualStd: number) => ({
      ln2: norm(`${p}.ln_2`),
      cFc: mlp(`${p}.mlp.c_fc`, d, 4 * d),
      mlpProj: mlp(`${p}.mlp.c_proj`, 4 * d, d, residualStd),
    });

    this.#sourceEmbedding = embedding("encoder.wte.weight", config.sourceVocabSize);
    this.#sourcePosition = embedding("encoder.wpe.weight", config.sourceLength);
    const encoderStd = 0.02 / Math.sqrt(2 * config.nEncoderLayer);
    for (let l = 0; l < config.nEncoderLayer; l++) {
      const p = `encoder.h.${l}`;
      this.#encoder.push({ ...selfAttention(p, encoderStd), ...feedForward(p, encoderStd) });
    }
    this.#encoderNorm = norm("encoder.ln_f");
    this.#targetEmbedding = embedding("decoder.wte.weight", config.targetVocabSize);
    this.#targetPosition = embedding("decoder.wpe.weight", config.targetLength);
    const decoderStd = 0.02 / Math.sqrt(3 * config.nDecoderLayer);
    for (let l = 0; l < config.nDecoderLayer; l++) {
      const p = `decoder.h.${l}`;
      this.#decoder.push({
        ...selfAttention(p, decoderStd),
        lnCross: norm(`${p}.ln_cross`),
        crossQ: dense(`${p}.cross.c_q`, d, d),
        crossKv: dense(`${p}.cross.c_kv`, d, 2 * d),
        crossProj: dense(`${p}.cross.c_proj`, d, d, decoderStd),
        ...feedForward(p, decoderStd),
      });
    }
    this.#decoderNorm = norm("decoder.ln_f");
    this.register(parameters, sparseLayers);
  }

  /**
   * Builds and initialises a model (S-STE's β computed from the initial weights, SPEC 1.3).
   *
   * @param backend The backend to hold the parameters.
   * @param config The configuration.
   * @param init `{ seed }`: the initialisation seed.
   * @returns The model.
   * @throws {RangeError} On an invalid configuration or seed.
   * @throws {TypeError} On invalid sparse options.
   */
  static async create(
    backend: Backend,
    config: Seq2SeqConfig,
    init: { seed: number },
  ): Promise<Seq2Seq> {
    return await new Seq2Seq(backend, config, init.seed).initialized();
  }

  /**
   * The encoder: source ids `[B·S]` → hidden states `[B·S, d]` (after `encoder.ln_f`).
   *
   * @param tape The tape.
   * @param source An `i32` tensor of `B·S` ids.
   * @param sourceLengths Valid positions of each source.
   * @returns The encoder output.
   * @throws {RangeError} If `S` exceeds `sourceLength` or a length is out of range.
   */
  encode(tape: Tape, source: Tensor, sourceLengths: Int32Array): Variable {
    const be = this.backend;
    const B = sourceLengths.length;
    const S = this.#length(source.size, B, this.config.sourceLength, "source");
    const attention = { batchSize: B, queryLen: S, keyLen: S, nHead: this.config.nHead };
    const bias = ops.attentionBias(be, attention, sourceLengths);
    let x = this.#embed(tape, this.#sourceEmbedding, this.#sourcePosition, source, B);
    for (const block of this.#encoder) {
      const qkv = block.cAttn.forward(tape, block.ln1.forward(tape, x));
      const y = ops.selfAttention(tape, qkv, bias, attention);
      x = ops.add(tape, x, block.attnProj.forward(tape, y));
      x = this.#mlp(tape, block, x);
    }
    return this.#encoderNorm.forward(tape, x);
  }

  /** Token plus position embeddings of `B` sequences of `ids.size / B` ids each. */
  #embed(tape: Tape, token: Embedding, position: Embedding, ids: Tensor, B: number): Variable {
    const tokens = token.forward(tape, ids);
    return ops.add(tape, tokens, position.forward(tape, positions(this.backend, B, ids.size / B)));
  }

  #mlp(tape: Tape, block: EncoderBlock, x: Variable): Variable {
    const h = ops.gelu(tape, block.cFc.forward(tape, block.ln2.forward(tape, x)));
    return ops.add(tape, x, block.mlpProj.forward(tape, h));
  }

  #length(size: number, batchSize: number, limit: number, what: string): number {
    const T = size / batchSize;
    if (!Number.isInteger(T) || T < 1 || T > limit) {
      throw new RangeError(
        `Cannot run the encoder-decoder: ${size} ${what} ids for ${batchSize} sequences must be ` +
          `a multiple of the batch size with at most ${limit} per sequence`,
      );
    }
    return T;
  }

  /**
   * The decoder: input ids `[B·T]` and the encoder output → hidden states `[B·T, d]` (after
   * `decoder.ln_f`).
   *
   * @param tape The tape.
   * @param memory The encoder output `[B·S, d]`.
   * @param sourceLengths Valid positions of each source (masks the cross-attention keys).
   * @param input An `i32` tensor of `B·T` decoder input ids.
   * @returns The decoder output.
   * @throws {RangeError} If `T` exceeds `targetLength`.
   */
  decode(tape: Tape, memory: Variable, sourceLengths: Int32Array, input: Tensor): Variable {
    const be = this.backend;
    const B = sourceLengths.length, S = memory.value.shape[0] / B;
    const T = this.#length(input.size, B, this.config.targetLength, "target");
    const { nHead } = this.config;
    const cross = { batchSize: B, queryLen: T, keyLen: S, nHead };
    const bias = ops.attentionBias(be, cross, sourceLengths);
    let x = this.#embed(tape, this.#targetEmbedding, this.#targetPosition, input, B);
    for (const block of this.#decoder) {
      const qkv = block.cAttn.forward(tape, block.ln1.forward(tape, x));
      const y = ops.causalSelfAttention(tape, qkv, { batchSize: B, seqLen: T, nHead });
      x = ops.add(tape, x, block.attnProj.forward(tape, y));
      const q = block.crossQ.forward(tape, block.lnCross.forward(tape, x));
      const z = ops.attention(tape, q, block.crossKv.forward(tape, memory), bias, cross);
      x = ops.add(tape, x, block.crossProj.forward(tape, z));
      x = this.#mlp(tape, block, x);
    }
    return this.#decoderNorm.forward(tape, x);
  }

  /** Logits of the rows `rows` of the decoder output: `[rows, V]` (tied head). */
  #logits(tape: Tape, hidden: Variable, rows: Int32Array): Variable {
    const picked = ops.embedding(tape, hidden, this.backend.indices(rows, [rows.length]));
    return ops.matmul(tape, picked, this.#targetEmbedding.weight, { transB: true });
  }

  /**
   * The mean cross-entropy over the valid decoder positions of a batch (padding skipped).
   *
   * @param tape The tape.
   * @param batch The batch.
   * @returns The loss, `[1]`.
   * @throws {RangeError} On inconsistent batch lengths.
   */
  loss(tape: Tape, batch: Seq2SeqBatch): Variable {
    const be = this.backend;
    const { batchSize: B, source, sourceLengths, targetInput, targetOutput, targetLengths } = batch;
    if (
      sourceLengths.length !== B || targetLengths.length !== B ||
      targetInput.length !== targetOutput.length
    ) {
      throw new RangeError(
        `Cannot compute the encoder-decoder loss: expected ${B} source and target lengths and ` +
          `as many decoder inputs as outputs, got ${sourceLengths.length}, ${targetLengths.length}, ` +
          `${targetInput.length} and ${targetOutput.length}`,
      );
    }
    const T = targetInput.length / B;
    const memory = this.encode(tape, be.indices(source, [source.length]), sourceLengths);
    const hidden = this.decode(tape, memory, sourceLengths, be.indices(targetInput, [B * T]));
    const rows: number[] = [];
    for (let b = 0; b < B; b++) {
      const n = targetLengths[b];
      if (!Number.isInteger(n) || n < 1 || n > T) {
        throw new RangeError(
          `Cannot compute the encoder-decoder loss: target length ${b} must be in [1, ${T}], got ${n}`,
        );
      }
      for (let t = 0; t < n; t++) rows.push(b * T + t);
    }
    const index = Int32Array.from(rows);
    const targets = new Int32Array(index.length);
    index.forEach((r, i) => targets[i] = targetOutput[r]);
    return ops.crossEntropy(
      tape,
      this.#logits(tape, hidden, index),
      be.indices(targets, [targets.length]),
    );
  }

  /**
   * Greedy decoding: encodes the sources once, then appends the arg-max token (lowest id on ties)
   * until every sequence has produced `endId` or `maxLength` tokens. Evaluation only (no step
   * open); releases the backend's temporaries.
   *
   * @param source `B·S` source ids.
   * @param sourceLengths Valid positions of each source.
   * @param options `{ batchSize, startId, endId, maxLength }` (`maxLength < targetLength`).
   * @returns Each sequence's tokens, without the start symbol and the end symbol.
   * @throws {Error} If a training step is open.
   * @throws {RangeError} If `maxLength` is out of range.
   */
  async greedyDecode(
    source: Int32Array,
    sourceLengths: Int32Array,
    options: { batchSize: number; startId: number; endId: number; maxLength: number },
  ): Promise<number[][]> {
    if (this.openStep !== undefined) {
      throw new Error(`Cannot decode while training step ${this.openStep.step} is open`);
    }
    const { batchSize: B, startId, endId, maxLength } = options;
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength >= this.config.targetLength) {
      throw new RangeError(
        `Cannot decode: maxLength must be an integer in [1, ${
          this.config.targetLength - 1
        }], got ${maxLength}`,
      );
    }
    const be = this.backend;
    const tape = new Tape(be, { recording: false });
    const memory = be.keep(
      this.encode(tape, be.indices(source, [source.length]), sourceLengths).value,
    );
    const memoryVariable = ops.constant(memory);
    const V = this.config.targetVocabSize;
    const outputs: number[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);
    try {
      for (let t = 1; t <= maxLength && done.includes(false); t++) {
        const input = new Int32Array(B * t);
        for (let b = 0; b < B; b++) {
          input[b * t] = startId;
          for (let i = 1; i < t; i++) input[b * t + i] = outputs[b][i - 1] ?? endId;
        }
        const hidden = this.decode(tape, memoryVariable, sourceLengths, be.indices(input, [B * t]));
        const last = Int32Array.from({ length: B }, (_, b) => b * t + t - 1);
        const logits = await be.read(this.#logits(tape, hidden, last).value);
        for (let b = 0; b < B; b++) {
          if (done[b]) continue;
          let best = 0;
          for (let v = 1; v < V; v++) if (logits[b * V + v] > logits[b * V + best]) best = v;
          if (best === endId) done[b] = true;
          else outputs[b].push(best);
        }
        be.release();
      }
    } finally {
      be.dispose(memory);
      be.release();
    }
    return outputs;
  }
}

function positions(be: Backend, B: number, T: number): Tensor {
  const p = new Int32Array(B * T);
  for (let i = 0; i < p.length; i++) p[i] = i % T;
  return be.indices(p, [B * T]);
}
