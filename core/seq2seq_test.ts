/**
 * The encoder–decoder: every parameter's gradient against finite differences (dense, float64),
 * padding that cannot change the loss or the decoded output, and greedy decoding consistent with
 * the teacher-forced forward.
 */

import { ReferenceBackend } from "./reference_backend.ts";
import { Tape } from "./autograd.ts";
import { Seq2Seq, type Seq2SeqBatch, type Seq2SeqConfig } from "./seq2seq.ts";
import { assertClose } from "./grad_check.ts";
import { modelFiniteDifference, sampleIndices } from "./train_testing.ts";
import { assert, assertRejects } from "../reference/testing.ts";

const CONFIG: Seq2SeqConfig = {
  sourceVocabSize: 11,
  targetVocabSize: 7,
  sourceLength: 5,
  targetLength: 6,
  nEncoderLayer: 1,
  nDecoderLayer: 2,
  nHead: 2,
  nEmbd: 8,
  sparse: { method: "dense" },
};

/** Two pairs: source lengths 5 and 3, target lengths (with the end symbol) 4 and 2. */
function batch(pad = 0): Seq2SeqBatch {
  return {
    batchSize: 2,
    source: Int32Array.from([3, 4, 5, 6, 7, 8, 9, 10, pad, pad]),
    sourceLengths: Int32Array.from([5, 3]),
    targetInput: Int32Array.from([0, 3, 4, 5, pad, pad, 0, 6, pad, pad, pad, pad]),
    targetOutput: Int32Array.from([3, 4, 5, 1, pad, pad, 6, 1, pad, pad, pad, pad]),
    targetLengths: Int32Array.from([4, 2]),
  };
}

const evaluate = (be: ReferenceBackend, model: Seq2Seq, b: Seq2SeqBatch) => {
  const loss = model.loss(new Tape(be, { recording: false }), b);
  const [value] = be.readF64(loss.value);
  be.release();
  return value;
};

Deno.test("Seq2Seq: gradients of every parameter match finite differences (dense, f64)", async () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const model = await Seq2Seq.create(be, CONFIG, { seed: 3 });
  await model.beginStep({ step: 0, seed: 1, phase: "sparse" });
  const tape = new Tape(be);
  tape.backward(model.loss(tape, batch()));
  const grads = new Map(model.parameters().map((p) => [p.name, be.readF64(p.grad!)]));
  model.endStep();
  be.release();
  model.parameters().forEach((p, k) => {
    const idx = sampleIndices(p.size, 3, k);
    const fd = modelFiniteDifference(be, p, idx, () => evaluate(be, model, batch()));
    const analytic = idx.map((i) => grads.get(p.name)![i]);
    assertClose(analytic, fd, { atol: 1e-8, rtol: 1e-5 }, `∂L/∂${p.name}`);
  });
  assert(model.sparseLayers().length === 6, `${model.sparseLayers().length} sparse layers`);
});

Deno.test("Seq2Seq: padded positions change neither the loss nor the decoded output", async () => {
  const be = new ReferenceBackend({ precision: "f64" });
  const model = await Seq2Seq.create(be, { ...CONFIG, sparse: { method: "s-ste" } }, { seed: 5 });
  const a = evaluate(be, model, batch(0)), b = evaluate(be, model, batch(9 % 7));
  assert(a === b, `loss with padding 0: ${a}, with padding 2: ${b}`);
  const options = { batchSize: 2, startId: 0, endId: 1, maxLength: 5 };
  const both = await model.greedyDecode(batch(0).source, batch(0).sourceLengths, options);
  const second = await model.greedyDecode(Int32Array.from([8, 9, 10]), Int32Array.from([3]), {
    ...options,
    batchSize: 1,
  });
  assert(both[1].join() === second[0].join(), `${both[1]} vs ${second[0]} decoded alone`);
});

Deno.test("Seq2Seq: greedy decoding picks the teacher-forced arg-max at every position", async () => {
  const be = new ReferenceBackend();
  const model = await Seq2Seq.create(be, CONFIG, { seed: 8 });
  const source = batch().source, lengths = batch().sourceLengths;
  const out = await model.greedyDecode(source, lengths, {
    batchSize: 2,
    startId: 0,
    endId: 1,
    maxLength: 5,
  });
  // Re-run the decoder once on [start, decoded…] (padded to 5): each position's arg-max must be
  // the next decoded token, or the end symbol after the last one.
  const T = 5;
  const tape = new Tape(be, { recording: false });
  const memory = model.encode(tape, be.indices(source, [source.length]), lengths);
  const input = new Int32Array(2 * T).fill(1);
  out.forEach((seq, b) => {
    input[b * T] = 0;
    seq.slice(0, T - 1).forEach((t, i) => input[b * T + 1 + i] = t);
  });
  const hidden = model.decode(tape, memory, lengths, be.indices(input, [2 * T]));
  const h = await be.read(hidden.value);
  // The tied head: logits = hidden · wteᵀ, wte = the decoder's token embedding.
  const wte = model.parameters().find((p) => p.name === "decoder.wte.weight")!;
  const w = await be.read(wte.value);
  const { nEmbd: d, targetVocabSize: V } = CONFIG;
  out.forEach((seq, b) => {
    const expected = [...seq, 1].slice(0, T);
    expected.forEach((token, t) => {
      let best = 0, bestValue = -Infinity;
      for (let v = 0; v < V; v++) {
        let z = 0;
        for (let k = 0; k < d; k++) z += h[(b * T + t) * d + k] * w[v * d + k];
        if (z > bestValue) [best, bestValue] = [v, z];
      }
      assert(best === token, `sequence ${b}, position ${t}: arg-max ${best}, decoded ${token}`);
    });
  });
  be.release();
  await assertRejects(
    () => model.greedyDecode(source, lengths, { batchSize: 2, startId: 0, endId: 1, maxLength: 6 }),
    RangeError,
    "maxLength",
  );
});
