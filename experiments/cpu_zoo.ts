/**
 * CPU GEMM zoo (llm.c `dev/cuda` style): the candidate engines for the CPU backend side by side
 * on the products of one training step of `experiments/gpt2.ts`'s `cpu` preset (2 layers × 128,
 * 4 heads, context 64, batch 16 → T = 1,024 tokens, FFN 512, vocabulary 4,096, tied head): the
 * forward `X·Wᵀ` (NT), `∇X = ∇Z·W` (NN), `∇W = ∇Zᵀ·X` (TN), the head and its backward, and the
 * batched attention products (64 heads of 64×64, head size 32). Every result is checked against a
 * float64 product (`assertProductClose`: `(K + 1)·2⁻²⁴·Σ|a||b|`, valid for any summation order).
 *
 * Engines: `openblas` (`cblas_sgemm` through Deno's FFI, as `CpuBackend` loads it, 2 threads),
 * `openblas-1t` (the same on one thread), `onednn` (`dnnl_sgemm`, batches through its matmul
 * primitive, Debian's `libdnnl2`, 2 OpenMP threads, as `core/cpu/onednn.ts` loads it), `pytorch`
 * (`torch.matmul` in a child process, 2 threads, with `--python=`: the ceiling of `pip install
 * torch`, skipped when absent), `wasm-1t` / `wasm-2t` (a hand-written WebAssembly SIMD 4×8 kernel,
 * relaxed-SIMD FMA, on 1 thread or 2 over a shared memory; packing the operands is timed, copying
 * the product out is not), `webgpu` (`GpuBackend`'s matmul on the software adapter, timed to
 * completion), `reference` (the pure-TypeScript loops). The ceiling: the machine's FMA peak from
 * `cpu_fma_peak.c` (gcc -O3 -march=native, 2 threads), the highest of a probe before the rounds and
 * one after each, or where gcc is missing OpenBLAS's best large square product as a lower bound
 * (labelled so).
 *
 * Figures: GFLOP/s = 2·B·M·N·K / time per shape; per engine the GEMM milliseconds of one training
 * step `Σ count·time` and its rate `Σ count·flops / Σ count·time`, as % of the peak. Timing: rounds
 * of (every shape × every engine) interleaved (ABAB), medians over rounds, because the machine may
 * be shared. Each round also runs, in a child process, OpenBLAS with its own core detection (no
 * `OPENBLAS_CORETYPE`), which on CPUs newer than the library falls back to SSE3 kernels.
 *
 * Over 600 lines: one benchmark, llm.c's `dev/cuda` style — eight engines side by side, each a
 * small adapter (prepare, time, result), with the peak probe and the table.
 *
 * Usage (writes `results/cpu/zoo.md` and `zoo.json` with `--out=results/cpu`):
 *   deno run --allow-read --allow-write --allow-env --allow-ffi --allow-run --allow-net=registry.npmjs.org \
 *     experiments/cpu_zoo.ts --out=results/cpu
 *
 * @module
 */

import { batchedSgemm, type Blas, loadBlas } from "../core/cpu/blas.ts";
import { ReferenceBackend } from "../core/reference_backend.ts";
import { describeAdapter, GpuRuntime } from "../gpu/runtime.ts";
import { encodeMatmul } from "../gpu/kernels/matmul.ts";
import { packA, packB, WasmGemm } from "./_wasm_gemm.ts";
import { parseConfig, runCli } from "./_config.ts";
import { assertProductClose, seededFloats } from "../reference/testing.ts";
import {
  type JsonLineChild,
  linearProducts,
  median,
  spawnJsonLines,
  type StepProduct,
} from "./_bench.ts";
import { loadOnednn } from "../core/cpu/onednn.ts";

// ---- configuration ------------------------------------------------------------------------------
const DEFAULTS = {
  /** Comma-separated engines (empty: all). */
  engines: "",
  /** Interleaved rounds (medians over them). */
  rounds: 5,
  /** Target milliseconds of one timed batch of calls. */
  batchMs: 60,
  /** Output folder for zoo.md / zoo.json (empty: print only). */
  out: "",
  /** The Python with torch installed, for the `pytorch` engine (a throw-away venv). */
  python: ".venv-torch/bin/python",
  /** Internal: run one measurement in a child process and print JSON. */
  child: "",
};
type Config = typeof DEFAULTS;

/** One product of the training step and how many times a step runs it. */
type Shape = StepProduct;

