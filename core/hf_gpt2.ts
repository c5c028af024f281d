/**
 * Export to and import from the Hugging Face `transformers` GPT-2 layout (`config.json` +
 * `model.safetensors`, loadable with `GPT2LMHeadModel.from_pretrained(dir)`): Conv1D weights
 * `[in, out]`, zero biases (twofour's linears have none), exact-erf GELU (`"gelu"`), LayerNorm
 * ε = 1e-5, attention scaled by `1/√head_dim`, `lm_head` tied to `wte`. A sparse model exports its
 * effective 2:4 weights (`β·S_soft(W)`, `S_h(W)`, `W⊙M`); the method, β and the masks go into the
 * safetensors metadata (keys in {@linkcode HF_METADATA_KEYS}).
 *
 * @module
 */

import type { Backend, Tensor } from "./backend.ts";
import { GPT, type GPTConfig, type ResolvedGPTConfig, type SparseSite } from "./gpt2.ts";
import { sparseMethodTraits, type SparseOptions } from "./sparse.ts";
import { Tape } from "./autograd.ts";
import {
  CheckpointError,
  loadSafetensors,
  type SafetensorsTensor,
  saveSafetensors,
  writeFileAtomic,
} from "./safetensors.ts";

/** The value of the metadata key `twofour.format`. */
export const HF_EXPORT_FORMAT = "twofour-hf-gpt2";
/** The value of the metadata key `twofour.version`. */
export const HF_EXPORT_VERSION = "1";

/**
 * The safetensors metadata keys of an export (all values are strings, as safetensors requires).
 * Masks are stored per sparse weight in the exported `[in, out]` layout, row-major, one bit per
 * entry packed most significant bit first (`numpy.packbits`), base64-encoded.
 */
export const HF_METADATA_KEYS = {
  /** `"pt"`: `transformers` refuses safetensors files without it. */
  format: "format",
  /** {@linkcode HF_EXPORT_FORMAT}. */
  exportFormat: "twofour.format",
  /** {@linkcode HF_EXPORT_VERSION}. */
  version: "twofour.version",
  /** The model's resolved sparse options, JSON. */
  sparse: "twofour.sparse",
  /** The sparse sites, JSON array. */
  sparseSites: "twofour.sparse_sites",
  /** `"sparse"` (effective 2:4 weights) or `"dense"` (the dense master weights `W`). */
  weights: "twofour.weights",
  /** `{ "<tensor name>": β }`, JSON (S-STE's scale; 1 for the other methods). */
  beta: "twofour.beta",
  /** `{ "<tensor name>": "<base64 packed bits>" }`, JSON, for the weights exported 2:4 sparse. */
  masks: "twofour.masks",
  /** The reduced vocabulary `{ sourceVocabSize, unkId, sourceIds }`, JSON (absent: none given). */
  vocab: "twofour.vocab",
} as const;

/** A reduced vocabulary: the source (GPT-2) id of each model id (`core/data/vocab.ts`'s `Vocab`). */
export interface HfVocabMap {
  /** Size of the source vocabulary (50257 for GPT-2). */
  sourceVocabSize: number;
  /** The model id of `<unk>`, or −1 when there is none. */
  unkId: number;
  /** The source id of each model id; −1 at `unkId`. */
  sourceIds: ArrayLike<number>;
}

/** Options of {@linkcode exportHfGpt2} and {@linkcode saveHfGpt2}. */
export interface HfExportOptions {
  /** Export the dense master weights `W` instead of the effective 2:4 weights (P1's evaluation). */
  dense?: boolean;
  /** The reduced vocabulary the model was trained with, recorded in the metadata. */
  vocab?: HfVocabMap;
}

/** An export held in memory: `config.json`'s object and `model.safetensors`' contents. */
export interface HfGpt2Export {
  /** The `transformers` `GPT2Config` as a JSON object. */
  config: Record<string, unknown>;
  /** The tensors by `transformers` name (F32). */
  tensors: Record<string, SafetensorsTensor>;
  /** The safetensors metadata. */
  metadata: Record<string, string>;
}

