/**
 * The model sizes, schedules and study defaults the language-model experiments share (`gpt2.ts`, `flip_rate.ts`,
 * `ablations.ts`, `alpha_select.ts`). Each script's typed config block and presets spread these,
 * so a size is written once and `--preset=gpu` (or `cpu-tiny`) means the same model everywhere.
 *
 * @module
 */

import { DATA_DIR } from "./lm.ts";

/** The plumbing of a resumable run: seed, backend, checkpoints and the corpus cache. */
export const LM_RUN = {
  seed: 1, // initialisation, data order and MVUE seed
  backend: "auto", // auto | cpu | reference | webgpu
  resume: false, // continue every run from its checkpoint (a bare --resume means true)
  checkpointEvery: 100, // steps between checkpoints (and one at the end of each run)
  data: DATA_DIR,
};

/** The CPU model: 2 layers × 128 wide, 4 heads, context 64. */
export const LM_CPU = { nLayer: 2, nHead: 4, nEmbd: 128, blockSize: 64 };

/**
 * `gpt2.ts`'s default job, where `alpha_select.ts` selects α: the CPU model on the 4,096 most
 * frequent ids, batch 16 (1,024 tokens a step), peak LR 1e-3.
 */
export const GPT2_CPU = { vocab: 4096, ...LM_CPU, batchSize: 16, lr: 1e-3 };

/**
 * `gpt2.ts`'s `gpu` preset, where `alpha_select.ts --preset=gpu` selects its α: 4 layers × 384
 * wide, 6 heads, context 256, the 16,384 most frequent ids, batch 16 (4,096 tokens a step), peak
 * LR 1e-3 (sized to Brown in `gpt2.ts`).
 */
export const GPT2_GPU = {
  vocab: 16384,
  nLayer: 4,
  nHead: 6,
  nEmbd: 384,
  blockSize: 256,
  batchSize: 16,
  lr: 1e-3,
};

/**
 * The run of the flip-rate and ablation studies: the width of `gpt2.ts`'s default job, batch 8
 * (512 tokens a step), the 2,048 most frequent ids, 200 steps. A 32-wide model with 512 ids (tried
 * first) finished every variant within a few thousandths of the same loss, below the seed spread,
 * so the studies take the width of the main job.
 */
export const STUDY_CPU = {
  steps: 200,
  vocab: 2048, // reduced vocabulary (0 = the full 50,257 GPT-2 ids)
  ...LM_CPU,
  batchSize: 8,
  lr: 1e-3, // peak learning rate
  warmup: 30, // linear warm-up steps
  minLr: 1e-4, // cosine floor
  evalBatches: 8,
};

/**
 * The defaults both studies (`flip_rate.ts`, `ablations.ts`) open with: the `cpu` preset's run
 * ({@linkcode STUDY_CPU}), the run plumbing, 3 seeds paired by seed, checkpoints under `--out`.
 */
export const STUDY = {
  preset: "cpu", // cpu | cpu-tiny | gpu
  ...STUDY_CPU,
  ...LM_RUN,
  seeds: 3, // every run is trained with seeds seed, seed+1, … (paired by seed)
  checkpoints: "", // checkpoint folder ("" = <out>/checkpoints)
};

/** The test suite's smoke model (seconds on the reference backend): 1 layer × 32, 512 ids, batch 4. */
export const LM_TINY = { vocab: 512, nLayer: 1, nHead: 2, nEmbd: 32, blockSize: 16, batchSize: 4 };

/** The studies' smoke run (`cpu-tiny`): the smoke model at twice the peak LR, 2 validation batches. */
export const STUDY_TINY = { ...LM_TINY, lr: 2e-3, evalBatches: 2 };

/** A GPU-sized model: the full vocabulary, 6 layers × 512 wide, 8 heads, context 256, batch 16. */
export const LM_GPU = { vocab: 0, nLayer: 6, nHead: 8, nEmbd: 512, blockSize: 256, batchSize: 16 };

/** The GPU-sized model's schedule: 600 steps, 60 of warm-up, cosine from 6e-4 to 6e-5. */
export const LM_GPU_SCHEDULE = { steps: 600, lr: 6e-4, warmup: 60, minLr: 6e-5 };

/** The studies' `gpu` preset: the GPU-sized model and schedule, 16 validation batches. */
export const STUDY_GPU = { ...LM_GPU, ...LM_GPU_SCHEDULE, evalBatches: 16 };
