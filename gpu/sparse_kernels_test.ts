/**
 * Products promised 2:4 on the GPU backend (SPEC §8.6): the compressed path for either 2:4
 * operand and every layout against the reference backend's dense product, within the float32
 * bound of `kernels/sparse_matmul.ts` (`K/2` products of terms in [−1, 1] per output, the same
 * `tolMatmul` as the kernel's test); the `"auto"` choice (dense on first use, timed at `tune`,
 * then the faster path, recorded), its checks, and its round trip through a checkpoint; a
 * `SparseLinear` step and evaluation on the compressed path (MVUE on the weight too). Fails
 * (never skips) without a WebGPU adapter.
 *
 * @module
 */

import { assertClose, assertThrows, seededFloats } from "../reference/testing.ts";
import { prune24 } from "../reference/prune.ts";
import type { Backend } from "../core/backend.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import { GPT, gptConfig } from "../core/gpt2.ts";
import { Trainer } from "../core/trainer.ts";
import { loadCheckpoint, saveCheckpoint } from "../core/checkpoint.ts";
import { makeBatch, testRun } from "../core/train_testing.ts";
import { SparseLinear, type SparseOptions } from "../core/sparse.ts";
import { Tape, Variable } from "../core/autograd.ts";
import { createGpuBackend, GpuBackend } from "./backend.ts";
import { gpuFixture, mat, random, uniformSigned } from "./testing.ts";

const gpu = gpuFixture("sparse kernels", () => createGpuBackend(), (be) => `"${be.device}"`);
const tolMatmul = (k: number) => ({ atol: k * 2 ** -20, rtol: 1e-5 });

/** The row-major transpose of `[rows, cols]` data. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) t[c * rows + r] = data[r * cols + c];
  }
  return t;
}

/** A product's operands as stored, with `op(A)` (`"a"`) or `op(B)ᵀ` (`"b"`) 2:4 along K. */
function operands(
  seed: number,
  [m, n, k]: readonly number[],
  sparse: "a" | "b",
  transA: boolean,
  transB: boolean,
): { a: Float32Array; b: Float32Array; shapeA: number[]; shapeB: number[] } {
  const rand = random(seed);
  const dense = (rows: number) => uniformSigned(rand, rows * k);
  const pruned = (rows: number) => prune24(mat(rows, k, dense(rows))).pruned.data;
  const opA = sparse === "a" ? pruned(m) : dense(m); // [m, k]
  const opBt = sparse === "b" ? pruned(n) : dense(n); // [n, k]
  return {
    a: transA ? transposed(opA, m, k) : opA,
    b: transB ? opBt : transposed(opBt, n, k),
    shapeA: transA ? [k, m] : [m, k],
    shapeB: transB ? [n, k] : [k, n],
  };
}

const SHAPES: readonly [number, number, number][] = [
  [1, 1, 4],
  [5, 3, 12],
  [70, 65, 36],
  [130, 67, 260],
];

Deno.test("a product promised 2:4 runs compressed and equals the reference's dense product", async () => {
  const be = new GpuBackend((await gpu()).runtime, { sparseKernels: "sparse" });
  const ref = new ReferenceBackend();
  for (const dims of SHAPES) {
    for (const sparse of ["a", "b"] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const o = operands(dims[2], dims, sparse, transA, transB);
          const run = async (x: Backend) => {
            const c = x.matmul(x.tensor(o.a, o.shapeA), x.tensor(o.b, o.shapeB), {
              transA,
              transB,
              sparse24: sparse,
            });
            const v = await x.read(c);
            x.release();
            return v;
          };
          const label = `${sparse} ${dims} transA ${transA} transB ${transB}`;
          assertClose(await run(be), await run(ref), tolMatmul(dims[2] / 2), label);
        }
      }
    }
  }
  const keys = Object.keys(be.sparseKernels.choices());
  if (keys.length !== SHAPES.length * 8 || !keys.includes("b 70x36x65 NT")) {
    throw new Error(`unexpected recorded products ${keys}`);
  }
});

