/**
 * The training stack: the {@linkcode Backend} interface, its pure-TypeScript implementation and the
 * CPU fast path ({@linkcode CpuBackend}: BLAS GEMMs through Deno's FFI),
 * reverse-mode autograd, modules (including {@linkcode SparseLinear} with every 2:4 method of
 * SPEC 2.8 and STEP), GPT-2, a small ViT, AdamW with the warm-up + cosine schedule, the
 * {@linkcode Trainer}, safetensors checkpoints, and the data pipelines (Brown, Fashion-MNIST).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, ReferenceBackend, Trainer } from "./mod.ts";
 * const backend = new ReferenceBackend();
 * const model = await GPT.create(backend, gptConfig("tiny", { sparse: { method: "s-ste" } }), {
 *   seed: 1,
 * });
 * const trainer = new Trainer(model, {
 *   totalSteps: 10, peakLr: 1e-2, warmupSteps: 1, minLr: 1e-3, seed: 1,
 * });
 * const batch = { tokens: new Int32Array(8).fill(3), targets: new Int32Array(8).fill(4), batchSize: 1 };
 * const { loss } = await trainer.trainStep(batch);
 * if (!Number.isFinite(loss)) throw new Error("loss is not finite");
 * ```
 *
 * @module
 */

export * from "../reference/matrix.ts";
export type * from "./backend.ts";
export * from "./reference_backend.ts";
export * from "./cpu/backend.ts";
export * from "./cpu/blas.ts";
export * from "./grad_check.ts";
export * from "./autograd.ts";
export * as ops from "./ops.ts";
export * from "./nn.ts";
export * from "./sparse.ts";
export * from "./gpt2.ts";
export * from "./sparse_model.ts";
export * from "./vit.ts";
export * from "./init.ts";
export * from "./optim.ts";
export * from "./schedule.ts";
export * from "./streams.ts";
export * from "./trainer.ts";
export * from "./checkpoint.ts";
export * from "./safetensors.ts";
export * from "./test_vectors.ts";
export * from "./data/mod.ts";
export * from "./hf_gpt2.ts";
