/**
 * GEMM zoo for issue 15 (llm.c `dev/cuda` style): every dense and 2:4 matmul variant at the
 * GPT-2 FFN shapes (8,192 tokens), each checked on 64 sampled outputs against float64 and timed
 * against the backend's current tiled kernel in the same run. Also profiles one GPT-2 training
 * step: dispatches, GPU time per kernel family (one timestamped pass per dispatch), wall time, and
 * wall time when the runtime submits every `flushEvery` dispatches (GPU starts while the host
 * records).
 *
 * Timing: the benchmark harness's batch timer (`_bench.ts`: GPU timestamps where the device has
 * them, else wall clock minus the round-trip latency), `≥ batchMs` of work per batch, median of
 * `batches`. FLOPs `2·M·N·K` (dense-equivalent for 2:4: the sparse kernel does half of them).
 *
 * Usage: deno run -A experiments/zoo/gemm_speed.ts [--parts=dense,sparse,step] [--out=FILE.md]
 *
 * @module
 */

import { describeAdapter, GpuRuntime, type KernelSpec } from "../../gpu/runtime.ts";
import {
  fillsTiles,
  type MatmulDims,
  matmulTiledSpec,
  TILING_128,
} from "../../gpu/kernels/matmul.ts";
import {
  dispatchMatmulWide,
  matmulWideSpec,
  WIDE_128,
  WIDE_64,
  WIDE_64X128,
  wideParams,
  widePlan,
  type WideTiling,
  wideTilingName,
} from "../../gpu/kernels/matmul_wide.ts";
import {
  dispatchSparseSwitch,
  matmulSparseSwitchSpec,
  SWITCH_TILINGS,
  switchTilingFits,
  switchTilingName,
} from "../../gpu/kernels/matmul_sparse_switch.ts";
import { seededFloats } from "../../reference/testing.ts";
import { cliConfig } from "../lm.ts";
import type { GPTPreset } from "../../core/gpt2.ts";
import type { SparseMethod } from "../../core/sparse.ts";
import { kernelTimer, sampleCheck, switchWeights, uploadSeeded } from "../speed_bench.ts";

const DEFAULTS = {
  parts: "dense,sparse,step",
  batchMs: 100,
  batches: 3,
  tokens: 8192,
  /** Step profile: model preset, batch, sequence, methods. */
  model: "gpt2-124m",
  batch: 8,
  seq: 1024,
  methods: "dense,s-ste",
  flushEvery: 32,
  /** Substring filter on dense shape and sparse product names (empty: all). */
  shapes: "",
  /** Also time every tiling of WIDE (not only the wired plans). */
  wide: true,
  out: "",
};
const config = cliConfig(DEFAULTS);
const rt = await GpuRuntime.create();
const lines: string[] = [];
const say = (s: string) => {
  console.log(s);
  lines.push(s);
};
say(`# GEMM zoo and step profile (issue 15)\n`);
say(`- adapter: ${describeAdapter(rt.adapter)}; date ${new Date().toISOString()}`);
say(`- command: deno run -A experiments/zoo/gemm_speed.ts ${Deno.args.join(" ")}`);

const { latency, time: timeIt, timer } = await kernelTimer(rt, config);
const syncMs = latency.trivialDispatch;
say(`- timer: ${timer.timer}; round-trip latency ${syncMs.toFixed(2)} ms\n`);
const tflops = (flop: number, ms: number) => (flop / ms / 1e9).toFixed(1);

