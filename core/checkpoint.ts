/**
 * Training checkpoints as safetensors files (`safetensors.ts`, written atomically).
 *
 * A checkpoint holds the whole training state of a {@linkcode Trainer}:
 *
 * | tensor | dtype | content |
 * |---|---|---|
 * | `<parameter name>` (e.g. `transformer.h.0.mlp.c_fc.weight`) | F32 | the weights |
 * | `optimizer.m.<parameter name>`, `optimizer.v.<parameter name>` | F32 | AdamW moments |
 * | `sparse.mask.<weight name>` | U8 | a sparse layer's tracked mask (transposable or hard top-2) |
 * | `sparse.beta.<weight name>` | F32 `[1]` | a sparse layer's β (1 unless S-STE) |
 *
 * and metadata (strings): `format` = `twofour-checkpoint`, `version` = `1`, `step` (optimizer steps
 * taken), `phase` (`sparse`/`dense`: the dense switch of `t-sr-ste+df`), `model` and `trainer`
 * (the resolved configurations as JSON), `maskKinds` (JSON, weight name → `hard`/`transposable`)
 * and `rng`, and optionally `runLog` (a JSON run log saved with the state) and `sparseKernels` (the
 * backend's 2:4 kernel choices, SPEC §8.6, restored on load so a resumed run takes the same paths). There is no generator state to save: every random draw is counter-based and
 * determined by the seed (in `trainer`) and the step (`streams.ts`).
 *
 * Loading validates everything before changing anything — format, configurations, names,
 * shapes, dtypes, mask values — and throws a {@linkcode CheckpointError} naming the first
 * mismatch. Resuming from a checkpoint continues bit for bit on float32 storage (the reference
 * backend's default): the values saved are the values in use.
 *
 * @module
 */

import { CheckpointError, loadSafetensors, saveSafetensors } from "./safetensors.ts";
import type { SafetensorsTensor } from "./safetensors.ts";
import { previewJson } from "./_strict_json.ts";
import type { SparseKernelChoice, Tensor } from "./backend.ts";
import type { GPT } from "./gpt2.ts";
import type { Parameter } from "./nn.ts";
import type { MaskKind, TrainingPhase } from "./sparse.ts";
import type { Trainer } from "./trainer.ts";

/** Value of the `format` metadata entry. */
export const CHECKPOINT_FORMAT = "twofour-checkpoint";
/** Value of the `version` metadata entry. */
export const CHECKPOINT_VERSION = "1";

const RNG_NOTE = "counter-based Philox4x32-10: every draw is determined by the seed (trainer " +
  "config) and the step (core/streams.ts); there is no generator state";

function trainerConfigJson(trainer: Trainer): string {
  // captureGradients is a debugging switch, not part of the run.
  const { captureGradients: _, ...run } = trainer.config;
  return JSON.stringify(run);
}

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /**
   * A JSON value saved with the state in the same file (metadata `runLog`), so that a run's log
   * and its weights are replaced by one rename and can never disagree.
   */
  runLog?: unknown;
}

/** What {@linkcode loadCheckpoint} restored. */
export interface LoadedCheckpoint {
  /** The restored step (optimizer steps taken). */
  step: number;
  /** The restored phase. */
  phase: TrainingPhase;
  /** The `runLog` saved with the state (parsed JSON), or `undefined` if none was saved. */
  runLog: unknown;
}

