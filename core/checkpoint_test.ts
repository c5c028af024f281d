/**
 * Checkpoints: save → load → continue equals an uninterrupted run bit for bit (every method, also
 * across the dense switch and after it), and every kind of mismatch is a `CheckpointError`
 * naming it, raised before anything is changed.
 */

import { ReferenceBackend } from "./reference_backend.ts";
import { GPT, type GPTConfig, gptConfig } from "./gpt2.ts";
import { SPARSE_METHODS, type SparseOptions } from "./sparse.ts";
import { Trainer, type TrainerConfig } from "./trainer.ts";
import { loadCheckpoint, loadWeights, saveCheckpoint } from "./checkpoint.ts";
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsContents,
  saveSafetensors,
} from "./safetensors.ts";
import { assertEqualArrays } from "./grad_check.ts";
import { makeBatch, trainerSnapshot as snapshot } from "./train_testing.ts";
import { withTempDir } from "../reference/testing.ts";

const RUN: TrainerConfig = { totalSteps: 8, peakLr: 1e-2, warmupSteps: 1, minLr: 1e-3, seed: 7 };
const batchAt = (s: number) => makeBatch(2, 4, 32, s);

function options(method: SparseOptions["method"]): SparseOptions {
  if (method === "t-sr-ste+df") return { method, maskRefresh: 3, denseFraction: 0.25 };
  if (method === "t-sr-ste") return { method, maskRefresh: 3 };
  if (method === "sr-ste") return { method, decayOn: "weight", lambdaW: 0.1 };
  if (method === "step") return { method, preconditionFraction: 0.5 }; // frozen at 4
  return { method };
}

async function makeTrainer(config: GPTConfig, seed: number, be: ReferenceBackend) {
  return new Trainer(await GPT.create(be, config, { seed }), RUN);
}

Deno.test("checkpoint: save → load → continue equals an uninterrupted run, every method", async () => {
  await withTempDir(async (dir) => {
    for (const method of SPARSE_METHODS) {
      const be = new ReferenceBackend();
      const config = gptConfig("tiny", { sparse: options(method) });
      const straight = await makeTrainer(config, 1, be);
      const results = [];
      for (let s = 0; s < 8; s++) results.push(await straight.trainStep(batchAt(s)));

      // Interrupted after 5 steps (t-sr-ste*: mask from the refresh at 3, not refreshed at 5;
      // t-sr-ste+df: the switch at 6 happens after the resume) and once more after the switch.
      // step: saved in the precondition phase (3) and with the variance frozen (5).
      const saveAts = method === "t-sr-ste+df" ? [5, 7] : method === "step" ? [3, 5] : [5];
      for (const saveAt of saveAts) {
        const first = await makeTrainer(config, 1, be);
        for (let s = 0; s < saveAt; s++) await first.trainStep(batchAt(s));
        const path = `${dir}/${method}-${saveAt}.safetensors`;
        await saveCheckpoint(path, first);
        const resumed = await makeTrainer(config, 99, be); // different initial weights
        await loadCheckpoint(path, resumed);
        if (resumed.step !== saveAt || resumed.phase !== first.phase) {
          throw new Error(`${method}: resumed at ${resumed.step} (${resumed.phase})`);
        }
        for (let s = saveAt; s < 8; s++) {
          const r = await resumed.trainStep(batchAt(s));
          if (JSON.stringify(r) !== JSON.stringify(results[s])) {
            throw new Error(
              `${method} resumed at ${saveAt}: step ${s} ${JSON.stringify(r)} vs ${
                JSON.stringify(results[s])
              }`,
            );
          }
        }
        const [a, b] = [await snapshot(straight), await snapshot(resumed)];
        a.forEach((v, i) =>
          assertEqualArrays(b[i], v, `${method} resumed at ${saveAt}: state ${i}`)
        );
      }
      if (method === "t-sr-ste+df" && straight.phase !== "dense") {
        throw new Error("no dense switch");
      }
    }
  });
});