// ---- dense ----------------------------------------------------------------------------------------
interface Shape extends MatmulDims {
  name: string;
}
const T = config.tokens;
const SHAPES: Shape[] = [];
for (const d of [768]) {
  const h = 4 * d;
  SHAPES.push(
    { name: `fc fwd X·Wᵀ d${d}`, batch: 1, m: T, n: h, k: d, transA: false, transB: true },
    { name: `fc ∇X=∇Z·W d${d}`, batch: 1, m: T, n: d, k: h, transA: false, transB: false },
    { name: `fc ∇W=∇Zᵀ·X d${d}`, batch: 1, m: h, n: d, k: T, transA: true, transB: false },
    { name: `proj fwd d${d}`, batch: 1, m: T, n: d, k: h, transA: false, transB: true },
    { name: `proj ∇X d${d}`, batch: 1, m: T, n: h, k: d, transA: false, transB: false },
    { name: `proj ∇W d${d}`, batch: 1, m: d, n: h, k: T, transA: true, transB: false },
  );
}
SHAPES.push(
  { name: "attn QKᵀ 96×1024²×64", batch: 96, m: 1024, n: 1024, k: 64, transA: false, transB: true },
  {
    name: "attn P·V 96×1024×64×1024",
    batch: 96,
    m: 1024,
    n: 64,
    k: 1024,
    transA: false,
    transB: false,
  },
  { name: "square 4096³", batch: 1, m: 4096, n: 4096, k: 4096, transA: false, transB: false },
  {
    name: "head fwd 8192×768→50257",
    batch: 1,
    m: T,
    n: 50257,
    k: 768,
    transA: false,
    transB: true,
  },
  {
    name: "head ∇X 8192×50257→768",
    batch: 1,
    m: T,
    n: 768,
    k: 50257,
    transA: false,
    transB: false,
  },
  {
    name: "head ∇W 50257×768, K 8192",
    batch: 1,
    m: 50257,
    n: 768,
    k: T,
    transA: true,
    transB: false,
  },
);
/** The wide kernel's candidate tilings, the backend's among them by name. */
const WIDE: WideTiling[] = [
  { tileM: 128, tileN: 128, tileK: 8, threadM: 8, threadN: 8 },
  WIDE_128,
  { tileM: 128, tileN: 128, tileK: 8, threadM: 8, threadN: 16 },
  { tileM: 128, tileN: 128, tileK: 16, threadM: 8, threadN: 16 },
  { tileM: 128, tileN: 128, tileK: 8, threadM: 16, threadN: 8 },
  { tileM: 128, tileN: 256, tileK: 8, threadM: 8, threadN: 16 },
  { tileM: 256, tileN: 128, tileK: 8, threadM: 16, threadN: 8 },
  WIDE_64X128,
  WIDE_64,
];

/** Compiles a spec, returning the error text instead of throwing. */
async function tryCompile(spec: KernelSpec): Promise<string | null> {
  try {
    await rt.compile(spec);
    return null;
  } catch (e) {
    return (e as Error).message.slice(0, 200);
  }
}