const LN_EPS = 1e-5;

/** Whether a parameter is a block linear, stored by `transformers` as a Conv1D `[in, out]`. */
function isConv1d(name: string): boolean {
  return /\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(name);
}

/** `[rows, cols]` row-major → `[cols, rows]` row-major. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}

/** Packs a 0/1 mask `[out, in]` transposed to `[in, out]`, MSB first, as base64. */
function packMask(mask: Float32Array, out: number, inF: number): string {
  const t = transpose(mask, out, inF);
  const bytes = new Uint8Array(Math.ceil(t.length / 8));
  for (let i = 0; i < t.length; i++) if (t[i] !== 0) bytes[i >> 3] |= 0x80 >> (i & 7);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Unpacks a mask written by the export: base64 bits, MSB first, `[in, out]` row-major.
 *
 * @param packed The base64 string of {@linkcode HF_METADATA_KEYS}`.masks`.
 * @param count The number of entries (`in · out`).
 * @returns The 0/1 mask in the exported `[in, out]` layout.
 * @throws {RangeError} If the string is too short for `count` bits.
 * @example
 * ```ts
 * import { unpackHfMask } from "./hf_gpt2.ts";
 * if (unpackHfMask(btoa("\xA0"), 4).join() !== "1,0,1,0") throw new Error("unexpected");
 * ```
 */
export function unpackHfMask(packed: string, count: number): Uint8Array {
  const binary = atob(packed);
  if (binary.length * 8 < count) {
    throw new RangeError(
      `Cannot unpack a 2:4 mask: ${count} entries need ${
        Math.ceil(count / 8)
      } bytes, got ${binary.length}`,
    );
  }
  const mask = new Uint8Array(count);
  for (let i = 0; i < count; i++) mask[i] = (binary.charCodeAt(i >> 3) >> (7 - (i & 7))) & 1;
  return mask;
}

/**
 * The `transformers` `GPT2Config` of a twofour model (what `config.json` holds).
 *
 * @param config The model's resolved configuration.
 * @returns The configuration object.
 * @throws {TypeError} For a classification head (mean pooling has no `transformers` GPT-2 head).
 */
export function hfGpt2Config(config: ResolvedGPTConfig): Record<string, unknown> {
  if (config.numClasses > 0) {
    throw new TypeError(
      `Cannot export to the Hugging Face GPT-2 layout: only the language-model head is supported, got a classifier with ${config.numClasses} classes (twofour mean-pools; GPT2ForSequenceClassification reads the last token)`,
    );
  }
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: config.vocabSize,
    n_positions: config.blockSize,
    n_ctx: config.blockSize,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: null, // 4·n_embd
    activation_function: "gelu", // exact erf, as twofour's MLP (not GPT-2's "gelu_new")
    resid_pdrop: config.dropout,
    embd_pdrop: config.dropout,
    attn_pdrop: config.dropout,
    layer_norm_epsilon: LN_EPS,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    bos_token_id: null, // the reduced vocabulary has no fixed GPT-2 ids; see twofour.vocab
    eos_token_id: null,
    torch_dtype: "float32",
  };
}

/**
 * Converts a language-model {@linkcode GPT} to the `transformers` GPT-2 layout in memory. Allocates
 * backend temporaries: call `backend.release()` afterwards.
 *
 * @param model The model (language-model head).
 * @param options `{ dense, vocab }`.
 * @returns The configuration, tensors and metadata.
 * @throws {TypeError} For a classifier, or an FP8 model exported sparse (its E4M3 activations
 * have no `transformers` equivalent; pass `dense: true` to export `W`).
 * @throws {RangeError} If the vocabulary map's length differs from the model's vocabulary.
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { GPT, gptConfig } from "./gpt2.ts";
 * import { exportHfGpt2 } from "./hf_gpt2.ts";
 * const backend = new ReferenceBackend();
 * const model = await GPT.create(backend, gptConfig("tiny", { sparse: { method: "s-ste" } }), {
 *   seed: 1,
 * });
 * const { tensors, metadata } = await exportHfGpt2(model);
 * if (tensors["transformer.h.0.mlp.c_fc.weight"].shape.join() !== "16,64") throw new Error("shape");
 * if (metadata["twofour.weights"] !== "sparse") throw new Error("metadata");
 * ```
 */