Deno.test('"auto" runs a new shape dense, times it at tune, then keeps the recorded path', async () => {
  const rt = (await gpu()).runtime;
  const auto = new GpuBackend(rt, { sparseKernels: "auto" });
  const forced = {
    dense: new GpuBackend(rt, { sparseKernels: "dense" }),
    sparse: new GpuBackend(rt, { sparseKernels: "sparse" }),
  };
  const dims = [96, 80, 128], o = operands(4, dims, "b", false, true);
  const product = async (x: GpuBackend) => {
    const c = x.matmul(x.tensor(o.a, o.shapeA), x.tensor(o.b, o.shapeB), {
      transB: true,
      sparse24: "b",
    });
    const v = await x.read(c);
    x.release();
    return v;
  };
  const key = "b 96x128x80 NT";
  const [dense, sparse] = [await product(forced.dense), await product(forced.sparse)];
  assertClose(await product(auto), dense, { atol: 0, rtol: 0 }, "auto before tune (dense)");
  if (Object.keys(auto.sparseKernels.choices()).length !== 0) {
    throw new Error("auto decided before timing");
  }
  await auto.sparseKernels.tune();
  const choice = auto.sparseKernels.choices()[key];
  console.log(`auto on ${auto.device}: ${key} → ${JSON.stringify(choice)}`);
  if (!(choice?.denseMs! > 0 && choice?.sparseMs! > 0)) {
    throw new Error(`no timings recorded: ${JSON.stringify(choice)}`);
  }
  if (choice.path !== (choice.sparseMs! < choice.denseMs! ? "sparse" : "dense")) {
    throw new Error(`auto kept the slower path: ${JSON.stringify(choice)}`);
  }
  const want = choice.path === "sparse" ? sparse : dense;
  assertClose(await product(auto), want, { atol: 0, rtol: 0 }, `auto after tune (${choice.path})`);
  const other = choice.path === "sparse" ? "dense" : "sparse";
  auto.sparseKernels.restore({ [key]: { path: other } });
  assertClose(await product(auto), other === "sparse" ? sparse : dense, {
    atol: 0,
    rtol: 0,
  }, `auto after restore (${other})`);
  assertThrows(
    () => auto.sparseKernels.restore({ [key]: { path: "fast" as "dense" } }),
    TypeError,
    "fast",
  );
  // A forced backend resuming an "auto" run keeps its path and reports it.
  forced.dense.sparseKernels.restore({ [key]: { path: "sparse" } });
  assertClose(await product(forced.dense), dense, { atol: 0, rtol: 0 }, "forced dense, restored");
  if (forced.dense.sparseKernels.choices()[key]?.path !== "dense") {
    throw new Error(`forced dense reports ${JSON.stringify(forced.dense.sparseKernels.choices())}`);
  }
  assertThrows(
    () => new GpuBackend(rt, { sparseKernels: "fast" as "auto" }),
    TypeError,
    "sparseKernels",
  );
});

Deno.test("matmul checks the sparse24 promise's shape on every backend", async () => {
  for (const be of [await gpu(), new ReferenceBackend()] as Backend[]) {
    const x = be.full([2, 6]), w = be.full([3, 6]), batch = be.full([1, 2, 8]);
    assertThrows(() => be.matmul(x, w, { transB: true, sparse24: "b" }), RangeError, "K", "6");
    assertThrows(() => be.matmul(batch, batch, { transB: true, sparse24: "a" }), RangeError, "2-D");
    assertThrows(
      () => be.matmul(x, w, { transB: true, sparse24: "c" as "a" }),
      TypeError,
      "sparse24",
    );
    be.release();
  }
});

