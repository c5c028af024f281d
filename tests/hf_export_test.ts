/**
 * The Hugging Face GPT-2 export, checked from outside TypeScript: `tools/hf_layout_check.py`
 * (NumPy only) reads a fresh export's names, shapes, dtypes, metadata and 2:4 masks and runs
 * GPT2LMHeadModel's forward in float64 against twofour's logits; a Conv1D weight left untransposed
 * must fail it. Also imports a directory written by `transformers` itself (the H100 run's
 * PyTorch-continued model) back into twofour.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  GPT,
  gptConfig,
  loadHfGpt2,
  loadSafetensors,
  ReferenceBackend,
  saveCheckpoint,
  saveHfGpt2,
  saveHfReference,
  saveSafetensors,
  Tape,
  Trainer,
} from "../core/mod.ts";
import { testRun } from "../core/train_testing.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function python(args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command("python3", { args, cwd: ROOT }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

/** A tiny S-STE model after two steps, exported to `dir` with its reference logits. */
async function exportTiny(dir: string): Promise<void> {
  const { model, tokens } = await trainTiny();
  await saveHfGpt2(dir, model);
  await saveHfReference(dir, model, { tokens, batchSize: 3 });
  model.backend.release();
}

async function trainTiny() {
  const backend = new ReferenceBackend();
  const config = gptConfig("tiny", {
    sparse: { method: "s-ste" },
    sparseSites: ["attn.c_proj", "mlp.c_fc", "mlp.c_proj"],
  });
  const model = await GPT.create(backend, config, { seed: 11 });
  const trainer = new Trainer(model, testRun({ totalSteps: 2, warmupSteps: 0, seed: 11 }));
  const tokens = Int32Array.from({ length: 24 }, (_, i) => (5 * i + 1) % 32);
  const targets = Int32Array.from(tokens, (t) => (t + 2) % 32);
  for (let s = 0; s < 2; s++) await trainer.trainStep({ tokens, targets, batchSize: 3 });
  return { model, trainer, tokens };
}

Deno.test("tools/hf_layout_check.py: a fresh export passes the NumPy layout and forward check", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await exportTiny(dir);
    const { code, out } = await python(["tools/hf_layout_check.py", dir]);
    assertEquals(code, 0, out);
    assert(out.includes("layout: 28 tensors, 6 2:4 masks"), out);
    assert(out.includes("0 outside"), out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tools/hf_layout_check.py: an untransposed square Conv1D weight fails the forward check", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await exportTiny(dir);
    const path = `${dir}/model.safetensors`;
    const { tensors, metadata } = await loadSafetensors(path);
    const name = "transformer.h.1.attn.c_proj.weight"; // [16, 16]: the shape cannot tell
    const w = tensors[name].data as Float32Array;
    const t = new Float32Array(w.length);
    for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) t[c * 16 + r] = w[r * 16 + c];
    tensors[name].data = t;
    const masks = JSON.parse(metadata["twofour.masks"]);
    delete masks[name]; // its mask would flag the transpose first; the forward must catch it too
    await saveSafetensors(path, tensors, { ...metadata, "twofour.masks": JSON.stringify(masks) });
    const { code, out } = await python(["tools/hf_layout_check.py", dir]);
    assertEquals(code, 1, out);
    assert(/FAIL \d+ logits outside the tolerance/.test(out), out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("experiments/export_hf.ts exports a checkpoint; the import reproduces its logits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { model, trainer, tokens } = await trainTiny();
    await saveCheckpoint(`${dir}/ckpt.safetensors`, trainer);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        `${ROOT}experiments/export_hf.ts`,
        `--checkpoint=${dir}/ckpt.safetensors`,
        `--out=${dir}/hf`,
        "--batch=3",
      ],
    }).output();
    const dec = new TextDecoder();
    assertEquals(code, 0, dec.decode(stdout) + dec.decode(stderr));
    assert(dec.decode(stdout).includes("exported s-ste (effective weights)"));
    const imported = await loadHfGpt2(`${dir}/hf`, new ReferenceBackend());
    const logits = async (m: GPT) =>
      await m.backend.read(
        m.forward(
          new Tape(m.backend, { recording: false }),
          m.backend.indices(tokens, [24]),
          3,
        ).value,
      );
    assertEquals(await logits(imported), await logits(model));
    const check = await python(["tools/hf_layout_check.py", `${dir}/hf`]);
    assertEquals(check.code, 0, check.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadHfGpt2: reads a directory saved by transformers' save_pretrained (H100 run)", async () => {
  const dir = `${ROOT}results/interop/h100/continued_s-ste`;
  const model = await loadHfGpt2(dir, new ReferenceBackend());
  assertEquals([model.config.nLayer, model.config.vocabSize, model.config.nEmbd], [2, 32, 16]);
  // PyTorch kept the exported 2:4 masks: every group of 4 inputs of the FFN has ≥ 2 zeros.
  for (const block of model.blocks) {
    const w = await model.backend.read(block.cFc.weight.value);
    for (let g = 0; g < w.length; g += 4) {
      assert(w.subarray(g, g + 4).filter((v) => v === 0).length >= 2, `group ${g / 4}`);
    }
  }
});