const results: Record<string, unknown>[] = [];
if (config.parts.includes("dense")) {
  say(`## Dense GEMMs (TFLOP/s, 2·B·M·N·K / time; ratio vs tiled-128 of the same run)\n`);
  say(`| shape | variant | ms | TFLOP/s | vs tiled-128 | check |`);
  say(`|---|---|---:|---:|---:|---|`);
  for (const s of SHAPES.filter((x) => x.name.includes(config.shapes))) {
    const { batch, m, n, k, transA, transB } = s;
    const A = uploadSeeded(rt, batch * m * k, 1 + m), B = uploadSeeded(rt, batch * k * n, 2 + n);
    const [aBuf, bBuf] = [A.buffer, B.buffer];
    const aAt = (i: number, kk: number) => A.at(transA ? kk * m + i : i * k + kk);
    const bAt = (j: number, kk: number) => B.at(transB ? j * k + kk : kk * n + j);
    const flop = 2 * batch * m * n * k;
    let base = 0;
    const cBuf = rt.alloc(4 * batch * m * n); // one output for every call: no allocation per call
    const run = async (variant: string, record: () => void) => {
      rt.write(cBuf, new Float32Array(m * n).fill(NaN)); // poison batch 0
      record();
      const got = new Float32Array(await rt.read(cBuf, 4 * m * n)); // batch 0
      const check = sampleCheck(got, m, n, k, aAt, bAt);
      const ms = await timeIt(record);
      if (base === 0) base = ms;
      say(
        `| ${s.name} | ${variant} | ${ms.toFixed(4)} | ${tflops(flop, ms)} | ${
          (base / ms).toFixed(2)
        }× | ${check} |`,
      );
      results.push({ part: "dense", shape: s.name, variant, ms, tflops: flop / ms / 1e9, check });
    };
    const params = new Uint32Array([m, n, k, batch]);
    const tiled = matmulTiledSpec(transA, transB, TILING_128, fillsTiles(s, TILING_128));
    await run(
      "tiled-128 (current)",
      () =>
        rt.dispatch(
          tiled,
          [aBuf, bBuf, cBuf],
          [Math.ceil(n / 128), Math.ceil(m / 128), batch],
          params,
        ),
    );
    const wparams = wideParams(s);
    for (const t of config.wide ? WIDE : []) {
      if (m % t.tileM || n % t.tileN || k % t.tileK) continue;
      const spec = matmulWideSpec(transA, transB, t);
      const err = await tryCompile(spec);
      if (err) {
        say(`| ${s.name} | wide ${wideTilingName(t)} | — | — | — | compile: ${err} |`);
        continue;
      }
      await run(
        `wide ${wideTilingName(t)}`,
        () => rt.dispatch(spec, [aBuf, bBuf, cBuf], [n / t.tileN, m / t.tileM, batch], wparams),
      );
    }
    // The plans encodeWideMatmul follows (tiling rule, checks, split-K), and 128×128 split-K.
    const plans = [["plan (wired)", widePlan(s)], [
      "128 + split-K",
      widePlan(s, { tiling: WIDE_128 }),
    ]] as const;
    for (const [label, plan] of plans) {
      const parts = plan.splits > 1 ? rt.alloc(4 * plan.splits * batch * m * n) : undefined;
      await run(
        `${label}: ${wideTilingName(plan.tiling)}${
          plan.checked ? " checked" : ""
        } split ${plan.splits}`,
        () => dispatchMatmulWide(rt, { a: aBuf, b: bBuf, c: cBuf, parts }, s, plan),
      );
      if (parts) rt.free(parts);
    }
    rt.free(cBuf);
    rt.free(aBuf);
    rt.free(bBuf);
    await rt.sync();
  }
}