/**
 * Writes the training state of `trainer` (weights, AdamW moments, masks, β, step, phase,
 * configurations, and optionally a run log) to `path` atomically: one file, one rename.
 *
 * @param path The file to write (replaced atomically).
 * @param trainer The trainer.
 * @param options `{ runLog }`: a JSON value stored in the same file.
 * @returns Resolves once the file is on disk.
 * @throws {Error} If a training step (a missing `await`) or another save or load is running.
 * @example
 * ```ts
 * import { ReferenceBackend } from "./reference_backend.ts";
 * import { GPT, gptConfig } from "./gpt2.ts";
 * import { Trainer } from "./trainer.ts";
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const backend = new ReferenceBackend();
 * const config = gptConfig("tiny", { sparse: { method: "t-sr-ste" } });
 * const run = { totalSteps: 4, peakLr: 1e-3, warmupSteps: 1, minLr: 1e-4, seed: 3 };
 * const trainer = new Trainer(await GPT.create(backend, config, { seed: 3 }), run);
 * const batch = { tokens: new Int32Array(8).fill(1), targets: new Int32Array(8).fill(2), batchSize: 1 };
 * await trainer.trainStep(batch);
 * const dir = await Deno.makeTempDir();
 * await saveCheckpoint(`${dir}/ckpt.safetensors`, trainer);
 * const resumed = new Trainer(await GPT.create(backend, config, { seed: 99 }), run);
 * await loadCheckpoint(`${dir}/ckpt.safetensors`, resumed);
 * if (resumed.step !== 1) throw new Error("unexpected step");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function saveCheckpoint(
  path: string,
  trainer: Trainer,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  return trainer.exclusive("save a checkpoint", () => writeCheckpoint(path, trainer, options));
}

async function writeCheckpoint(
  path: string,
  trainer: Trainer,
  options: SaveCheckpointOptions,
): Promise<void> {
  const model = trainer.model;
  const be = model.backend;
  const params = model.parameters();
  const moments = params.map((p) => trainer.optimizer.moments(p.name));
  const values = await be.readMany([
    ...params.map((p) => p.value),
    ...moments.flatMap(({ m, v }) => [m, v]),
  ]);
  const tensors: Record<string, SafetensorsTensor> = {};
  params.forEach((p, i) => {
    const shape = [...p.value.shape];
    tensors[p.name] = { dtype: "F32", shape, data: values[i] };
    tensors[`optimizer.m.${p.name}`] = { dtype: "F32", shape, data: values[params.length + 2 * i] };
    tensors[`optimizer.v.${p.name}`] = {
      dtype: "F32",
      shape,
      data: values[params.length + 2 * i + 1],
    };
  });
  // Shapes still untimed are decided now, so the saved choices cover every step after this one.
  await be.sparseKernels?.tune();
  const kernels = be.sparseKernels?.choices() ?? {};
  const maskKinds: Record<string, MaskKind> = {};
  for (const layer of model.sparseLayers()) {
    const state = await layer.saveState();
    tensors[`sparse.beta.${layer.name}`] = {
      dtype: "F32",
      shape: [1],
      data: new Float32Array([state.beta]),
    };
    if (state.mask !== undefined && state.maskKind !== undefined) {
      tensors[`sparse.mask.${layer.name}`] = {
        dtype: "U8",
        shape: [...layer.weight.value.shape],
        data: Uint8Array.from(state.mask),
      };
      maskKinds[layer.name] = state.maskKind;
    }
  }
  await saveSafetensors(path, tensors, {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: String(trainer.step),
    phase: trainer.phase,
    model: JSON.stringify(model.config),
    trainer: trainerConfigJson(trainer),
    maskKinds: JSON.stringify(maskKinds),
    rng: RNG_NOTE,
    ...(options.runLog === undefined ? {} : { runLog: JSON.stringify(options.runLog) }),
    ...(Object.keys(kernels).length === 0 ? {} : { sparseKernels: JSON.stringify(kernels) }),
  });
}

/** The first path at which two JSON values differ, or `undefined` if they are equal. */
function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (a === b) return undefined;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") {
    return `${path || "(root)"}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of [...keys].sort()) {
    const d = firstDifference(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      path ? `${path}.${key}` : key,
    );
    if (d !== undefined) return d;
  }
  return undefined;
}

function parseJson(text: string | undefined, key: string, path: string): unknown {
  if (text === undefined) {
    throw new CheckpointError(`Cannot load ${path}: metadata ${key} is missing`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CheckpointError(`Cannot load ${path}: metadata ${key} is not valid JSON`);
  }
}

function expectTensor(
  tensors: Record<string, SafetensorsTensor>,
  name: string,
  dtype: SafetensorsTensor["dtype"],
  shape: readonly number[],
  path: string,
): SafetensorsTensor {
  const t = tensors[name];
  if (t === undefined) throw new CheckpointError(`Cannot load ${path}: tensor ${name} is missing`);
  if (t.dtype !== dtype) {
    throw new CheckpointError(
      `Cannot load ${path}: tensor ${name} has dtype ${t.dtype}, expected ${dtype}`,
    );
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new CheckpointError(
      `Cannot load ${path}: tensor ${name} has shape [${t.shape}], expected [${shape}]`,
    );
  }
  return t;
}

interface SparseStates {
  phase: TrainingPhase;
  layers: { beta: number; mask: Float32Array | undefined; maskKind: MaskKind | undefined }[];
}

/** Validates and decodes the sparse-layer states and the phase of a checkpoint. */
function readSparseStates(
  model: GPT,
  tensors: Record<string, SafetensorsTensor>,
  metadata: Record<string, string>,
  path: string,
): SparseStates {
  const phase = metadata.phase;
  if (phase !== "sparse" && phase !== "dense") {
    throw new CheckpointError(`Cannot load ${path}: metadata phase is ${JSON.stringify(phase)}`);
  }
  const kinds = parseJson(metadata.maskKinds, "maskKinds", path) as Record<string, unknown>;
  const layers = model.sparseLayers().map((layer) => {
    const beta = expectTensor(tensors, `sparse.beta.${layer.name}`, "F32", [1], path).data[0];
    if (!(beta > 0) || !Number.isFinite(beta)) {
      throw new CheckpointError(`Cannot load ${path}: β of ${layer.name} is ${beta}`);
    }
    const maskName = `sparse.mask.${layer.name}`;
    if (tensors[maskName] === undefined) return { beta, mask: undefined, maskKind: undefined };
    const raw = expectTensor(tensors, maskName, "U8", layer.weight.value.shape, path).data;
    const bad = raw.findIndex((x) => x > 1);
    if (bad >= 0) {
      throw new CheckpointError(`Cannot load ${path}: ${maskName} holds ${raw[bad]} at ${bad}`);
    }
    const kind = kinds?.[layer.name];
    if (kind !== "hard" && kind !== "transposable") {
      throw new CheckpointError(
        `Cannot load ${path}: the mask kind of ${layer.name} is ${JSON.stringify(kind)}`,
      );
    }
    return { beta, mask: Float32Array.from(raw), maskKind: kind as MaskKind };
  });
  return { phase, layers };
}

/**
 * Restores a checkpoint written by {@linkcode saveCheckpoint} into a trainer built with the same
 * model and run configuration (any initial weights): weights, AdamW moments, masks, β, step and
 * phase. Nothing is changed unless the whole file checks out.
 *
 * Besides the configurations, names, shapes and dtypes, the values are checked against the run:
 * the step is an integer in `[0, totalSteps]`; the phase is the one the method has at that step
 * (only `t-sr-ste+df` has a dense phase, after its switch step); every sparse layer has a mask
 * once a step was taken, of the kind the method tracks in that phase, with the 2:4 structure of
 * that kind (transposable: two per row and column of every 4×4 block; hard: two per group of
 * four, at most two for S-STE); weights and moments are finite and `v ≥ 0`.
 *
 * @param path The checkpoint file.
 * @param trainer The trainer to restore into.
 * @returns The restored step and phase, and the run log saved with them (if any).
 * @throws {CheckpointError} If the file is malformed or not a twofour checkpoint, a configuration
 * differs (the message names the first differing field), a tensor is missing, extra, or has the
 * wrong shape or dtype, or a value is out of range (the message names the field and the value).
 * @throws {Error} If a training step (a missing `await`) or a save or load is running.
 */
export function loadCheckpoint(path: string, trainer: Trainer): Promise<LoadedCheckpoint> {
  return trainer.exclusive("load a checkpoint", () => readCheckpoint(path, trainer));
}

async function readCheckpoint(path: string, trainer: Trainer): Promise<LoadedCheckpoint> {
  const { tensors, metadata } = await loadSafetensors(path);
  if (metadata.format !== CHECKPOINT_FORMAT || metadata.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      `Cannot load ${path}: not a ${CHECKPOINT_FORMAT} version ${CHECKPOINT_VERSION} file ` +
        `(format ${JSON.stringify(metadata.format)}, version ${JSON.stringify(metadata.version)})`,
    );
  }
  const model = trainer.model;
  const modelDiff = firstDifference(parseJson(metadata.model, "model", path), model.config);
  if (modelDiff !== undefined) {
    throw new CheckpointError(
      `Cannot load ${path}: the model configuration differs at ${modelDiff}`,
    );
  }
  const runDiff = firstDifference(
    parseJson(metadata.trainer, "trainer", path),
    JSON.parse(trainerConfigJson(trainer)),
  );
  if (runDiff !== undefined) {
    throw new CheckpointError(`Cannot load ${path}: the run configuration differs at ${runDiff}`);
  }
  const total = trainer.config.totalSteps;
  const step = /^(0|[1-9][0-9]{0,15})$/.test(metadata.step ?? "") ? Number(metadata.step) : NaN;
  if (!(step >= 0 && step <= total)) {
    throw new CheckpointError(
      `Cannot load ${path}: metadata step must be an integer in [0, ${total}], got ${
        previewJson(metadata.step)
      }`,
    );
  }
  const expectedPhase = phaseAt(trainer, step);
  if (metadata.phase !== expectedPhase) {
    throw new CheckpointError(
      `Cannot load ${path}: metadata phase must be "${expectedPhase}" at step ${step} of ` +
        `${model.config.sparse.method} (dense phases: t-sr-ste+df after step ` +
        `${trainer.denseSwitchStep ?? "-"}, step before step ${
          trainer.preconditionSteps ?? "-"
        }), ` +
        `got ${previewJson(metadata.phase)}`,
    );
  }

  // Validate every tensor before touching the trainer.
  const params = model.parameters();
  const expected = new Set<string>();
  const restored = params.map((p) => {
    const shape = p.value.shape;
    const names = [p.name, `optimizer.m.${p.name}`, `optimizer.v.${p.name}`];
    names.forEach((n) => expected.add(n));
    return names.map((n) => {
      const data = expectTensor(tensors, n, "F32", shape, path).data as Float32Array;
      assertValues(data, n, path, n.startsWith("optimizer.v.") ? "finite and ≥ 0" : "finite");
      return data;
    });
  });
  const sparse = readSparseStates(model, tensors, metadata, path);
  assertMaskKinds(model, sparse, metadata, step, path);
  for (const layer of model.sparseLayers()) {
    expected.add(`sparse.beta.${layer.name}`);
    expected.add(`sparse.mask.${layer.name}`);
  }
  const extra = Object.keys(tensors).find((n) => !expected.has(n));
  if (extra !== undefined) {
    throw new CheckpointError(`Cannot load ${path}: unexpected tensor ${extra}`);
  }

  const kernels = readKernelChoices(metadata, path);
  const be = model.backend;
  const put = (dst: Tensor, data: Float32Array) => {
    const src = be.tensor(data, dst.shape);
    be.assign(dst, src);
    be.dispose(src);
  };
  params.forEach((p, i) => {
    const [w, m, v] = restored[i];
    const moments = trainer.optimizer.moments(p.name);
    put(p.value, w);
    put(moments.m, m);
    put(moments.v, v);
  });
  model.sparseLayers().forEach((layer, i) => layer.loadState(sparse.layers[i], sparse.phase));
  trainer.restore({ step, phase: sparse.phase });
  be.sparseKernels?.restore(kernels);
  const runLog = metadata.runLog === undefined
    ? undefined
    : parseJson(metadata.runLog, "runLog", path);
  return { step, phase: sparse.phase, runLog };
}

/** The saved 2:4 kernel choices (metadata `sparseKernels`; none in older checkpoints). */
function readKernelChoices(
  metadata: Record<string, string>,
  path: string,
): Record<string, SparseKernelChoice> {
  if (metadata.sparseKernels === undefined) return {};
  const choices = parseJson(metadata.sparseKernels, "sparseKernels", path);
  const bad = choices === null || typeof choices !== "object" || Array.isArray(choices)
    ? "(root)"
    : Object.entries(choices).find(([, c]) => c?.path !== "dense" && c?.path !== "sparse")?.[0];
  if (bad !== undefined) {
    throw new CheckpointError(
      `Cannot load ${path}: metadata sparseKernels must map product keys to {path: "dense" | "sparse"}, got ${bad}: ${
        previewJson(metadata.sparseKernels)
      }`,
    );
  }
  return choices as Record<string, SparseKernelChoice>;
}

/** The phase a trainer is in after `step` steps (`Trainer.phaseAt` of its last step). */
function phaseAt(trainer: Trainer, step: number): TrainingPhase {
  return trainer.phaseAt(step === 0 ? 0 : step - 1);
}

/** Throws unless every value is finite (and ≥ 0 for a second moment), naming the first bad one. */
function assertValues(
  data: Float32Array,
  name: string,
  path: string,
  rule: "finite" | "finite and ≥ 0",
): void {
  const nonNegative = rule === "finite and ≥ 0";
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (!Number.isFinite(x) || (nonNegative && x < 0)) {
      throw new CheckpointError(
        `Cannot load ${path}: ${name} must be ${rule}, got ${x} at index ${i}`,
      );
    }
  }
}

/**
 * Checks the masks against the method: present on every sparse layer once a step was taken, of
 * the kind the method tracks in the phase (transposable for t-sr-ste* while sparse, hard
 * otherwise), with that kind's 2:4 structure, and `maskKinds` naming exactly those layers.
 */
function assertMaskKinds(
  model: GPT,
  sparse: SparseStates,
  metadata: Record<string, string>,
  step: number,
  path: string,
): void {
  const method = model.config.sparse.method;
  const transposable = (method === "t-sr-ste" || method === "t-sr-ste+df") &&
    sparse.phase === "sparse";
  const expectedKind: MaskKind = transposable ? "transposable" : "hard";
  // Soft thresholding keeps at most two of four (ties at the threshold keep fewer).
  const exactlyTwo = method !== "s-ste" && method !== "s-ste+fp8";
  const kinds = parseJson(metadata.maskKinds, "maskKinds", path) as Record<string, unknown>;
  const named = new Set(model.sparseLayers().map((l) => l.name));
  const stray = Object.keys(kinds ?? {}).find((k) => !named.has(k));
  if (stray !== undefined) {
    throw new CheckpointError(
      `Cannot load ${path}: maskKinds names ${previewJson(stray)}, which is no sparse layer`,
    );
  }
  model.sparseLayers().forEach((layer, i) => {
    const { mask, maskKind } = sparse.layers[i];
    const field = `sparse.mask.${layer.name}`;
    if ((mask !== undefined) !== (step > 0)) {
      throw new CheckpointError(
        `Cannot load ${path}: ${field} must be ${step > 0 ? "present" : "absent"} at step ${step}`,
      );
    }
    if (mask === undefined) return;
    if (maskKind !== expectedKind) {
      throw new CheckpointError(
        `Cannot load ${path}: maskKinds.${layer.name} must be "${expectedKind}" for ${method} ` +
          `in the ${sparse.phase} phase, got ${previewJson(maskKind)}`,
      );
    }
    const [rows, cols] = layer.weight.value.shape;
    const problem = expectedKind === "transposable"
      ? transposableMaskProblem(mask, rows, cols)
      : hardMaskProblem(mask, cols, exactlyTwo);
    if (problem !== undefined) {
      throw new CheckpointError(
        `Cannot load ${path}: ${field} is not a ${expectedKind} 2:4 mask: ${problem}`,
      );
    }
  });
}

/** Where a row-major mask breaks "two (or at most two) ones in every group of four of a row". */
function hardMaskProblem(
  mask: Float32Array,
  cols: number,
  exactlyTwo: boolean,
): string | undefined {
  if (cols % 4 !== 0) return `its row length ${cols} is not a multiple of 4`;
  for (let g = 0; g < mask.length / 4; g++) {
    const ones = mask[4 * g] + mask[4 * g + 1] + mask[4 * g + 2] + mask[4 * g + 3];
    if (exactlyTwo ? ones !== 2 : ones > 2) {
      const row = Math.floor((4 * g) / cols), col = (4 * g) % cols;
      return `row ${row}, columns ${col}..${col + 3} hold ${ones} ones, expected ${
        exactlyTwo ? "2" : "at most 2"
      }`;
    }
  }
  return undefined;
}

/** Where a row-major mask breaks "two ones in every row and column of every 4×4 block". */
function transposableMaskProblem(
  mask: Float32Array,
  rows: number,
  cols: number,
): string | undefined {
  if (rows % 4 !== 0 || cols % 4 !== 0) return `its shape [${rows}, ${cols}] is not 4×4 blocks`;
  for (let br = 0; br < rows; br += 4) {
    for (let bc = 0; bc < cols; bc += 4) {
      for (let k = 0; k < 4; k++) {
        let inRow = 0, inCol = 0;
        for (let j = 0; j < 4; j++) {
          inRow += mask[(br + k) * cols + bc + j];
          inCol += mask[(br + j) * cols + bc + k];
        }
        if (inRow !== 2 || inCol !== 2) {
          return `the 4×4 block at row ${br}, column ${bc} has ${inRow} ones in its row ${k} and ` +
            `${inCol} in its column ${k}, expected 2 and 2`;
        }
      }
    }
  }
  return undefined;
}

/** Options of {@linkcode loadWeights}. */
export interface LoadWeightsOptions {
  /** Names of model parameters that may be absent from the file (e.g. a new classifier head). */
  allowMissing?: readonly string[];
}

/**
 * Loads the weights of a checkpoint into a model (for evaluation or fine-tuning), ignoring the
 * optimizer state. When the checkpoint's sparse method equals the model's, the sparse layers'
 * masks, β and phase are restored too.
 *
 * @param path The checkpoint file.
 * @param model The model.
 * @param options `{ allowMissing }`.
 * @returns Resolves once loaded.
 * @throws {CheckpointError} If the file is not a twofour checkpoint, a parameter is missing (and
 * not allowed to be) or has the wrong shape or dtype.
 */
export async function loadWeights(
  path: string,
  model: GPT,
  options: LoadWeightsOptions = {},
): Promise<void> {
  const { tensors, metadata } = await loadSafetensors(path);
  if (metadata.format !== CHECKPOINT_FORMAT || metadata.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      `Cannot load ${path}: not a ${CHECKPOINT_FORMAT} version ${CHECKPOINT_VERSION} file`,
    );
  }
  const allowMissing = new Set(options.allowMissing ?? []);
  const loads: [Parameter, Float32Array][] = [];
  for (const p of model.parameters()) {
    if (tensors[p.name] === undefined && allowMissing.has(p.name)) continue;
    loads.push([p, expectTensor(tensors, p.name, "F32", p.value.shape, path).data as Float32Array]);
  }
  const saved = parseJson(metadata.model, "model", path) as { sparse?: { method?: string } };
  const sameMethod = saved?.sparse?.method === model.config.sparse.method;
  const sparse = sameMethod ? readSparseStates(model, tensors, metadata, path) : undefined;
  const be = model.backend;
  for (const [p, data] of loads) {
    const src = be.tensor(data, p.value.shape);
    be.assign(p.value, src);
    be.dispose(src);
  }
  if (sparse !== undefined) {
    model.sparseLayers().forEach((layer, i) => layer.loadState(sparse.layers[i], sparse.phase));
  }
}
