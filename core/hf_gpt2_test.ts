import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ReferenceBackend } from "./reference_backend.ts";
import { assertRejects, assertThrows } from "../reference/testing.ts";
import { GPT, gptConfig } from "./gpt2.ts";
import type { SparseMethod } from "./sparse.ts";
import { Trainer } from "./trainer.ts";
import { testRun } from "./train_testing.ts";
import { Tape } from "./autograd.ts";
import { CheckpointError, loadSafetensors, saveSafetensors } from "./safetensors.ts";
import {
  exportHfGpt2,
  HF_METADATA_KEYS,
  HF_REFERENCE_FILE,
  loadHfGpt2,
  saveHfGpt2,
  saveHfReference,
  unpackHfMask,
} from "./hf_gpt2.ts";

const TOKENS = Int32Array.from({ length: 16 }, (_, i) => (7 * i + 3) % 32);

/** A tiny model of `method` after three training steps (so W, β and masks are not at init). */
async function trained(method: SparseMethod, extra: object = {}): Promise<GPT> {
  const backend = new ReferenceBackend();
  const config = gptConfig("tiny", {
    sparse: { method },
    sparseSites: ["attn.c_attn", "mlp.c_fc", "mlp.c_proj"],
    ...extra,
  });
  const model = await GPT.create(backend, config, { seed: 5 });
  const trainer = new Trainer(model, testRun({ totalSteps: 3, warmupSteps: 1, seed: 5 }));
  const targets = Int32Array.from(TOKENS, (t) => (t + 1) % 32);
  for (let s = 0; s < 3; s++) await trainer.trainStep({ tokens: TOKENS, targets, batchSize: 2 });
  return model;
}

async function logits(model: GPT, dense = false): Promise<Float32Array> {
  const be = model.backend;
  const tape = new Tape(be, { recording: false });
  return await be.read(
    model.forward(tape, be.indices(TOKENS, [TOKENS.length]), 2, { dense }).value,
  );
}

Deno.test("exportHfGpt2: transformers names, Conv1D [in, out] shapes, zero biases, no lm_head", async () => {
  const model = await trained("dense");
  const { tensors, config } = await exportHfGpt2(model);
  const d = 16;
  const expected: Record<string, number[]> = {
    "transformer.wte.weight": [32, d],
    "transformer.wpe.weight": [8, d],
    "transformer.ln_f.weight": [d],
    "transformer.ln_f.bias": [d],
  };
  for (const l of [0, 1]) {
    const p = `transformer.h.${l}`;
    Object.assign(expected, {
      [`${p}.ln_1.weight`]: [d],
      [`${p}.ln_1.bias`]: [d],
      [`${p}.attn.c_attn.weight`]: [d, 3 * d],
      [`${p}.attn.c_attn.bias`]: [3 * d],
      [`${p}.attn.c_proj.weight`]: [d, d],
      [`${p}.attn.c_proj.bias`]: [d],
      [`${p}.ln_2.weight`]: [d],
      [`${p}.ln_2.bias`]: [d],
      [`${p}.mlp.c_fc.weight`]: [d, 4 * d],
      [`${p}.mlp.c_fc.bias`]: [4 * d],
      [`${p}.mlp.c_proj.weight`]: [4 * d, d],
      [`${p}.mlp.c_proj.bias`]: [d],
    });
  }
  assertEquals(
    Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.shape])),
    expected,
  );
  assert(Object.values(tensors).every((t) => t.dtype === "F32"));
  assert(tensors["transformer.h.1.mlp.c_fc.bias"].data.every((v) => v === 0));
  // Conv1D [in, out] is the transpose of twofour's [out, in].
  const w = await model.backend.read(model.blocks[1].cFc.weight.value); // [64, 16]
  const hf = tensors["transformer.h.1.mlp.c_fc.weight"].data; // [16, 64]
  assertEquals(hf[3 * 64 + 10], w[10 * 16 + 3]);
  assertEquals(config.activation_function, "gelu");
  assertEquals(config.layer_norm_epsilon, 1e-5);
  assertEquals([config.vocab_size, config.n_positions, config.n_layer], [32, 8, 2]);
});

