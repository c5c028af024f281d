import { posWindows, probeAccuracy, trainLinearProbe } from "./_pos_probe.ts";
import { assert } from "../reference/testing.ts";
import { uniforms } from "../reference/rng.ts";
import type { BrownDocument } from "../core/data/mod.ts";

Deno.test("trainLinearProbe: separates three Gaussian classes and generalises to fresh draws", () => {
  const d = 6, classes = 3;
  const sample = (n: number, seed: number) => {
    const u = uniforms(seed, 0, n * (d + 1));
    const features = new Float32Array(n * d), labels = new Int8Array(n);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(u[i * (d + 1) + d] * classes);
      labels[i] = c;
      // Class c shifts coordinate c by 3; noise uniform in [−1, 1).
      for (let k = 0; k < d; k++) {
        features[i * d + k] = 2 * u[i * (d + 1) + k] - 1 + (k === c ? 3 : 0) +
          10 * (k === 5 ? 1 : 0);
      }
    }
    return { features, labels };
  };
  const train = sample(600, 1), test = sample(300, 2);
  const probe = trainLinearProbe(train.features, train.labels, d, classes, {
    epochs: 5,
    lr: 0.05,
    batchSize: 32,
    l2: 1e-4,
    seed: 3,
  });
  const acc = probeAccuracy(probe, test.features, test.labels);
  assert(acc > 0.99, `separable classes: accuracy ${acc}`);
  // Labels unrelated to the features: chance level (≈ 1/3), far from the separable case.
  const shuffled = {
    features: test.features,
    labels: test.labels.map((_, i) => i % 3) as Int8Array,
  };
  const chance = probeAccuracy(probe, shuffled.features, shuffled.labels);
  assert(chance < 0.5, `unrelated labels: accuracy ${chance}`);
});

Deno.test("posWindows: equal slots of each document, never crossing it", () => {
  const tokens = Array.from({ length: 40 }, (_, i) => i);
  const labels = Int8Array.from({ length: 40 }, (_, i) => i % 12);
  const doc = (start: number, end: number) =>
    ({ id: "x", genre: "news", split: "train", words: 0, start, end }) as BrownDocument;
  // Documents of 20 and 9 tokens, windows of 4, at most 3 per document: slots of ⌊20/3⌋ = 6
  // tokens in the first (starts 0, 6, 12), ⌊9/2⌋ = 4 in the second (starts 21, 25).
  const w = posWindows(tokens, labels, [doc(0, 20), doc(21, 30)], { blockSize: 4, perDoc: 3 });
  assert(w.count === 5, `count ${w.count}`);
  const starts = Array.from({ length: w.count }, (_, i) => w.tokens[i * 4]);
  assert(starts.join(",") === "0,6,12,21,25", `starts ${starts}`);
  assert(w.labels[4 * 4 + 3] === 28 % 12, "labels follow the tokens");
});
