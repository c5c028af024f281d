import { ReferenceBackend } from "./reference_backend.ts";
import { Tape } from "./autograd.ts";
import * as ops from "./ops.ts";
import { Trainer } from "./trainer.ts";
import { type ImageBatch, PIXEL_NORMALISATION, ViT, type ViTConfig } from "./vit.ts";
import { SPARSE_METHODS } from "./sparse.ts";
import { assertRejects, assertThrows } from "../reference/testing.ts";

const TINY: Omit<ViTConfig, "sparse"> = {
  imageSize: 8,
  patchSize: 4,
  nLayer: 1,
  nHead: 2,
  nEmbd: 16,
  numClasses: 2,
};

/** Class 0: bright top half; class 1: bright bottom half (8×8 images). */
function halves(batchSize: number, offset = 0): ImageBatch {
  const images = new Uint8Array(batchSize * 64), labels = new Int32Array(batchSize);
  for (let b = 0; b < batchSize; b++) {
    labels[b] = (b + offset) % 2;
    for (let i = 0; i < 64; i++) {
      const top = i < 32;
      images[b * 64 + i] = top === (labels[b] === 0) ? 200 + ((i * 7 + b) % 50) : (i * 13) % 40;
    }
  }
  return { images, labels, batchSize };
}

Deno.test("ViT: input rows are the class row, then the patches in raster order", async () => {
  const model = await ViT.create(new ReferenceBackend(), { ...TINY, sparse: { method: "dense" } }, {
    seed: 1,
  });
  const images = Uint8Array.from({ length: 64 }, (_, i) => i);
  const rows = model.inputRows({ images, labels: new Int32Array([0]), batchSize: 1 });
  const F = 18,
    norm = (v: number) =>
      Math.fround((v / 255 - PIXEL_NORMALISATION.mean) / PIXEL_NORMALISATION.std);
  if (model.seqLen !== 5 || model.features !== F || rows.length !== 5 * F) {
    throw new Error(`shape ${model.seqLen}×${model.features}`);
  }
  const cls = rows.subarray(0, F);
  if (cls.some((v, k) => v !== (k === 17 ? 1 : 0))) throw new Error(`class row ${cls}`);
  // Patch 1 (row 2) is the top-right 4×4 block: pixels 4..7, 12..15, 20..23, 28..31.
  const patch1 = [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31];
  patch1.forEach((px, k) => {
    if (rows[2 * F + k] !== norm(px)) throw new Error(`patch 1 entry ${k}: ${rows[2 * F + k]}`);
  });
  if (rows[2 * F + 16] !== 1 || rows[2 * F + 17] !== 0) throw new Error("patch indicators");
});

Deno.test("ViT: attention is full, not causal: the first position sees the last", async () => {
  const be = new ReferenceBackend();
  const model = await ViT.create(be, { ...TINY, sparse: { method: "dense" } }, { seed: 4 });
  // Block level: changing only the last row of the input changes row 0's output with full
  // attention (its key mask as the ViT builds it), and leaves it unchanged with causal attention.
  const B = 2, T = model.seqLen, d = TINY.nEmbd, nHead = TINY.nHead;
  const x = Float32Array.from({ length: B * T * d }, (_, i) => Math.sin(i * 0.37));
  const changed = x.slice();
  for (let j = 0; j < d; j++) changed[(T - 1) * d + j] += j % 2 === 0 ? 0.5 : -0.3; // not a shift (LayerNorm)
  const bias = ops.attentionBias(be, { batchSize: B, queryLen: T, keyLen: T, nHead }, [T, T]);
  const row0 = async (input: Float32Array, full: boolean) => {
    const tape = new Tape(be, { recording: false });
    const y = model.blocks[0].forward(tape, ops.constant(be.tensor(input, [B * T, d])), {
      batchSize: B,
      seqLen: T,
      nHead,
      layer: 0,
      dropout: 0,
      fullAttention: full ? bias : undefined,
    });
    return (await be.read(y.value)).slice(0, d);
  };
  const differs = (a: Float32Array, b: Float32Array) => a.some((v, j) => Math.abs(v - b[j]) > 1e-6);
  if (!differs(await row0(x, true), await row0(changed, true))) {
    throw new Error("full attention: row 0 does not see the last row");
  }
  if (differs(await row0(x, false), await row0(changed, false))) {
    throw new Error("causal attention: row 0 sees the last row");
  }
  // Model level: the class token comes first, so with causal attention it would see only itself
  // and every image would get the same logits; two images differing only in the last patch differ.
  const images = new Uint8Array(2 * 64).fill(90);
  for (const i of [60, 61, 62, 63]) images[64 + i] = 250; // bottom-right patch of image 1
  const tape = new Tape(be, { recording: false });
  const logits = await be.read(
    model.forward(tape, { images, labels: new Int32Array(2), batchSize: 2 }).value,
  );
  if (!differs(logits.slice(0, 2), logits.slice(2, 4))) {
    throw new Error(`the class token does not see the last patch: logits ${logits}`);
  }
  // Full attention has no dropout on its probabilities: asking for it inside a step is an error.
  assertThrows(
    () =>
      model.blocks[0].forward(new Tape(be), ops.constant(be.tensor(x, [B * T, d])), {
        batchSize: B,
        seqLen: T,
        nHead,
        layer: 0,
        dropout: 0.1,
        step: { step: 0, seed: 1, phase: "sparse" },
        fullAttention: bias,
      }),
    RangeError,
    "it has no attention dropout, got dropout 0.1",
  );
  be.release();
});

Deno.test("ViT: every method learns a two-class toy problem through the Trainer", async () => {
  const be = new ReferenceBackend();
  for (const method of SPARSE_METHODS) {
    const model = await ViT.create(be, { ...TINY, sparse: { method } }, { seed: 2 });
    const trainer = new Trainer(model, {
      totalSteps: 40,
      peakLr: 1e-2,
      warmupSteps: 2,
      minLr: 1e-3,
      seed: 3,
    });
    for (let s = 0; s < 40; s++) await trainer.trainStep(halves(8, s));
    const test = halves(16, 1);
    const predicted = await model.predict(test);
    be.release();
    const correct = predicted.filter((c, i) => c === test.labels[i]).length;
    if (correct < 15) throw new Error(`${method}: ${correct}/16 correct after training`);
  }
});

Deno.test("ViT: bad configurations and batches are RangeErrors naming the value", async () => {
  const be = new ReferenceBackend();
  const bad: [Partial<ViTConfig>, string][] = [
    [{ patchSize: 3 }, "patchSize must divide imageSize, got 3 and 8"],
    [{ nEmbd: 18 }, "nEmbd must be a multiple of nHead and of 4, got 18"],
    [{ nLayer: 0 }, "nLayer must be a positive integer, got 0"],
  ];
  for (const [change, message] of bad) {
    const config = { ...TINY, sparse: { method: "ste" as const }, ...change };
    await assertRejects(() => ViT.create(be, config, { seed: 1 }), RangeError, message);
  }
  const model = await ViT.create(be, { ...TINY, sparse: { method: "ste" } }, { seed: 1 });
  const short = { images: new Uint8Array(63), labels: new Int32Array(1), batchSize: 1 };
  assertThrows(() => model.inputRows(short), RangeError, "expected 1·8² pixels, got 63");
});