for (const method of ["dense", "sr-ste", "t-sr-ste", "s-ste"] as const) {
  Deno.test(`saveHfGpt2 → loadHfGpt2 (${method}): the imported dense GPT has the same logits`, async () => {
    const model = await trained(method);
    const dir = await Deno.makeTempDir();
    try {
      await saveHfGpt2(dir, model);
      const imported = await loadHfGpt2(dir, new ReferenceBackend());
      assertEquals(imported.config.sparse.method, "dense");
      assertEquals(await logits(imported), await logits(model)); // bit for bit
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("loadHfGpt2: importing an S-STE export as S-STE keeps the forward (τ = 0, β = 1)", async () => {
  const model = await trained("s-ste");
  const dir = await Deno.makeTempDir();
  try {
    await saveHfGpt2(dir, model);
    const imported = await loadHfGpt2(dir, new ReferenceBackend(), { sparse: { method: "s-ste" } });
    assertEquals(imported.config.sparseSites, model.config.sparseSites);
    assert(imported.sparseLayers().every((l) => l.beta === 1));
    assertEquals(await logits(imported), await logits(model));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exportHfGpt2: sparse weights are 2:4 along `in` under the recorded masks; dense: W", async () => {
  const model = await trained("s-ste");
  const { tensors, metadata } = await exportHfGpt2(model);
  assertEquals(metadata[HF_METADATA_KEYS.weights], "sparse");
  assertEquals(metadata[HF_METADATA_KEYS.format], "pt");
  assertEquals(JSON.parse(metadata[HF_METADATA_KEYS.sparse]).method, "s-ste");
  const masks = JSON.parse(metadata[HF_METADATA_KEYS.masks]) as Record<string, string>;
  const betas = JSON.parse(metadata[HF_METADATA_KEYS.beta]) as Record<string, number>;
  assertEquals(Object.keys(masks).length, 6); // 3 sites × 2 blocks
  for (const [name, packed] of Object.entries(masks)) {
    const [inF, out] = tensors[name].shape;
    const w = tensors[name].data;
    const mask = unpackHfMask(packed, inF * out);
    assertEquals(betas[name], model.sparseLayers().find((l) => l.name === name)!.beta);
    for (let o = 0; o < out; o++) {
      for (let g = 0; g < inF; g += 4) {
        let kept = 0;
        for (let k = g; k < g + 4; k++) {
          kept += mask[k * out + o];
          if (mask[k * out + o] === 0) assertEquals(w[k * out + o], 0);
        }
        assertEquals(kept, 2, `${name} column ${o} group ${g / 4}`);
      }
    }
  }
  const dense = await exportHfGpt2(model, { dense: true });
  assertEquals(dense.metadata[HF_METADATA_KEYS.weights], "dense");
  assert(dense.tensors["transformer.h.0.mlp.c_fc.weight"].data.every((v) => v !== 0));
});

Deno.test("saveHfReference: writes the batch and the export's logits", async () => {
  const model = await trained("t-sr-ste");
  const dir = await Deno.makeTempDir();
  try {
    await saveHfGpt2(dir, model);
    const saved = await saveHfReference(dir, model, { tokens: TOKENS, batchSize: 2 });
    const { tensors } = await loadSafetensors(`${dir}/${HF_REFERENCE_FILE}`);
    assertEquals(tensors.input_ids.shape, [2, 8]);
    assertEquals(tensors.logits.shape, [2, 8, 32]);
    assertEquals(tensors.logits.data, saved);
    assertEquals(saved, await logits(model));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exportHfGpt2: refuses a classifier, an FP8 model exported sparse, a bad vocabulary map", async () => {
  const classifier = await GPT.create(
    new ReferenceBackend(),
    gptConfig("tiny", { numClasses: 3 }),
    { seed: 1 },
  );
  await assertRejects(() => exportHfGpt2(classifier), TypeError, "classifier with 3 classes");
  const fp8 = await GPT.create(
    new ReferenceBackend(),
    gptConfig("tiny", { sparse: { method: "s-ste+fp8" } }),
    { seed: 1 },
  );
  await assertRejects(() => exportHfGpt2(fp8), TypeError, "E4M3");
  assertEquals((await exportHfGpt2(fp8, { dense: true })).metadata["twofour.weights"], "dense");
  const vocab = { sourceVocabSize: 50257, unkId: 30, sourceIds: new Int32Array(31) };
  await assertRejects(() => exportHfGpt2(fp8, { dense: true, vocab }), RangeError, "31 ids");
  const ok = await exportHfGpt2(fp8, {
    dense: true,
    vocab: { ...vocab, sourceIds: new Int32Array(32) },
  });
  assertEquals(JSON.parse(ok.metadata[HF_METADATA_KEYS.vocab]).sourceIds.length, 32);
});

Deno.test("loadHfGpt2: refuses non-zero biases, gelu_new, another ε, an untied head", async () => {
  const model = await trained("dense");
  const dir = await Deno.makeTempDir();
  try {
    await saveHfGpt2(dir, model);
    const { tensors, metadata } = await loadSafetensors(`${dir}/model.safetensors`);
    const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    const attempt = async (
      change: { config?: object; tensor?: [string, number] },
      message: string,
    ) => {
      const sub = await Deno.makeTempDir({ dir });
      const t = structuredClone(tensors);
      if (change.tensor) t[change.tensor[0]].data[0] = change.tensor[1];
      await saveSafetensors(`${sub}/model.safetensors`, t, metadata);
      await Deno.writeTextFile(
        `${sub}/config.json`,
        JSON.stringify({ ...config, ...change.config }),
      );
      await assertRejects(() => loadHfGpt2(sub, new ReferenceBackend()), CheckpointError, message);
    };
    await attempt({ tensor: ["transformer.h.1.attn.c_proj.bias", 0.5] }, "no bias");
    await attempt({ config: { activation_function: "gelu_new" } }, "activation_function");
    await attempt({ config: { layer_norm_epsilon: 1e-6 } }, "layer_norm_epsilon");
    await attempt({ config: { n_inner: 32 } }, "n_inner");
    const sub = await Deno.makeTempDir({ dir });
    const untied = structuredClone(tensors);
    untied["lm_head.weight"] = structuredClone(untied["transformer.wte.weight"]);
    untied["lm_head.weight"].data[5] += 1;
    await saveSafetensors(`${sub}/model.safetensors`, untied, metadata);
    await Deno.writeTextFile(`${sub}/config.json`, JSON.stringify(config));
    await assertRejects(() => loadHfGpt2(sub, new ReferenceBackend()), CheckpointError, "lm_head");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unpackHfMask: refuses a string too short for the count", () => {
  assertThrows(() => unpackHfMask(btoa("\xff"), 9), RangeError, "9 entries need 2 bytes");
});
