/**
 * WebGPU under hostile input and loose code: a seeded random-shape fuzz of the cheap kernels
 * against their `reference/` oracles (thousands of shapes, exact comparisons, invalid shapes must
 * fail with the reference's error), the trainer's guard against saving inside an unawaited step
 * on the GPU backend, bit-for-bit resume from a checkpoint on the GPU, and the adapter record (the wgpu backend is chosen deterministically and
 * named in `backend.device`, which every run header, summary and table prints).
 *
 * With no WebGPU adapter every test fails with the `WebGpuUnavailableError` message (no skip).
 */

import type { Matrix } from "../reference/matrix.ts";
import { assertEqualArrays, seededRandom } from "../reference/testing.ts";
import { GPT, gptConfig } from "../core/gpt2.ts";
import { Trainer } from "../core/trainer.ts";
import { loadCheckpoint, saveCheckpoint } from "../core/checkpoint.ts";
import type { SparseOptions } from "../core/sparse.ts";
import { makeBatch, trainerSnapshot } from "../core/train_testing.ts";
import { createGpuBackend, GpuBackend, GpuRuntime } from "../gpu/mod.ts";
import { compress24, decompress24 } from "../reference/compress.ts";
import { flipCount } from "../reference/flip_rate.ts";
import { prune24, pruneNM } from "../reference/prune.ts";
import { uniforms } from "../reference/rng.ts";
import { softThreshold24 } from "../reference/soft_threshold.ts";
import { transposableMask24 } from "../reference/transposable.ts";
import { assertEqualOrFlushed } from "../gpu/float32_rules.ts";
import { assertSameError, gaussian, mixed, parityKernels, pick, ties } from "../gpu/testing.ts";

/** Gaussian values, small-integer ties, or half of them from the palette of zeros, subnormals,
 * 1e30 and ±Inf (the parity tests' generators). */
function values(rand: () => number, n: number): Float32Array {
  return pick(rand, [gaussian, ties, (r: () => number, k: number) => mixed(r, k, true)])(rand, n);
}

// A `rows × cols` matrix of fuzz values (sizes drawn before values: the seeded stream is unchanged).
function randomMatrix(rand: () => number, rows: number, cols: number): Matrix {
  return { rows, cols, data: values(rand, rows * cols) };
}