/** Saves a checkpoint after `steps` steps and returns its path and decoded contents. */
async function savedRun(
  dir: string,
  sparse: SparseOptions = { method: "t-sr-ste" },
  steps = 1,
): Promise<{ path: string; contents: SafetensorsContents }> {
  const be = new ReferenceBackend();
  const trainer = await makeTrainer(gptConfig("tiny", { sparse }), 1, be);
  for (let s = 0; s < steps; s++) await trainer.trainStep(batchAt(s));
  const path = `${dir}/run-${sparse.method}-${steps}.safetensors`;
  await saveCheckpoint(path, trainer);
  return { path, contents: decodeSafetensors(await Deno.readFile(path)) };
}

async function expectCheckpointError(
  path: string,
  trainer: Trainer,
  pattern: RegExp,
  label: string,
): Promise<void> {
  const before = await snapshot(trainer);
  let message = "";
  try {
    await loadCheckpoint(path, trainer);
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw new Error(`${label}: unexpected error ${e}`);
    message = e.message;
  }
  if (!pattern.test(message)) throw new Error(`${label}: expected ${pattern}, got "${message}"`);
  if (trainer.step !== 0) throw new Error(`${label}: the step changed`);
  const after = await snapshot(trainer);
  before.forEach((v, i) => assertEqualArrays(after[i], v, `${label}: state ${i} changed`));
}

Deno.test("checkpoint: mismatches are CheckpointErrors naming the problem; nothing is half-loaded", async () => {
  await withTempDir(async (dir) => {
    const { path, contents } = await savedRun(dir);
    const be = new ReferenceBackend();
    const target = await makeTrainer(gptConfig("tiny", { sparse: { method: "t-sr-ste" } }), 5, be);
    const write = async (name: string, edit: (c: SafetensorsContents) => void) => {
      const copy = decodeSafetensors(encodeSafetensors(contents.tensors, contents.metadata));
      edit(copy);
      const p = `${dir}/${name}.safetensors`;
      await Deno.writeFile(p, encodeSafetensors(copy.tensors, copy.metadata));
      return p;
    };
    const wteName = "transformer.wte.weight";
    const maskName = "sparse.mask.transformer.h.0.mlp.c_fc.weight";
    const cases: [string, (c: SafetensorsContents) => void, RegExp][] = [
      [
        "missing",
        (c) => delete c.tensors[`optimizer.v.${wteName}`],
        /tensor optimizer\.v\.transformer\.wte\.weight is missing/,
      ],
      ["shape", (c) => {
        c.tensors[wteName] = {
          dtype: "F32",
          shape: [16, 32],
          data: c.tensors[wteName].data as Float32Array,
        };
      }, /tensor transformer\.wte\.weight has shape \[16,32\], expected \[32,16\]/],
      ["dtype", (c) => {
        c.tensors[wteName] = {
          dtype: "F64",
          shape: [32, 16],
          data: Float64Array.from(c.tensors[wteName].data),
        };
      }, /has dtype F64, expected F32/],
      ["extra", (c) => {
        c.tensors["classifier.weight"] = { dtype: "F32", shape: [1], data: new Float32Array(1) };
      }, /unexpected tensor classifier\.weight/],
      ["mask", (c) => ((c.tensors[maskName].data as Uint8Array)[5] = 2), /holds 2 at 5/],
      [
        "kind",
        (c) => (c.metadata.maskKinds = "{}"),
        /mask kind of transformer\.h\.0\.mlp\.c_fc\.weight is undefined/,
      ],
      ["format", (c) => (c.metadata.format = "other"), /not a twofour-checkpoint version 1 file/],
      ["step", (c) => (c.metadata.step = "-3"), /metadata step must be .*, got "-3"/],
      ["phase", (c) => (c.metadata.phase = "half"), /metadata phase must be .*, got "half"/],
    ];
    for (const [name, edit, pattern] of cases) {
      await expectCheckpointError(await write(name, edit), target, pattern, name);
    }
    const other = await makeTrainer(gptConfig("tiny", { sparse: { method: "s-ste" } }), 5, be);
    await expectCheckpointError(
      path,
      other,
      /model configuration differs at sparse\.method: "t-sr-ste" vs "s-ste"/,
      "method",
    );
    const wider = await makeTrainer(
      gptConfig("tiny", { sparse: { method: "t-sr-ste", maskRefresh: 8 } }),
      5,
      be,
    );
    await expectCheckpointError(path, wider, /differs at sparse\.maskRefresh: 40 vs 8/, "option");
    const seeded = new Trainer(
      await GPT.create(be, gptConfig("tiny", { sparse: { method: "t-sr-ste" } }), { seed: 5 }),
      { ...RUN, seed: 8 },
    );
    await expectCheckpointError(path, seeded, /run configuration differs at seed: 7 vs 8/, "seed");
    const truncated = `${dir}/truncated.safetensors`;
    await Deno.writeFile(truncated, (await Deno.readFile(path)).subarray(0, 1000));
    await expectCheckpointError(
      truncated,
      target,
      /Cannot load \S*truncated\.safetensors: header length/,
      "truncated",
    );
    const plain = `${dir}/plain.safetensors`;
    await saveSafetensors(plain, {});
    await expectCheckpointError(plain, target, /not a twofour-checkpoint/, "plain file");
    await loadCheckpoint(path, target); // the original still loads
    if (target.step !== 1) throw new Error("the valid checkpoint did not load");
  });
});