Deno.test('"auto" decides before the second step or at a save, and a checkpoint restores it', async () => {
  const rt = (await gpu()).runtime;
  const config = gptConfig("tiny", { sparse: { method: "t-sr-ste" } });
  const run = testRun({ totalSteps: 4, warmupSteps: 1, seed: 5 });
  const make = async (seed: number) => {
    const be = new GpuBackend(rt, { sparseKernels: "auto" });
    return new Trainer(await GPT.create(be, config, { seed }), run);
  };
  const decided = (t: Trainer) => t.model.backend.sparseKernels!.choices();
  // The tiny model's sparse layers: forward, ∇X (transposable) and ∇W (MVUE) per layer shape.
  const expected = 6;
  const trained = await make(3);
  await trained.trainStep(makeBatch(2, 8, 32, 1));
  if (Object.keys(decided(trained)).length !== 0) throw new Error("decided during the first step");
  await trained.trainStep(makeBatch(2, 8, 32, 2));
  if (Object.keys(decided(trained)).length !== expected) {
    throw new Error(`the trainer's tune decided ${JSON.stringify(decided(trained))}`);
  }
  console.log(`auto choices of the tiny t-sr-ste model: ${JSON.stringify(decided(trained))}`);

  const saved = await make(3);
  await saved.trainStep(makeBatch(2, 8, 32, 1)); // shapes seen, not yet timed
  const dir = await Deno.makeTempDir();
  try {
    await saveCheckpoint(`${dir}/c.safetensors`, saved);
    const choices = decided(saved);
    if (Object.keys(choices).length !== expected) {
      throw new Error(`the save's tune decided ${JSON.stringify(choices)}`);
    }
    const resumed = await make(99);
    await loadCheckpoint(`${dir}/c.safetensors`, resumed);
    if (JSON.stringify(decided(resumed)) !== JSON.stringify(choices)) {
      throw new Error(
        `restored ${JSON.stringify(decided(resumed))}, saved ${JSON.stringify(choices)}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * One layer step (forward, backward from `dOut`) and an evaluation forward of a `SparseLinear` on
 * `be`: `[Z, ∇X, ∇W, Z_eval]`.
 */
async function layerStep(be: Backend, sparse: SparseOptions): Promise<Float32Array[]> {
  const [tokens, inF, outF] = [16, 32, 24];
  const layer = new SparseLinear(be, "fc", seededFloats(outF * inF, 1, (u) => u - 0.5), {
    inFeatures: inF,
    outFeatures: outF,
  }, { sparse, layerIndex: 0 });
  await layer.initialize();
  const x = new Variable(be.tensor(seededFloats(tokens * inF, 2, (u) => u - 0.5), [tokens, inF]), {
    requiresGrad: true,
  });
  const dOut = be.tensor(seededFloats(tokens * outF, 3, (u) => u - 0.5), [tokens, outF]);
  await layer.beginStep({ step: 0, seed: 7, phase: "sparse" });
  const tape = new Tape(be);
  const z = layer.forward(tape, x);
  tape.backward(tape.record(be.full([1], 0), [z], () => tape.accumulate(z, dOut)));
  layer.endStep();
  const zEval = layer.forward(new Tape(be, { recording: false }), x);
  const values = await be.readMany([z.value, x.grad!, layer.weight.grad!, zEval.value]);
  be.release();
  be.dispose(layer.weight.value);
  return values;
}

Deno.test("SparseLinear on the compressed path equals the reference: MVUE on the weight, evaluation", async () => {
  const be = new GpuBackend((await gpu()).runtime, { sparseKernels: "sparse" });
  const cases: SparseOptions[] = [
    { method: "s-ste", mvueOnWeight: true },
    { method: "t-sr-ste", mvueOnWeight: true },
    { method: "sr-ste" },
  ];
  for (const sparse of cases) {
    const [got, want] = [
      await layerStep(be, sparse),
      await layerStep(new ReferenceBackend(), sparse),
    ];
    ["Z", "∇X", "∇W", "Z (evaluation)"].forEach((name, i) => {
      const scale = want[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // SPEC §10.5's gradient tolerance: float32 sums of at most 32 terms, relative to the scale.
      assertClose(
        got[i],
        want[i],
        { atol: 5e-5 * scale, rtol: 0 },
        `${JSON.stringify(sparse)} ${name}`,
      );
    });
  }
  const ran = Object.keys(be.sparseKernels.choices());
  for (const key of ["b 16x32x24 NT", "b 16x24x32 NN", "a 24x16x32 NN"]) {
    if (!ran.includes(key)) throw new Error(`${key} did not run on the compressed path: ${ran}`);
  }
});