const int = (rand: () => number, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

const FUZZ_CASES = 2000;
const FUZZ_SEED = 20261206;

Deno.test(`gpu fuzz: ${FUZZ_CASES} seeded random shapes of the cheap kernels equal the reference`, async () => {
  const g = await parityKernels();
  const rand = seededRandom(FUZZ_SEED);
  const counts: Record<string, number> = {};
  const t0 = performance.now();
  for (let c = 0; c < FUZZ_CASES; c++) {
    const kernel = Math.floor(rand() * 8);
    const label = `case ${c} (seed ${FUZZ_SEED})`;
    let name: string;
    if (kernel === 0) {
      name = "prune24";
      const w = randomMatrix(rand, int(rand, 1, 40), 4 * int(rand, 1, 40));
      const [want, got] = [prune24(w), await g.prune24(w)];
      assertEqualArrays(got.mask, want.mask, `${label} prune24 mask [${w.rows}, ${w.cols}]`);
      assertEqualArrays(got.pruned.data, want.pruned.data, `${label} prune24 values`);
    } else if (kernel === 1) {
      name = "pruneNM";
      const m = int(rand, 1, 16), n = int(rand, 1, m);
      const w = randomMatrix(rand, int(rand, 1, 24), m * int(rand, 1, 24));
      const [want, got] = [pruneNM(w, { n, m }), await g.pruneNM(w, { n, m })];
      assertEqualArrays(
        got.mask,
        want.mask,
        `${label} pruneNM ${n}:${m} mask [${w.rows}, ${w.cols}]`,
      );
      assertEqualArrays(got.pruned.data, want.pruned.data, `${label} pruneNM values`);
    } else if (kernel === 2) {
      name = "transposableMask24";
      const w = randomMatrix(rand, 4 * int(rand, 1, 12), 4 * int(rand, 1, 12));
      const [want, got] = [transposableMask24(w), await g.transposableMask24(w)];
      assertEqualArrays(got.mask, want.mask, `${label} transposable mask [${w.rows}, ${w.cols}]`);
      assertEqualArrays(got.pruned.data, want.pruned.data, `${label} transposable values`);
    } else if (kernel === 3) {
      name = "compress24/decompress24";
      const w = randomMatrix(rand, int(rand, 1, 40), 4 * int(rand, 1, 30));
      const pruned = prune24(w).pruned;
      const [want, got] = [compress24(pruned), await g.compress24(pruned)];
      assertEqualArrays(got.meta, want.meta, `${label} compress24 meta [${w.rows}, ${w.cols}]`);
      assertEqualArrays(got.values.data, want.values.data, `${label} compress24 values`);
      assertEqualArrays(
        (await g.decompress24(want)).data,
        decompress24(want).data,
        `${label} decompress24`,
      );
    } else if (kernel === 4) {
      name = "softThreshold24";
      const w = randomMatrix(rand, int(rand, 1, 40), 4 * int(rand, 1, 40));
      const [want, got] = [softThreshold24(w), await g.softThreshold24(w)];
      assertEqualArrays(got.mask, want.mask, `${label} soft threshold mask [${w.rows}, ${w.cols}]`);
      assertEqualOrFlushed(got.pruned.data, want.pruned.data, `${label} soft threshold values`);
    } else if (kernel === 5) {
      name = "flipCount";
      const n = int(rand, 0, 5000);
      const a = Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0));
      const b = Uint8Array.from(a, (x) => (rand() < 0.1 ? 1 - x : x));
      const [want, got] = [flipCount(a, b), await g.flipCount(a, b)];
      if (want !== got) throw new Error(`${label} flipCount(${n}): GPU ${got}, reference ${want}`);
    } else if (kernel === 6) {
      name = "uniforms";
      const seed = int(rand, 0, 2 ** 40),
        stream = int(rand, 0, 2 ** 32 - 1),
        n = int(rand, 0, 3000);
      assertEqualArrays(
        await g.uniforms(seed, stream, n),
        uniforms(seed, stream, n),
        `${label} uniforms`,
      );
    } else {
      name = "invalid shapes";
      const rows = int(rand, 1, 9), cols = 4 * int(rand, 1, 9) + int(rand, 1, 3);
      const bad: Matrix[] = [
        { rows, cols, data: values(rand, rows * cols) }, // a row length not a multiple of 4
        { rows: 2 ** 52, cols: 0, data: new Float32Array() },
        { rows: 0, cols: 2 ** 40, data: new Float32Array() },
        { rows: 3, cols: 4, data: new Float32Array(int(rand, 0, 11)) }, // data of the wrong length
      ];
      const w = bad[Math.floor(rand() * bad.length)];
      await assertSameError(
        `${label} prune24 [${w.rows}, ${w.cols}]`,
        () => prune24(w),
        () => g.prune24(w),
      );
      await assertSameError(
        `${label} transposable [${w.rows}, ${w.cols}]`,
        () => transposableMask24(w),
        () => g.transposableMask24(w),
      );
      await assertSameError(
        `${label} soft threshold [${w.rows}, ${w.cols}]`,
        () => softThreshold24(w),
        () => g.softThreshold24(w),
      );
    }
    counts[name] = (counts[name] ?? 0) + 1;
  }
  console.log(
    `gpu fuzz: ${FUZZ_CASES} cases (seed ${FUZZ_SEED}) in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s: ${JSON.stringify(counts)}`,
  );
});

Deno.test("gpu: saving a checkpoint while a step is in flight (a missing await) throws", async () => {
  await parityKernels(); // fails loudly without an adapter
  const be = await createGpuBackend();
  const dir = await Deno.makeTempDir();
  try {
    const model = await GPT.create(be, gptConfig("tiny", { sparse: { method: "s-ste" } }), {
      seed: 1,
    });
    const trainer = new Trainer(model, {
      totalSteps: 4,
      peakLr: 1e-2,
      warmupSteps: 1,
      minLr: 1e-3,
      seed: 2,
    });
    const batch = {
      tokens: new Int32Array(8).fill(3),
      targets: new Int32Array(8).fill(4),
      batchSize: 1,
    };
    await trainer.trainStep(batch);
    const step = trainer.trainStep(batch); // no await
    let error: unknown;
    try {
      await saveCheckpoint(`${dir}/c.safetensors`, trainer);
    } catch (e) {
      error = e;
    }
    await step;
    if (
      !(error instanceof Error) ||
      !error.message.startsWith("Cannot save a checkpoint: step 1 is still running")
    ) {
      throw new Error(`expected the in-flight guard, got ${error}`);
    }
    await saveCheckpoint(`${dir}/c.safetensors`, trainer); // after the await it saves step 2
  } finally {
    be.destroy();
    await Deno.remove(dir, { recursive: true });
  }
});