Deno.test("loadWeights: weights (and the sparse state) into a fine-tuning model", async () => {
  await withTempDir(async (dir) => {
    const be = new ReferenceBackend();
    const sparse = { method: "s-ste" } as const;
    const source = await makeTrainer(gptConfig("tiny", { sparse }), 1, be);
    await source.trainStep(batchAt(0));
    await source.trainStep(batchAt(1));
    const path = `${dir}/pretrained.safetensors`;
    await saveCheckpoint(path, source);
    const classifier = await GPT.create(be, gptConfig("tiny", { sparse, numClasses: 4 }), {
      seed: 3,
    });
    let message = "";
    try {
      await loadWeights(path, classifier);
    } catch (e) {
      if (e instanceof CheckpointError) message = e.message;
    }
    if (!/tensor classifier\.weight is missing/.test(message)) throw new Error(`got "${message}"`);
    const head = await be.read(classifier.classifier!.weight.value);
    await loadWeights(path, classifier, { allowMissing: ["classifier.weight"] });
    const src = await be.readMany(source.model.parameters().map((p) => p.value));
    const dst = await be.readMany(classifier.parameters().slice(0, src.length).map((p) => p.value));
    src.forEach((v, i) => assertEqualArrays(dst[i], v, `parameter ${i}`));
    assertEqualArrays(await be.read(classifier.classifier!.weight.value), head, "head untouched");
    const betas = source.model.sparseLayers().map((l) => l.beta);
    assertEqualArrays(classifier.sparseLayers().map((l) => l.beta), betas, "β restored");
  });
});

/** An edited checkpoint: name, method, steps run, the edit, the refusal's message. */
type Edit = [string, SparseOptions["method"], number, (c: SafetensorsContents) => void, RegExp];