// T = 1024 tokens, d = 128, FFN 512, V = 4096, L = 2, B·h = 64 heads of 64×32.
const T = 1024, D = 128, FFN = 512, V = 4096, L = 2, HEADS = 64, CTX = 64, HD = 32;
const linear = (name: string, out: number, inp: number): Shape[] =>
  linearProducts(name, T, out, inp, L);
const attention = (name: string, m: number, n: number, k: number, tA: boolean, tB: boolean) => ({
  name,
  batch: HEADS,
  m,
  n,
  k,
  transA: tA,
  transB: tB,
  count: L,
});
const SHAPES: Shape[] = [
  ...linear("qkv", 3 * D, D),
  ...linear("attn-proj", D, D),
  ...linear("fc", FFN, D),
  ...linear("mlp-proj", D, FFN),
  { name: "head X·Eᵀ", batch: 1, m: T, n: V, k: D, transA: false, transB: true, count: 1 },
  { name: "head ∇Z·E", batch: 1, m: T, n: D, k: V, transA: false, transB: false, count: 1 },
  { name: "head ∇Zᵀ·X", batch: 1, m: V, n: D, k: T, transA: true, transB: false, count: 1 },
  attention("attn Q·Kᵀ", CTX, CTX, HD, false, true),
  attention("attn P·V", CTX, HD, CTX, false, false),
  attention("attn ∇O·Vᵀ", CTX, CTX, HD, false, true),
  attention("attn Pᵀ·∇O", CTX, HD, CTX, true, false),
  attention("attn ∇S·K", CTX, HD, CTX, false, false),
  attention("attn ∇Sᵀ·Q", CTX, HD, CTX, true, false),
];
const flops = (s: Shape) => 2 * s.batch * s.m * s.n * s.k;

/**
 * One engine prepared for one shape: `run` computes `C`, `result` returns it; `time`, where
 * present, times `calls` back-to-back products itself (an engine in another process).
 */
interface Prepared {
  run(): void | Promise<void>;
  time?(calls: number): Promise<number>;
  result(): Float32Array | Promise<Float32Array>;
  dispose(): void;
}
interface Engine {
  name: string;
  /** The library and version, where the engine is not the backend's OpenBLAS. */
  version?: string;
  prepare(s: Shape, a: Float32Array, b: Float32Array): Prepared;
  close(): void | Promise<void>;
}

/**
 * OpenBLAS on `threads` threads. The thread count is the library's global state, so each call
 * sets it (`openblas_set_num_threads`, a no-op when unchanged) and two engines can interleave.
 */
function blasEngine(threads: number): Engine | string {
  const blas = loadBlas({ threads });
  if (!("sgemm" in blas)) return blas.message;
  const lib = Deno.dlopen(blas.path, {
    openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  });
  const setThreads = lib.symbols.openblas_set_num_threads ?? (() => {});
  const name = threads === 2 ? "openblas" : `openblas-${threads}t`;
  return gemmEngine(name, blas, () => setThreads(threads), () => lib.close());
}

/** oneDNN (`dnnl_sgemm`, batches through the matmul primitive) on 2 threads, as `CpuBackend`. */
function onednnEngine(): Engine | string {
  const dnnl = loadOnednn({ threads: 2 });
  if (!("sgemm" in dnnl)) return dnnl.message;
  return { ...gemmEngine("onednn", dnnl), version: dnnl.version };
}

/** A {@linkcode Blas} as an engine: `before` runs ahead of each product, `close` at the end. */
function gemmEngine(name: string, blas: Blas, before = () => {}, close = () => {}): Engine {
  return {
    name,
    prepare(s, a, b) {
      const c = new Float32Array(s.batch * s.m * s.n);
      return {
        run() {
          before();
          shapeSgemm(blas, s, a, b, c);
        },
        result: () => c,
        dispose() {},
      };
    },
    close() {
      close();
      blas.close();
    },
  };
}

/**
 * PyTorch (`torch.matmul`, 2 threads) in a child process (`torch_gemm.py`) run by `python`: the
 * ceiling a user gets from `pip install torch`, not a dependency. Operands travel through files.
 */