export async function exportHfGpt2(
  model: GPT,
  options: HfExportOptions = {},
): Promise<HfGpt2Export> {
  const action = "export to the Hugging Face GPT-2 layout";
  const config = hfGpt2Config(model.config);
  const dense = options.dense ?? false;
  const { sparse, sparseSites, vocabSize } = model.config;
  if (sparse.fp8 && !dense && sparseMethodTraits(sparse.method).weight !== "dense") {
    throw new TypeError(
      `Cannot ${action}: ${sparse.method} evaluates with E4M3-quantised operands, which GPT2LMHeadModel cannot represent; export the dense weights (dense: true) instead`,
    );
  }
  if (options.vocab !== undefined && options.vocab.sourceIds.length !== vocabSize) {
    throw new RangeError(
      `Cannot ${action}: the vocabulary map has ${options.vocab.sourceIds.length} ids, the model ${vocabSize}`,
    );
  }
  const be = model.backend;
  const sparseByName = new Map(model.sparseLayers().map((l) => [l.name, l]));
  const names = model.parameters().map((p) => p.name);
  const values: Tensor[] = [];
  const masks: (Tensor | undefined)[] = [];
  const betas: Record<string, number> = {};
  for (const p of model.parameters()) {
    const layer = sparseByName.get(p.name);
    const { weight, mask } = layer?.evaluationWeight({ dense }) ??
      { weight: p.value, mask: undefined };
    values.push(weight);
    masks.push(mask);
    if (layer !== undefined) betas[p.name] = layer.beta;
  }
  const present = masks.filter((m): m is Tensor => m !== undefined);
  const read = await be.readMany([...values, ...present]);
  const tensors: Record<string, SafetensorsTensor> = {};
  const packed: Record<string, string> = {};
  let maskIndex = values.length;
  names.forEach((name, i) => {
    const shape = [...values[i].shape];
    if (!isConv1d(name)) {
      tensors[name] = { dtype: "F32", shape, data: read[i] };
      return;
    }
    const [out, inF] = shape;
    tensors[name] = { dtype: "F32", shape: [inF, out], data: transpose(read[i], out, inF) };
    tensors[name.replace(/weight$/, "bias")] = {
      dtype: "F32",
      shape: [out],
      data: new Float32Array(out),
    };
    if (masks[i] !== undefined) packed[name] = packMask(read[maskIndex++], out, inF);
  });
  const metadata: Record<string, string> = {
    [HF_METADATA_KEYS.format]: "pt",
    [HF_METADATA_KEYS.exportFormat]: HF_EXPORT_FORMAT,
    [HF_METADATA_KEYS.version]: HF_EXPORT_VERSION,
    [HF_METADATA_KEYS.sparse]: JSON.stringify(sparse),
    [HF_METADATA_KEYS.sparseSites]: JSON.stringify(sparseSites),
    // "dense" also for a model in the dense phase of t-sr-ste+df: no layer applied a mask.
    [HF_METADATA_KEYS.weights]: Object.keys(packed).length > 0 ? "sparse" : "dense",
    [HF_METADATA_KEYS.beta]: JSON.stringify(betas),
    [HF_METADATA_KEYS.masks]: JSON.stringify(packed),
  };
  if (options.vocab !== undefined) {
    const { sourceVocabSize, unkId, sourceIds } = options.vocab;
    metadata[HF_METADATA_KEYS.vocab] = JSON.stringify({
      sourceVocabSize,
      unkId,
      sourceIds: Array.from(sourceIds),
    });
  }
  return { config, tensors, metadata };
}