// The 2:4 kernel paths are pinned ("dense", then "sparse" for the methods with 2:4 products): under
// "auto" a backend's first step runs dense and later steps take the timed choice, so two runs on
// one backend start from different chooser states; the choice itself travels with the checkpoint
// (gpu/sparse_kernels_test.ts).
for (const mode of ["dense", "sparse"] as const) {
  Deno.test(`gpu: save → load → continue equals an uninterrupted run bit for bit (${mode} kernels)`, async () => {
    await parityKernels(); // fails loudly without an adapter
    const runtime = await GpuRuntime.create();
    const be = new GpuBackend(runtime, { sparseKernels: mode });
    const dir = await Deno.makeTempDir();
    const run = { totalSteps: 6, peakLr: 1e-2, warmupSteps: 1, minLr: 1e-3, seed: 7 };
    const batchAt = (s: number) => makeBatch(2, 4, 32, s);
    try {
      // Dense tracks its 2:4 mask's flips too; t-sr-ste+df refreshes its mask at 0 and 3 and
      // switches to dense at 5 (after the resume at 4).
      const methods: SparseOptions[] = [
        ...(mode === "dense" ? [{ method: "dense" } as const] : []),
        { method: "s-ste" },
        { method: "t-sr-ste+df", maskRefresh: 3, denseFraction: 1 / 6 },
      ];
      for (const sparse of methods) {
        const trainer = async (seed: number) =>
          new Trainer(await GPT.create(be, gptConfig("tiny", { sparse }), { seed }), run);
        const straight = await trainer(1), first = await trainer(1);
        const reports = [];
        for (let s = 0; s < 6; s++) {
          reports.push(JSON.stringify(await straight.trainStep(batchAt(s))));
        }
        for (let s = 0; s < 4; s++) await first.trainStep(batchAt(s));
        const path = `${dir}/${sparse.method}.safetensors`;
        await saveCheckpoint(path, first);
        const resumed = await trainer(99); // other initial weights
        await loadCheckpoint(path, resumed);
        for (let s = 4; s < 6; s++) {
          const r = JSON.stringify(await resumed.trainStep(batchAt(s)));
          if (r !== reports[s]) {
            throw new Error(`${sparse.method}: step ${s} ${r} vs ${reports[s]}`);
          }
        }
        const [a, b] = [await trainerSnapshot(straight), await trainerSnapshot(resumed)];
        a.forEach((v, i) => assertEqualArrays(b[i], v, `${sparse.method}: state ${i}`));
        be.release();
      }
    } finally {
      be.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** Runs `experiments/gpu_info.ts` in a subprocess with `env` and returns its output and status. */
async function gpuInfo(env: Record<string, string>, unset: string[] = []) {
  const childEnv = { ...Deno.env.toObject(), ...env };
  for (const key of unset) delete childEnv[key];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../experiments/gpu_info.ts", import.meta.url).pathname],
    env: childEnv,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("gpu adapter record: the wgpu backend is chosen deterministically and recorded", async () => {
  const record = (await parityKernels()).runtime.adapter;
  console.log(`gpu adapter record: ${JSON.stringify(record)}`);
  const be = await createGpuBackend();
  try {
    if (!/ via [A-Za-z0-9 ]+ \(vendor /.test(be.device)) {
      throw new Error(`backend.device does not name the wgpu backend: "${be.device}"`);
    }
  } finally {
    be.destroy();
  }
  const runtimeDir = await Deno.makeTempDir(); // GL/EGL probing wants one
  try {
    const xdg = { XDG_RUNTIME_DIR: runtimeDir };
    // Unset: Vulkan on Linux, never a silent switch to GL when no Vulkan driver is found.
    if (Deno.build.os === "linux") {
      const vulkan = await gpuInfo(xdg, ["DENO_WEBGPU_BACKEND"]);
      if (!/adapter: .* via Vulkan \(/.test(vulkan.text)) {
        throw new Error(`default backend: expected Vulkan, got:\n${vulkan.text}`);
      }
      const none = await gpuInfo({ ...xdg, VK_DRIVER_FILES: "/nonexistent/icd.json" }, [
        "DENO_WEBGPU_BACKEND",
        "VK_ICD_FILENAMES",
      ]);
      if (
        none.code !== 1 || !/no WebGPU adapter was found for the Vulkan backend/.test(none.text)
      ) {
        throw new Error(
          `no Vulkan driver: expected a clear refusal, got (${none.code}):\n${none.text}`,
        );
      }
    }
    // Asked for explicitly, GL is used and recorded as GL (or refused naming it).
    const gl = await gpuInfo({ ...xdg, DENO_WEBGPU_BACKEND: "gl" });
    if (
      !/adapter: .* via OpenGL ES \(/.test(gl.text) && !/for the OpenGL ES backend/.test(gl.text)
    ) {
      throw new Error(`DENO_WEBGPU_BACKEND=gl: expected OpenGL ES, got:\n${gl.text}`);
    }
  } finally {
    await Deno.remove(runtimeDir, { recursive: true });
  }
});