// ---- 2:4 sparse ------------------------------------------------------------------------------------
if (config.parts.includes("sparse")) {
  say(
    `\n## 2:4 GEMMs Cᵀ[j, a] = Σ_k X[a,k]·W[j,k] (dense-equivalent TFLOP/s; ratio vs tiled-128 dense of the same product)\n`,
  );
  say(`| product | variant | ms | dense-eq TFLOP/s | vs tiled-128 | check |`);
  say(`|---|---|---:|---:|---:|---|`);
  const products = [
    { name: `fc fwd ${T}×768→3072`, A: T, R: 3072, K: 768, xKMajor: false },
    { name: `proj fwd ${T}×3072→768`, A: T, R: 768, K: 3072, xKMajor: false },
    { name: `fc ∇Wᵀ (MVUE along ${T} tokens) 3072×768`, A: 768, R: 3072, K: T, xKMajor: true },
  ];
  for (const pr of products.filter((x) => x.name.includes(config.shapes))) {
    const { A, R, K, xKMajor } = pr;
    const x = seededFloats(A * K, 3 + A), { w, compressed, dense } = switchWeights(rt, R, K);
    const xAt = (a: number, kk: number) => xKMajor ? x[kk * A + a] : x[a * K + kk];
    const [xBuf, wRowBuf] = [x, w].map((v) => rt.upload(v));
    const flop = 2 * A * R * K;
    // Baseline: the dense tiled-128 kernel on the same product, C [A, R] = X·Wᵀ.
    const dims: MatmulDims = { batch: 1, m: A, n: R, k: K, transA: xKMajor, transB: true };
    const outBuf = rt.alloc(4 * R * A);
    const tiled = matmulTiledSpec(dims.transA, true, TILING_128, fillsTiles(dims, TILING_128));
    const base = await timeIt(() =>
      rt.dispatch(
        tiled,
        [xBuf, wRowBuf, outBuf],
        [R / 128, A / 128, 1],
        new Uint32Array([A, R, K, 1]),
      )
    );
    say(
      `| ${pr.name} | dense tiled-128 (C, not Cᵀ) | ${base.toFixed(4)} | ${
        tflops(flop, base)
      } | 1.00× | — |`,
    );
    results.push({ part: "sparse", product: pr.name, variant: "dense tiled-128", ms: base });
    for (const t of SWITCH_TILINGS) {
      if (!switchTilingFits(t, { A, R, K })) continue;
      for (const mode of ["switch", "dense"] as const) {
        const spec = matmulSparseSwitchSpec(t, xKMajor, mode);
        const name = `${mode === "switch" ? "2:4 switch" : "same-structure dense"} ${
          switchTilingName(t)
        }`;
        const err = await tryCompile(spec);
        if (err) {
          say(`| ${pr.name} | ${name} | — | — | — | compile: ${err} |`);
          continue;
        }
        const bufs = [xBuf, ...(mode === "switch" ? compressed : dense), outBuf];
        const record = () => dispatchSparseSwitch(rt, spec, t, bufs, { A, R, K });
        rt.write(outBuf, new Float32Array(R * A).fill(NaN));
        record();
        const got = new Float32Array(await rt.read(outBuf, 4 * R * A));
        const check = sampleCheck(got, R, A, K, (j, kk) => w[j * K + kk], xAt);
        const ms = await timeIt(record);
        say(
          `| ${pr.name} | ${name} | ${ms.toFixed(4)} | ${tflops(flop, ms)} | ${
            (base / ms).toFixed(2)
          }× | ${check} |`,
        );
        results.push({ part: "sparse", product: pr.name, variant: name, ms, check });
      }
    }
    for (const b of [xBuf, ...compressed, ...dense, wRowBuf, outBuf]) rt.free(b);
    await rt.sync();
  }
}
timer.destroy();
rt.destroy();