/**
 * Writes a model as a `transformers` GPT-2 directory: `config.json` and `model.safetensors`
 * (see {@linkcode exportHfGpt2}; the directory is created if needed). Allocates backend
 * temporaries: call `backend.release()` afterwards.
 *
 * @param dir The output directory.
 * @param model The model.
 * @param options `{ dense, vocab }`.
 * @returns Resolves once both files are written.
 * @throws {TypeError} From {@linkcode exportHfGpt2}.
 * @throws {RangeError} From {@linkcode exportHfGpt2}.
 */
export async function saveHfGpt2(
  dir: string,
  model: GPT,
  options: HfExportOptions = {},
): Promise<void> {
  const { config, tensors, metadata } = await exportHfGpt2(model, options);
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(
    `${dir}/config.json`,
    new TextEncoder().encode(JSON.stringify(config, null, 2) + "\n"),
  );
  await saveSafetensors(`${dir}/model.safetensors`, tensors, metadata);
}

/** Options of {@linkcode loadHfGpt2}. */
export interface HfImportOptions {
  /**
   * The training method of the imported model's sparse linears (default: dense, whose forward
   * equals the exported model's). Its β is recomputed from the imported weights.
   */
  sparse?: SparseOptions;
  /** The sparse sites (default: those recorded in the metadata, else the FFN). */
  sparseSites?: SparseSite[];
  /** Dropout (default: the configuration's `resid_pdrop`). */
  dropout?: number;
}

/**
 * Reads a `transformers` GPT-2 directory (`config.json` + `model.safetensors`, F32) into a twofour
 * {@linkcode GPT}. Names may carry the `transformer.` prefix or not; a `lm_head.weight` must equal
 * `wte`. Refuses what twofour's model cannot represent: non-zero linear biases, an activation
 * other than exact GELU (`"gelu"`), LayerNorm ε ≠ 1e-5, other attention scalings, `n_inner` ≠ 4d.
 *
 * @param dir The directory.
 * @param backend The backend to hold the parameters.
 * @param options `{ sparse, sparseSites, dropout }`.
 * @returns The model.
 * @throws {CheckpointError} On a missing or mis-shaped tensor, or a configuration or weight that
 * twofour's GPT-2 cannot represent.
 */