/** Edited checkpoints of each method, each refused naming the field and the value. */
const EDITS: Edit[] = (() => {
  const fc = "transformer.h.0.mlp.c_fc.weight";
  const mask = (c: SafetensorsContents) => c.tensors[`sparse.mask.${fc}`].data as Uint8Array;
  const f32 = (c: SafetensorsContents, name: string) => c.tensors[name].data as Float32Array;
  const edits: Edit[] = [];
  for (const step of ["", "999", "9", "1.5", "01", "1e0", " 1", "-0", "0x1", "Infinity"]) {
    edits.push([
      `step ${JSON.stringify(step)}`,
      "s-ste",
      2,
      (c) => (c.metadata.step = step),
      new RegExp(
        `metadata step must be an integer in \\[0, 8\\], got ${
          JSON.stringify(JSON.stringify(step)).slice(1, -1).replace(/[.+*]/g, "\\$&")
        }`,
      ),
    ]);
  }
  for (const method of ["dense", "ste", "sr-ste", "t-sr-ste", "s-ste", "s-ste+fp8"] as const) {
    edits.push([
      `${method} in a dense phase`,
      method,
      2,
      (c) => (c.metadata.phase = "dense"),
      /metadata phase must be "sparse" at step 2 .*got "dense"/,
    ]);
  }
  edits.push(
    [
      "t-sr-ste+df dense before its switch",
      "t-sr-ste+df",
      5,
      (c) => (c.metadata.phase = "dense"),
      /must be "sparse" at step 5/,
    ],
    [
      "t-sr-ste+df sparse after its switch",
      "t-sr-ste+df",
      8,
      (c) => (c.metadata.phase = "sparse"),
      /must be "dense" at step 8/,
    ],
    [
      "transposable mask of all ones",
      "t-sr-ste",
      2,
      (c) => mask(c).fill(1),
      /not a transposable 2:4 mask: .* 4 ones/,
    ],
    [
      "transposable mask of all zeros",
      "t-sr-ste",
      2,
      (c) => mask(c).fill(0),
      /not a transposable 2:4 mask: .* 0 ones/,
    ],
    [
      "transposable mask, 2:4 rows only",
      "t-sr-ste",
      2,
      (c) => mask(c).forEach((_, i, m) => (m[i] = i % 4 < 2 ? 1 : 0)),
      /2 ones in its row 0 and 4 in its column 0/,
    ],
    ["transposable mask, one entry moved", "t-sr-ste", 2, (c) => {
      const m = mask(c);
      const i = m.indexOf(0);
      m[i] = 1;
    }, /not a transposable 2:4 mask/],
    [
      "hard mask of all ones (ste)",
      "ste",
      2,
      (c) => mask(c).fill(1),
      /not a hard 2:4 mask: row 0, columns 0..3 hold 4 ones, expected 2/,
    ],
    [
      "hard mask of all zeros (sr-ste)",
      "sr-ste",
      2,
      (c) => mask(c).fill(0),
      /hold 0 ones, expected 2/,
    ],
    [
      "hard mask with 3 of 4 (s-ste)",
      "s-ste",
      2,
      (c) => mask(c).set([1, 1, 1, 0]),
      /hold 3 ones, expected at most 2/,
    ],
    [
      "hard mask with 3 of 4 (dense)",
      "dense",
      2,
      (c) => mask(c).set([0, 1, 1, 1]),
      /hold 3 ones/,
    ],
    [
      "t-sr-ste mask marked hard",
      "t-sr-ste",
      2,
      (c) => (c.metadata.maskKinds = c.metadata.maskKinds.replaceAll("transposable", "hard")),
      /maskKinds\.transformer\.h\.0\.mlp\.c_fc\.weight must be "transposable" for t-sr-ste in the sparse phase, got "hard"/,
    ],
    [
      "s-ste mask marked transposable",
      "s-ste",
      2,
      (c) => (c.metadata.maskKinds = c.metadata.maskKinds.replaceAll("hard", "transposable")),
      /must be "hard" for s-ste/,
    ],
    [
      "t-sr-ste+df dense mask marked transposable",
      "t-sr-ste+df",
      8,
      (c) => (c.metadata.maskKinds = c.metadata.maskKinds.replaceAll("hard", "transposable")),
      /must be "hard" for t-sr-ste\+df in the dense phase/,
    ],
    [
      "maskKinds naming no layer",
      "ste",
      2,
      (
        c,
      ) => (c.metadata.maskKinds = c.metadata.maskKinds.replace(
        "{",
        '{"transformer.wte.weight":"hard",',
      )),
      /maskKinds names "transformer.wte.weight", which is no sparse layer/,
    ],
    ["a mask missing after a step", "ste", 2, (c) => {
      delete c.tensors[`sparse.mask.${fc}`];
    }, /sparse\.mask\.transformer\.h\.0\.mlp\.c_fc\.weight must be present at step 2/],
    [
      "AdamW v of -1",
      "s-ste",
      2,
      (c) => (f32(c, `optimizer.v.${fc}`)[3] = -1),
      /optimizer\.v\.transformer\.h\.0\.mlp\.c_fc\.weight must be finite and ≥ 0, got -1 at index 3/,
    ],
    [
      "AdamW v of NaN",
      "ste",
      2,
      (c) => (f32(c, `optimizer.v.${fc}`)[0] = NaN),
      /must be finite and ≥ 0, got NaN at index 0/,
    ],
    [
      "AdamW v of Infinity",
      "dense",
      2,
      (c) => (f32(c, "optimizer.v.transformer.wte.weight")[7] = Infinity),
      /got Infinity at index 7/,
    ],
    [
      "AdamW m of -Infinity",
      "t-sr-ste",
      2,
      (c) => (f32(c, `optimizer.m.${fc}`)[1] = -Infinity),
      /optimizer\.m\.\S+ must be finite, got -Infinity at index 1/,
    ],
    [
      "AdamW m of NaN",
      "sr-ste",
      2,
      (c) => (f32(c, "optimizer.m.transformer.wpe.weight")[2] = NaN),
      /must be finite, got NaN/,
    ],
    [
      "a weight of NaN",
      "s-ste+fp8",
      2,
      (c) => (f32(c, fc)[5] = NaN),
      /transformer\.h\.0\.mlp\.c_fc\.weight must be finite, got NaN at index 5/,
    ],
  );
  return edits;
})();