// ---- step profile ------------------------------------------------------------------------------------
if (config.parts.includes("step")) {
  const { GPT, gptConfig } = await import("../../core/gpt2.ts");
  const { Trainer } = await import("../../core/trainer.ts");
  const { createGpuBackend } = await import("../../gpu/backend.ts");
  say(`\n## Training step profile (${config.model}, batch ${config.batch}×${config.seq})\n`);
  for (const method of config.methods.split(",")) {
    const be = await createGpuBackend();
    const brt = be.runtime;
    const model = await GPT.create(
      be,
      gptConfig(config.model as GPTPreset, { sparse: { method: method as SparseMethod } }),
      { seed: 1 },
    );
    const trainer = new Trainer(model, {
      totalSteps: 100,
      peakLr: 1e-4,
      warmupSteps: 1,
      minLr: 1e-5,
      seed: 1,
    });
    const n = config.batch * config.seq, vocab = model.config.vocabSize;
    const batchOf = (s: number) => {
      const tokens = new Int32Array(n), targets = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        tokens[i] = (i * 7 + 13 * s + 1) % vocab;
        targets[i] = (i * 5 + 11 * s + 2) % vocab;
      }
      return { tokens, targets, batchSize: config.batch };
    };
    let step = 0;
    const wall = async (k: number) => {
      const t: number[] = [];
      for (let i = 0; i < k; i++) {
        const t0 = performance.now();
        await trainer.trainStep(batchOf(step++));
        t.push(performance.now() - t0);
      }
      await brt.sync();
      return t.sort((a, b) => a - b)[Math.floor(k / 2)];
    };
    await wall(2); // compile, fill the pool
    const d0 = brt.dispatchCount;
    const plain = await wall(3);
    const perStep = (brt.dispatchCount - d0) / 3;
    // Submit every flushEvery dispatches: the GPU starts while the host records.
    const dispatch = brt.dispatch.bind(brt);
    let since = 0;
    brt.dispatch = (...args: Parameters<typeof dispatch>) => {
      dispatch(...args);
      if (++since >= config.flushEvery) {
        since = 0;
        brt.flush();
      }
    };
    const flushed = await wall(3);
    brt.dispatch = dispatch;
    // Host recording time of forward + backward alone (no submit): time to the first read-back.
    const readMany = brt.readMany.bind(brt);
    let recordMs = 0, t0 = 0;
    brt.readMany = (r) => {
      if (recordMs === 0) recordMs = performance.now() - t0;
      return readMany(r);
    };
    t0 = performance.now();
    await trainer.trainStep(batchOf(step++));
    brt.readMany = readMany;
    // GPU time per kernel family: one timestamped pass per dispatch.
    const qs = brt.device.createQuerySet({ type: "timestamp", count: 4096 });
    const keys: string[] = [];
    brt.dispatch = (...args: Parameters<typeof dispatch>) => {
      if (keys.length < 2048) {
        brt.beginTimestampedPass({
          querySet: qs,
          beginningOfPassWriteIndex: 2 * keys.length,
          endOfPassWriteIndex: 2 * keys.length + 1,
        });
        keys.push(
          args[0].key + ((args[2][2] ?? 1) > 1 ? " (grid z > 1: attention batch or split-K)" : ""),
        );
      }
      dispatch(...args);
    };
    await brt.sync();
    const p0 = performance.now();
    await trainer.trainStep(batchOf(step++));
    await brt.sync();
    const profiledWall = performance.now() - p0;
    brt.dispatch = dispatch;
    const resolved = brt.device.createBuffer({
      size: 8 * 4096,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const enc = brt.device.createCommandEncoder();
    enc.resolveQuerySet(qs, 0, 2 * keys.length, resolved, 0);
    brt.device.queue.submit([enc.finish()]);
    const stamps = new BigUint64Array(await brt.read(resolved, 16 * keys.length));
    const byFamily = new Map<string, { n: number; ms: number }>();
    let gpuMs = 0;
    keys.forEach((key, i) => {
      const ms = Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
      const att = key.endsWith(" (grid z > 1: attention batch or split-K)")
        ? " (grid z > 1: attention batch or split-K)"
        : "";
      const fam = key.replace(/-(\d+|m\d+|t\d+|w\d|s\d|k\d|g\d|c\d|aligned|serial).*$/, "") + att;
      const e = byFamily.get(fam) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += ms > 0 && ms < 1e4 ? ms : 0;
      byFamily.set(fam, e);
      gpuMs += ms > 0 && ms < 1e4 ? ms : 0;
    });
    say(`### ${method}\n`);
    say(
      `- wall ms/step (median of 3): plain ${
        plain.toFixed(1)
      }; submitting every ${config.flushEvery} dispatches ${flushed.toFixed(1)}`,
    );
    say(
      `- dispatches/step ${perStep}; host recording of forward+backward ${recordMs.toFixed(1)} ms`,
    );
    say(
      `- profiled step: Σ per-dispatch GPU time ${
        gpuMs.toFixed(1)
      } ms over ${keys.length} dispatches (wall ${
        profiledWall.toFixed(1)
      } ms with one pass per dispatch)\n`,
    );
    say(`| kernel family | dispatches | GPU ms | share |`);
    say(`|---|---:|---:|---:|`);
    for (const [fam, e] of [...byFamily].sort((a, b) => b[1].ms - a[1].ms)) {
      say(`| ${fam} | ${e.n} | ${e.ms.toFixed(2)} | ${(100 * e.ms / gpuMs).toFixed(1)}% |`);
    }
    results.push({
      part: "step",
      method,
      plain,
      flushed,
      perStep,
      recordMs,
      gpuMs,
      families: Object.fromEntries(byFamily),
    });
    for (const p of model.parameters()) be.dispose(p.value);
    be.destroy();
  }
}
if (config.out) {
  await Deno.writeTextFile(config.out, lines.join("\n") + "\n");
  await Deno.writeTextFile(config.out.replace(/\.md$/, ".json"), JSON.stringify(results, null, 1));
}