export async function loadHfGpt2(
  dir: string,
  backend: Backend,
  options: HfImportOptions = {},
): Promise<GPT> {
  const fail = (why: string) =>
    new CheckpointError(`Cannot import the Hugging Face GPT-2 in ${dir}: ${why}`);
  const hf = JSON.parse(await Deno.readTextFile(`${dir}/config.json`)) as Record<string, unknown>;
  const { tensors, metadata } = await loadSafetensors(`${dir}/model.safetensors`);
  const d = hf.n_embd as number;
  const expect: [string, unknown, unknown][] = [
    ["model_type", hf.model_type, "gpt2"],
    ["activation_function", hf.activation_function ?? "gelu_new", "gelu"],
    ["layer_norm_epsilon", hf.layer_norm_epsilon ?? LN_EPS, LN_EPS],
    ["scale_attn_weights", hf.scale_attn_weights ?? true, true],
    ["scale_attn_by_inverse_layer_idx", hf.scale_attn_by_inverse_layer_idx ?? false, false],
    ["n_inner", hf.n_inner ?? 4 * d, 4 * d],
    ["tie_word_embeddings", hf.tie_word_embeddings ?? true, true],
  ];
  for (const [key, got, want] of expect) {
    if (got !== want) {
      throw fail(
        `twofour's GPT-2 needs ${key} = ${JSON.stringify(want)}, got ${JSON.stringify(got)}`,
      );
    }
  }
  let recordedSites: SparseSite[] | undefined;
  if (metadata[HF_METADATA_KEYS.sparseSites] !== undefined) {
    recordedSites = JSON.parse(metadata[HF_METADATA_KEYS.sparseSites]) as SparseSite[];
  }
  const config: GPTConfig = {
    vocabSize: hf.vocab_size as number,
    blockSize: hf.n_positions as number,
    nLayer: hf.n_layer as number,
    nHead: hf.n_head as number,
    nEmbd: d,
    dropout: options.dropout ?? (hf.resid_pdrop as number | undefined) ?? 0,
    sparse: options.sparse ?? { method: "dense" },
    sparseSites: options.sparseSites ?? recordedSites,
  };
  const model = await GPT.create(backend, config, { seed: 0 });
  const prefix = tensors["transformer.wte.weight"] !== undefined ? "transformer." : "";
  const get = (name: string, shape: number[]): Float32Array => {
    const key = prefix + name.replace(/^transformer\./, "");
    const t = tensors[key];
    if (t === undefined) throw fail(`missing tensor ${key}`);
    if (t.dtype !== "F32" || t.shape.join() !== shape.join()) {
      throw fail(`${key} must be F32 [${shape}], got ${t.dtype} [${t.shape}]`);
    }
    return t.data as Float32Array;
  };
  for (const p of model.parameters()) {
    const name = p.name;
    const [rows, cols] = p.value.shape;
    let data: Float32Array;
    if (isConv1d(name)) {
      data = transpose(get(name, [cols, rows]), cols, rows);
      const bias = get(name.replace(/weight$/, "bias"), [rows]);
      const nonZero = bias.findIndex((v) => v !== 0);
      if (nonZero >= 0) {
        throw fail(
          `twofour's linears have no bias, got ${name.replace(/weight$/, "bias")}[${nonZero}] = ${
            bias[nonZero]
          }`,
        );
      }
    } else {
      data = get(name, [...p.value.shape]);
    }
    const src = backend.tensor(data, p.value.shape);
    backend.assign(p.value, src);
    backend.dispose(src);
  }
  const head = tensors["lm_head.weight"];
  if (head !== undefined) {
    const wte = get("transformer.wte.weight", [config.vocabSize, d]);
    if (
      head.shape.join() !== `${config.vocabSize},${d}` || head.data.some((v, i) => v !== wte[i])
    ) {
      throw fail("lm_head.weight differs from transformer.wte.weight (twofour ties them)");
    }
  }
  for (const layer of model.sparseLayers()) await layer.initialize();
  return model;
}

/** The file {@linkcode saveHfReference} writes into an export directory. */
export const HF_REFERENCE_FILE = "twofour_reference.safetensors";

/**
 * Saves twofour's own logits on a fixed batch next to an export, for checking a `transformers`
 * load against them: `input_ids` (I32 `[B, T]`) and `logits` (F32 `[B, T, V]`) in
 * {@linkcode HF_REFERENCE_FILE}. The logits are the evaluation forward with the weights the export
 * holds (`dense` as given to the export). Allocates backend temporaries.
 *
 * @param dir The export directory (must exist).
 * @param model The exported model.
 * @param batch `{ tokens, batchSize, dense }`: `B·T` token ids, `B`, and the export's `dense`.
 * @returns The logits, `B·T·V` values.
 * @throws {RangeError} From {@linkcode GPT.forward}.
 */
export async function saveHfReference(
  dir: string,
  model: GPT,
  batch: { tokens: Int32Array; batchSize: number; dense?: boolean },
): Promise<Float32Array> {
  const { tokens, batchSize } = batch;
  const be = model.backend;
  const tape = new Tape(be, { recording: false });
  const logits = await be.read(
    model.forward(tape, be.indices(tokens, [tokens.length]), batchSize, { dense: batch.dense })
      .value,
  );
  const T = tokens.length / batchSize;
  await saveSafetensors(`${dir}/${HF_REFERENCE_FILE}`, {
    input_ids: { dtype: "I32", shape: [batchSize, T], data: tokens },
    logits: { dtype: "F32", shape: [batchSize, T, model.config.vocabSize], data: logits },
  }, { format: "pt" });
  return logits;
}