Deno.test(`checkpoint: ${EDITS.length} edited checkpoints are refused naming the field and the value`, async () => {
  await withTempDir(async (dir) => {
    const saved = new Map<string, { contents: SafetensorsContents; sparse: SparseOptions }>();
    for (const [label, method, steps, edit, pattern] of EDITS) {
      const key = `${method}-${steps}`;
      if (!saved.has(key)) {
        const sparse = options(method);
        saved.set(key, { contents: (await savedRun(dir, sparse, steps)).contents, sparse });
      }
      const { contents, sparse } = saved.get(key)!;
      const copy = decodeSafetensors(encodeSafetensors(contents.tensors, contents.metadata));
      edit(copy);
      const path = `${dir}/edited.safetensors`;
      await Deno.writeFile(path, encodeSafetensors(copy.tensors, copy.metadata));
      const target = await makeTrainer(gptConfig("tiny", { sparse }), 5, new ReferenceBackend());
      await expectCheckpointError(path, target, pattern, label);
    }
    console.log(`checkpoint: ${EDITS.length} edited checkpoints refused`);
  });
});

Deno.test("checkpoint: saving or loading while a step is in flight (a missing await) throws", async () => {
  await withTempDir(async (dir) => {
    const be = new ReferenceBackend();
    const trainer = await makeTrainer(gptConfig("tiny", { sparse: options("s-ste") }), 1, be);
    await trainer.trainStep(batchAt(0));
    const path = `${dir}/guard.safetensors`;
    const step = trainer.trainStep(batchAt(1)); // no await
    let error: unknown;
    try {
      await saveCheckpoint(path, trainer);
    } catch (e) {
      error = e;
    }
    await step;
    if (
      !(error instanceof Error) ||
      !/Cannot save a checkpoint: step 1 is still running/.test(error.message)
    ) {
      throw new Error(`saving inside a step: expected the guard's error, got ${error}`);
    }
    await saveCheckpoint(path, trainer);
    const save = saveCheckpoint(path, trainer); // no await
    const messages: string[] = [];
    for (const run of [() => trainer.trainStep(batchAt(2)), () => loadCheckpoint(path, trainer)]) {
      try {
        await run();
      } catch (e) {
        messages.push((e as Error).message);
      }
    }
    await save;
    const expected = [
      "Cannot take a training step: the call to save a checkpoint is still running (a missing await?)",
      "Cannot load a checkpoint: the call to save a checkpoint is still running (a missing await?)",
    ];
    if (JSON.stringify(messages) !== JSON.stringify(expected)) {
      throw new Error(`a step or load inside a save: got ${JSON.stringify(messages)}`);
    }
    const loaded = await loadCheckpoint(path, trainer);
    if (loaded.step !== 2 || trainer.step !== 2) throw new Error(`saved step ${loaded.step}`);
  });
});

Deno.test("checkpoint: a run log saved with the state comes back from the same file", async () => {
  await withTempDir(async (dir) => {
    const be = new ReferenceBackend();
    const trainer = await makeTrainer(gptConfig("tiny", { sparse: options("ste") }), 1, be);
    await trainer.trainStep(batchAt(0));
    const path = `${dir}/log.safetensors`;
    const runLog = { steps: [{ step: 0, loss: 3.5 }], val: [[1, 3.25]] };
    await saveCheckpoint(path, trainer);
    const target = await makeTrainer(gptConfig("tiny", { sparse: options("ste") }), 2, be);
    if ((await loadCheckpoint(path, target)).runLog !== undefined) {
      throw new Error("a log appeared");
    }
    await saveCheckpoint(path, trainer, { runLog });
    const loaded = await loadCheckpoint(path, target);
    if (JSON.stringify(loaded.runLog) !== JSON.stringify(runLog)) {
      throw new Error(`the log came back as ${JSON.stringify(loaded.runLog)}`);
    }
  });
});