async function pytorchEngine(python: string): Promise<Engine | string> {
  const script = new URL("./torch_gemm.py", import.meta.url).pathname;
  let child: JsonLineChild, info: Record<string, unknown>;
  try {
    child = spawnJsonLines(python, [script, "--threads", "2"]);
    info = await child.next();
  } catch (e) {
    return (e as Error).message.split("\n")[0];
  }
  const ask = async (request: Record<string, unknown>) => {
    await child.send(JSON.stringify(request) + "\n");
    return await child.next();
  };
  const dir = await Deno.makeTempDir();
  let ids = 0;
  return {
    name: "pytorch",
    version: `PyTorch ${info.torch}, ${info.threads} threads`,
    prepare(s, a, b) {
      const id = ids++, file = (x: string) => `${dir}/${id}.${x}`;
      Deno.writeFileSync(file("a"), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      Deno.writeFileSync(file("b"), new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      const loaded = ask({ op: "load", id, a: file("a"), b: file("b"), ...s });
      return {
        async run() {
          await loaded;
          await ask({ op: "time", id, calls: 1 });
        },
        async time(calls) {
          await loaded;
          return (await ask({ op: "time", id, calls })).ms as number;
        },
        async result() {
          await ask({ op: "result", id, path: file("c") });
          const bytes = Deno.readFileSync(file("c"));
          return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        },
        dispose() {},
      };
    },
    async close() {
      await child.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** `C[q] = op(A[q])·op(B[q])` for every matrix `q` of a shape, as `CpuBackend.matmul` runs it. */
function shapeSgemm(blas: Blas, s: Shape, a: Float32Array, b: Float32Array, c: Float32Array) {
  batchedSgemm(blas, s.transA, s.transB, s.batch, s.m, s.n, s.k, a, b, c);
}

async function wasmEngine(threads: number): Promise<Engine> {
  // The largest shape: the head's 1024×4096 product and operands, packed.
  const bytes = 4 * (T * V + T * D + V * D) + (1 << 20);
  const g = await WasmGemm.create(bytes, threads);
  // Tier the kernel up (V8 compiles it baseline first, optimised after enough calls).
  const f = new Float32Array(g.memory.buffer);
  for (let i = 0; i < 2000; i++) g.run(0, 4 * 4096, 4 * 8192, 64, 64, 32);
  return {
    name: `wasm-${threads}t`,
    prepare(s, a, b) {
      const aOff = 0, bOff = s.m * s.k, cOff = bOff + s.k * s.n;
      return {
        run() {
          for (let q = 0; q < s.batch; q++) {
            packA(f, aOff, a.subarray(q * s.m * s.k), s.m, s.k, s.transA);
            packB(f, bOff, b.subarray(q * s.k * s.n), s.k, s.n, s.transB);
            g.run(4 * aOff, 4 * bOff, 4 * (cOff + q * s.m * s.n), s.m, s.n, s.k);
          }
        },
        result: () => f.slice(cOff, cOff + s.batch * s.m * s.n),
        dispose() {},
      };
    },
    close: () => g.close(),
  };
}

async function webgpuEngine(): Promise<Engine | string> {
  let rt: GpuRuntime;
  try {
    rt = await GpuRuntime.create();
  } catch (e) {
    return (e as Error).message;
  }
  // GpuBackend's choice on a fallback adapter: the texture-fed register kernel.
  const options = rt.isFallbackAdapter
    ? { variant: "register" as const, operands: "texture" as const }
    : { variant: "tiled" as const };
  return {
    name: "webgpu",
    prepare(s, a, b) {
      const ab = rt.upload(a), bb = rt.upload(b);
      let out: GPUBuffer | null = null;
      return {
        async run() {
          if (out) rt.free(out);
          out = encodeMatmul(rt, ab, bb, s, options);
          await rt.sync();
        },
        async result() {
          return new Float32Array(await rt.read(out!, 4 * s.batch * s.m * s.n));
        },
        dispose() {
          if (out) rt.free(out);
          rt.free(ab);
          rt.free(bb);
        },
      };
    },
    close: () => rt.destroy(),
  };
}

function referenceEngine(): Engine {
  const be = new ReferenceBackend();
  return {
    name: "reference",
    prepare(s, a, b) {
      const lead = s.batch === 1 ? [] : [s.batch];
      let c: ArrayLike<number> = [];
      return {
        run() {
          const x = be.tensor(a, [...lead, ...(s.transA ? [s.k, s.m] : [s.m, s.k])]);
          const y = be.tensor(b, [...lead, ...(s.transB ? [s.n, s.k] : [s.k, s.n])]);
          c = be.readF64(be.matmul(x, y, s));
          be.release();
        },
        result: () => Float32Array.from(c),
        dispose() {},
      };
    },
    close() {},
  };
}

/**
 * Checks a sample of outputs (every row of a few columns of a few matrices, cheap at the head's
 * size) against the float64 product (`assertProductClose`'s float32 accumulation bound).
 *
 * @returns The first output out of bounds, or null.
 */
function check(s: Shape, a: Float32Array, b: Float32Array, got: Float32Array): string | null {
  const { batch, m, n, k, transA, transB } = s;
  const columnStep = Math.max(1, n >> 3);
  try {
    for (let q = 0; q < batch; q += Math.max(1, batch >> 2)) {
      assertProductClose(
        `c[${q}]`,
        got.subarray(q * m * n, (q + 1) * m * n),
        { rows: m, cols: n, k },
        (i, kk) => a[q * m * k + (transA ? kk * m + i : i * k + kk)],
        (j, kk) => b[q * k * n + (transB ? j * k + kk : kk * n + j)],
        { compared: (_i, j) => j % columnStep === 0 },
      );
    }
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

async function timeBatch(p: Prepared, calls: number): Promise<number> {
  // A pause first: OpenBLAS's threads spin for a while after a product, stealing the cores from
  // the next engine's.
  await new Promise((resolve) => setTimeout(resolve, 50));
  if (p.time) return await p.time(calls);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await p.run();
  return (performance.now() - t0) / calls;
}

/** One run of the FMA probe (each the best of 3 inside), GFLOP/s for each width. */
type PeakRun = { avx2_gflops: number; avx512_gflops: number };

/**
 * The machine's FMA peak probe: `cpu_fma_peak.c` built once, `measure` runs it (the zoo runs it
 * before the rounds and after each, and takes the highest as the ceiling: a conservative ratio on
 * a machine whose clock varies). Where gcc is missing: OpenBLAS's best square product, a lower
 * bound, labelled so.
 */
async function peakProbe(): Promise<{
  measure(): Promise<void>;
  peak(): { gflops: number; how: string };
  dispose(): Promise<void>;
}> {
  const dir = await Deno.makeTempDir();
  const dispose = () => Deno.remove(dir, { recursive: true });
  const src = new URL("./cpu_fma_peak.c", import.meta.url).pathname;
  const build = await new Deno.Command("gcc", {
    args: ["-O3", "-march=native", "-pthread", src, "-o", `${dir}/fma_peak`],
  }).output().catch((e) => e as Error);
  if (build instanceof Error || !build.success) {
    const why = build instanceof Error ? build.message : new TextDecoder().decode(build.stderr);
    const blas = loadBlas({ threads: 2 });
    if (!("sgemm" in blas)) throw new Error(`no gcc (${why}) and no BLAS: no peak to report`);
    const n = 1536, x = seededFloats(n * n, 1), c = new Float32Array(n * n);
    let best = 0;
    return {
      measure: () => {
        for (let r = 0; r < 5; r++) {
          const t0 = performance.now();
          blas.sgemm(false, false, n, n, n, 1, x, x, 0, c);
          best = Math.max(best, (2 * n ** 3) / (performance.now() - t0) / 1e6);
        }
        return Promise.resolve();
      },
      peak: () => ({
        gflops: best,
        how: `LOWER BOUND: OpenBLAS ${n}³ sgemm, best of 5 per probe (no gcc: ${why.trim()})`,
      }),
      dispose,
    };
  }
  const runs: PeakRun[] = [];
  const range = (xs: number[]) =>
    `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)} GFLOP/s`;
  return {
    measure: async () => {
      const run = await new Deno.Command(`${dir}/fma_peak`, { args: ["2"] }).output();
      runs.push(JSON.parse(new TextDecoder().decode(run.stdout)));
    },
    peak: () => ({
      gflops: Math.max(...runs.map((r) => Math.max(r.avx2_gflops, r.avx512_gflops))),
      how: `cpu_fma_peak.c (gcc -O3 -march=native), 2 threads, the highest of ${runs.length} ` +
        `probes (one before the rounds and one after each, each the best of 3): AVX-512 ` +
        `${range(runs.map((r) => r.avx512_gflops))}, AVX2 ${range(runs.map((r) => r.avx2_gflops))}`,
    }),
    dispose,
  };
}

/** The child process: OpenBLAS with the library's own core detection, one pass over the shapes. */
function childNativeOpenblas(): void {
  Deno.env.delete("OPENBLAS_CORETYPE");
  const blas = loadBlas({ threads: 2, coreType: false });
  if (!("sgemm" in blas)) throw new Error(blas.message);
  const ms: number[] = [];
  for (const [si, s] of SHAPES.entries()) {
    const a = seededFloats(s.batch * s.m * s.k, 1 + si),
      b = seededFloats(s.batch * s.k * s.n, 101 + si);
    const c = new Float32Array(s.batch * s.m * s.n);
    const run = () => shapeSgemm(blas, s, a, b, c);
    run();
    const times: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      run();
      times.push(performance.now() - t0);
    }
    ms.push(median(times));
  }
  console.log(JSON.stringify({ version: blas.version, ms }));
}

async function main(args: string[]): Promise<void> {
  const config: Config = parseConfig(DEFAULTS, args);
  if (config.child === "openblas-native") return childNativeOpenblas();
  const started = new Date();
  const wanted = config.engines ? config.engines.split(",").map((e) => e.trim()) : null;
  const want = (name: string) => wanted === null || wanted.includes(name);
  const engines: Engine[] = [];
  const missing: string[] = [];
  // PyTorch's process starts first, before oneDNN's loader sets the OpenMP variables here.
  if (want("pytorch")) {
    const e = await pytorchEngine(config.python);
    if (typeof e === "string") missing.push(`pytorch: ${e}`);
    else engines.push(e);
  }
  for (const [name, threads] of [["openblas", 2], ["openblas-1t", 1]] as const) {
    if (!want(name)) continue;
    const e = blasEngine(threads);
    if (typeof e === "string") missing.push(`${name}: ${e}`);
    else engines.push(e);
  }
  if (want("onednn")) {
    const e = onednnEngine();
    if (typeof e === "string") missing.push(`onednn: ${e}`);
    else engines.push(e);
  }
  if (want("wasm-1t")) engines.push(await wasmEngine(1));
  if (want("wasm-2t")) engines.push(await wasmEngine(2));
  let adapter = "";
  if (want("webgpu")) {
    const e = await webgpuEngine();
    if (typeof e === "string") missing.push(`webgpu: ${e}`);
    else {
      engines.push(e);
      adapter = describeAdapter((await GpuRuntime.create()).adapter);
    }
  }
  if (want("reference")) engines.push(referenceEngine());
  const probe = await peakProbe();
  await probe.measure();
  console.log(`FMA peak before the rounds: ${probe.peak().how}`);
  for (const m of missing) console.log(`not measured: ${m}`);

  // Inputs, correctness and call counts (one untimed call per engine and shape first).
  const inputs = SHAPES.map((s, si) => ({
    a: seededFloats(s.batch * s.m * s.k, 1 + si),
    b: seededFloats(s.batch * s.k * s.n, 101 + si),
  }));
  const prepared = SHAPES.map((s, si) =>
    engines.map((e) => e.prepare(s, inputs[si].a, inputs[si].b))
  );
  const calls: number[][] = [];
  const failures: string[] = [];
  for (const [si, s] of SHAPES.entries()) {
    calls.push([]);
    for (const [ei, e] of engines.entries()) {
      const p = prepared[si][ei];
      const once = await timeBatch(p, 1);
      const bad = check(s, inputs[si].a, inputs[si].b, await p.result());
      if (bad) failures.push(`${e.name} ${s.name}: ${bad}`);
      calls[si].push(Math.max(1, Math.min(200, Math.round(config.batchMs / Math.max(once, 0.01)))));
    }
  }
  const times: number[][][] = SHAPES.map(() => engines.map(() => []));
  let nativeRuns: { version: string; ms: number[] }[] | null = [];
  for (let r = 0; r < config.rounds; r++) {
    for (const [si] of SHAPES.entries()) {
      for (const [ei, e] of engines.entries()) {
        // The reference is timed in the first round only (seconds per step at these sizes).
        if (e.name === "reference" && r > 0) continue;
        times[si][ei].push(await timeBatch(prepared[si][ei], calls[si][ei]));
      }
    }
    // The library's own core detection, in a child process (OPENBLAS_CORETYPE is read once per
    // process), one pass over the shapes per round.
    if (want("openblas") && nativeRuns !== null) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--allow-ffi",
          new URL(import.meta.url).pathname,
          "--child=openblas-native",
        ],
      }).output();
      if (out.success) {
        nativeRuns.push(JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!));
      } else {
        missing.push(`openblas-native: ${new TextDecoder().decode(out.stderr).slice(0, 200)}`);
        nativeRuns = null;
      }
    }
    await probe.measure();
    console.log(`round ${r + 1}/${config.rounds} done`);
  }
  const peak = probe.peak();
  await probe.dispose();
  console.log(`FMA peak: ${peak.gflops.toFixed(0)} GFLOP/s (${peak.how})`);
  for (const row of prepared) for (const p of row) p.dispose();
  for (const e of engines) await e.close();
  const native = nativeRuns?.length
    ? {
      version: nativeRuns[0].version,
      ms: SHAPES.map((_, si) => median(nativeRuns!.map((n) => n.ms[si]))),
    }
    : null;

  const ms = SHAPES.map((_, si) => engines.map((_, ei) => median(times[si][ei])));
  const names = [
    ...engines.map((e) => e.name),
    ...(native ? ["openblas, library's own core detection"] : []),
  ];
  const cell = (s: Shape, t: number) => `${(flops(s) / t / 1e6).toFixed(1)} (${t.toFixed(2)} ms)`;
  const lines = [
    `| shape | B×M×N×K | per step | ${names.join(" | ")} |`,
    `|---|---|---:|${names.map(() => "---:").join("|")}|`,
  ];
  for (const [si, s] of SHAPES.entries()) {
    const cells = ms[si].map((t) => cell(s, t));
    if (native) cells.push(cell(s, native.ms[si]));
    lines.push(
      `| ${s.name} | ${s.batch}×${s.m}×${s.n}×${s.k} | ${s.count} | ${cells.join(" | ")} |`,
    );
  }
  const stepFlops = SHAPES.reduce((sum, s) => sum + s.count * flops(s), 0);
  const stepMs = names.map((_, ei) =>
    SHAPES.reduce(
      (sum, s, si) => sum + s.count * (ei < engines.length ? ms[si][ei] : native!.ms[si]),
      0,
    )
  );
  lines.push(
    `| **GEMM ms per step** | | | ${stepMs.map((t) => `**${t.toFixed(1)}**`).join(" | ")} |`,
  );
  lines.push(
    `| **GFLOP/s over the step** (% of FMA peak) | | | ${
      stepMs.map((t) => {
        const g = stepFlops / t / 1e6;
        return `**${g.toFixed(1)}** (${((100 * g) / peak.gflops).toFixed(1)}%)`;
      }).join(" | ")
    } |`,
  );
  const table = lines.join("\n");
  console.log(table);
  const blasVersion = native?.version ?? "";
  const md =
    `CPU GEMM zoo at the \`cpu\` preset's products (${(stepFlops / 1e9).toFixed(2)} GFLOP ` +
    `per training step), GFLOP/s (ms per call), median of ${config.rounds} interleaved rounds ` +
    `(reference: 1 round; last column: a child process per round, 3 calls, median).\n\n` +
    `Measured ${started.toISOString().slice(0, 16).replace("T", " ")} UTC on ` +
    `${navigator.hardwareConcurrency} CPU threads (${Deno.build.os}/${Deno.build.arch}), a machine ` +
    `SHARED with other jobs (absolute figures vary run to run; compare within a column's run). ` +
    `FMA peak ${peak.gflops.toFixed(0)} GFLOP/s: ${peak.how}. WebGPU adapter: ${
      adapter || "none"
    }. ` +
    `openblas: ${engines.find((e) => e.name === "openblas") ? loadedVersion() : "missing"}` +
    `${blasVersion ? `; own detection: ${blasVersion}` : ""}` +
    engines.filter((e) => e.version).map((e) => `; ${e.name}: ${e.version}`).join("") +
    `.\n\n${table}\n` +
    (missing.length ? `\nNot measured: ${missing.join("; ")}\n` : "") +
    (failures.length ? `\nOUT OF BOUNDS: ${failures.join("; ")}\n` : "");
  if (config.out) {
    await Deno.mkdir(config.out, { recursive: true });
    await Deno.writeTextFile(`${config.out}/zoo.md`, md);
    await Deno.writeTextFile(
      `${config.out}/zoo.json`,
      JSON.stringify(
        {
          date: started.toISOString(),
          peak,
          adapter,
          stepGflop: stepFlops / 1e9,
          engines: names,
          shapes: SHAPES.map((s, si) => ({
            ...s,
            ms: [...ms[si], ...(native ? [native.ms[si]] : [])],
          })),
          stepMs,
          failures,
          missing,
        },
        null,
        1,
      ) + "\n",
    );
    console.log(`wrote ${config.out}/zoo.md, zoo.json`);
  }
  if (failures.length) {
    throw new Error(`${failures.length} products out of bounds:\n${failures.join("\n")}`);
  }
}

/** The BLAS description as the backend reports it. */
function loadedVersion(): string {
  const blas = loadBlas({ threads: 2 });
  return "sgemm" in blas ? blas.version : blas.message;
}

if (import.meta.main) await runCli(main);
