import { ReferenceBackend } from "./reference_backend.ts";
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

Deno.test("ViT: input rows are the patches in raster order, then the class row", async () => {
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
  // Patch 1 is the top-right 4×4 block: pixels 4..7, 12..15, 20..23, 28..31.
  const patch1 = [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31];
  patch1.forEach((px, k) => {
    if (rows[F + k] !== norm(px)) throw new Error(`patch 1 entry ${k}: ${rows[F + k]}`);
  });
  if (rows[F + 16] !== 1 || rows[F + 17] !== 0) throw new Error("patch indicators");
  const cls = rows.subarray(4 * F, 5 * F);
  if (cls.some((v, k) => v !== (k === 17 ? 1 : 0))) throw new Error(`class row ${cls}`);
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
