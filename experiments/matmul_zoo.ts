/**
 * Matmul kernel zoo (llm.c `dev/cuda` style): every dense matmul variant of `gpu/kernels/matmul.ts`
 * side by side, validated against a float64 CPU product and timed on the products of one training
 * step of the `cpu` preset of `experiments/gpt2.ts` (GPT-2, 4 layers, width 128, 4 heads, context
 * 64, batch 8, vocabulary 4096; T = 512 tokens), every transpose combination the step uses:
 * forward `X·Wᵀ`, `∇X = ∇Z·W`, `∇W = ∇Zᵀ·X`, the batched attention products and the tied head
 * `[512,128]·[4096,128]ᵀ` with its backward.
 *
 * Figure: GFLOP/s (and milliseconds) per variant and shape, FLOPs of one product `2·B·M·N·K`, time
 * from the shared batch timer (`_bench.ts`, SPEC §11.6); and the matmul milliseconds of one
 * training step per variant, `Σ count·time` over the shapes. The winner on the software adapter (Mesa
 * llvmpipe) is the texture-fed register kernel, which `GpuBackend` picks on fallback adapters.
 *
 * What to expect on llvmpipe (2 cores): the storage-fed kernels reach 0.5–2 GFLOP/s (a storage
 * `vec4` load costs as much as ~100 `vec4` FMAs there); the texture-fed ones 10–20 GFLOP/s on the
 * large products. On a discrete GPU the tiled kernel wins and the register kernels are slow.
 *
 * Usage:
 *   deno run --allow-read --allow-write --allow-env experiments/matmul_zoo.ts
 *   deno run --allow-read --allow-write --allow-env experiments/matmul_zoo.ts \
 *     --variants=register-storage-16,texture-32x16-w16 --shapes=head --out=results/matmul_zoo.md
 *
 * @module
 */

import { describeAdapter, GpuRuntime } from "../gpu/runtime.ts";
import {
  encodeMatmul,
  type EncodeMatmulOptions,
  type MatmulDims,
  TILING_64,
} from "../gpu/kernels/matmul.ts";
import { assertInt, assertNumber, assertOneOf, parseConfig, parseList, runCli } from "./_config.ts";
import { seededFloats } from "../reference/testing.ts";
import {
  BatchTimer,
  gflopPerS,
  linearProducts,
  measureLatency,
  type TimerConfig,
} from "./_bench.ts";

// ---- configuration ------------------------------------------------------------------------------
const DEFAULTS = {
  /** Comma-separated variant names (empty: all; see VARIANTS). */
  variants: "",
  /** Comma-separated substrings of shape names to run (empty: all). */
  shapes: "",
  /** Target milliseconds of one timed batch of calls (the call count adapts to it). */
  batchMs: 300,
  /** Timed batches per variant and shape (the median is reported). */
  batches: 3,
  /** Skip the float64 check (for quick timing runs). */
  skipCheck: false,
  /** Also write the Markdown table here (empty: print only). */
  out: "",
};
type Config = typeof DEFAULTS;

/** One matmul of the training step and how many times a step runs it. */
interface Shape extends MatmulDims {
  name: string;
  count: number;
}

// T = 512 tokens, d = 128, 4d = 512, V = 4096, B·h = 32 heads of 64×32.
const T = 512, D = 128, V = 4096, L = 4;
const linearShapes = (name: string, out: number, inp: number): Shape[] =>
  linearProducts(name, T, out, inp, L);
const SHAPES: Shape[] = [
  { name: "tiny (fixed cost)", batch: 1, m: 4, n: 4, k: 4, transA: false, transB: true, count: 0 },
  ...linearShapes("qkv", 3 * D, D),
  ...linearShapes("attn-proj", D, D),
  ...linearShapes("fc", 4 * D, D),
  ...linearShapes("mlp-proj", D, 4 * D),
  { name: "head X·Eᵀ", batch: 1, m: T, n: V, k: D, transA: false, transB: true, count: 1 },
  { name: "head ∇Z·E", batch: 1, m: T, n: D, k: V, transA: false, transB: false, count: 1 },
  { name: "head ∇Zᵀ·X", batch: 1, m: V, n: D, k: T, transA: true, transB: false, count: 1 },
  { name: "attn Q·Kᵀ", batch: 32, m: 64, n: 64, k: 32, transA: false, transB: true, count: L },
  { name: "attn P·V", batch: 32, m: 64, n: 32, k: 64, transA: false, transB: false, count: L },
  { name: "attn ∇S·K", batch: 32, m: 64, n: 32, k: 64, transA: false, transB: false, count: L },
  { name: "attn ∇Sᵀ·Q", batch: 32, m: 64, n: 32, k: 64, transA: true, transB: false, count: L },
  { name: "attn ∇O·Vᵀ", batch: 32, m: 64, n: 64, k: 32, transA: false, transB: true, count: L },
  { name: "attn Pᵀ·∇O", batch: 32, m: 64, n: 32, k: 64, transA: true, transB: false, count: L },
];

/** The variants: kernel version, tiling or blocking, operand source. */
const VARIANTS: Record<string, EncodeMatmulOptions> = {
  "naive": { variant: "naive" },
  "tiled-64": { variant: "tiled", tiling: TILING_64 },
  "texture-auto": { variant: "register", operands: "texture" },
  "register-storage-16": {
    variant: "register",
    operands: "storage",
    blocking: { threadM: 16, threadN: 16, workgroup: 64 },
  },
};
for (
  const [tm, tn, wg] of [
    [8, 8, 16],
    [16, 16, 16],
    [16, 16, 64],
    [32, 16, 16],
    [16, 32, 16],
    [32, 32, 16],
    [32, 32, 8],
    [32, 16, 8],
  ]
) {
  VARIANTS[`texture-${tm}x${tn}-w${wg}`] = {
    variant: "register",
    operands: "texture",
    blocking: { threadM: tm, threadN: tn, workgroup: wg },
  };
}

const random = (n: number, seed: number) => seededFloats(n, seed);

/** Float64 product and the rounding scale `Σ_k |a||b|` per output, of stored operands. */
function reference(s: Shape, a: Float32Array, b: Float32Array): [Float64Array, Float64Array] {
  const { batch, m, n, k, transA, transB } = s;
  const c = new Float64Array(batch * m * n), scale = new Float64Array(batch * m * n);
  for (let q = 0; q < batch; q++) {
    const ao = q * m * k, bo = q * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0, abs = 0;
        for (let kk = 0; kk < k; kk++) {
          const x = a[ao + (transA ? kk * m + i : i * k + kk)];
          const y = b[bo + (transB ? j * k + kk : kk * n + j)];
          acc += x * y;
          abs += Math.abs(x * y);
        }
        c[q * m * n + i * n + j] = acc;
        scale[q * m * n + i * n + j] = abs;
      }
    }
  }
  return [c, scale];
}

/** The shared batch timer's settings for this script: batches of about `batchMs`. */
function timerConfig(config: Config): TimerConfig {
  return {
    batches: config.batches,
    warmup: 1,
    latencyFactor: 0,
    minBatchMs: config.batchMs,
    maxReps: 200,
    chunkBytes: 256 * 1024 ** 2,
    rotateBytes: 0,
    maxSets: 2,
  };
}

async function main(args: string[]): Promise<void> {
  const config = parseConfig(DEFAULTS, args);
  assertNumber("batchMs", config.batchMs, 0, { exclusiveMin: true });
  assertInt("batches", config.batches, 1);
  const names = config.variants
    ? parseList(
      "variants",
      config.variants,
      (v) => assertOneOf("variants", v, Object.keys(VARIANTS)),
    )
    : Object.keys(VARIANTS);
  const filters = config.shapes ? parseList("shapes", config.shapes, (f) => f) : [];
  const shapes = SHAPES.filter((s) =>
    filters.length === 0 || filters.some((f) => s.name.includes(f))
  );
  const rt = await GpuRuntime.create();
  console.log(`WebGPU adapter: ${describeAdapter(rt.adapter)} (fallback: ${rt.isFallbackAdapter})`);
  const latency = await measureLatency(rt);
  const timer = new BatchTimer(
    rt,
    timerConfig(config),
    latency.trivialDispatch,
    rt.features.timestamp,
  );
  console.log(
    `GFLOP/s = 2·B·M·N·K / time; ${timer.timer}, median of ${config.batches} timed batches\n`,
  );
  const header = `| shape | B×M×N×K | per step | ${names.join(" | ")} |`;
  const lines = [header, `|---|---|---:|${names.map(() => "---:").join("|")}|`];
  console.log(lines.join("\n"));
  const stepMs = names.map(() => 0);
  const failures: string[] = [];
  for (const [si, s] of shapes.entries()) {
    const aData = random(s.batch * s.m * s.k, 1 + si),
      bData = random(s.batch * s.k * s.n, 101 + si);
    const a = rt.upload(aData), b = rt.upload(bData);
    const [ref, scale] = config.skipCheck ? [null, null] : reference(s, aData, bData);
    const cells: string[] = [];
    for (const [vi, name] of names.entries()) {
      const options = VARIANTS[name];
      const { ms } = await timer.measure(() => [encodeMatmul(rt, a, b, s, options)]);
      const flop = 2 * s.batch * s.m * s.n * s.k;
      cells.push(`${gflopPerS(flop, ms).toFixed(2)} (${ms.toFixed(2)} ms)`);
      stepMs[vi] += s.count * ms;
      if (ref && scale) {
        const out = encodeMatmul(rt, a, b, s, options);
        const got = new Float32Array(await rt.read(out, 4 * ref.length));
        rt.free(out);
        for (let i = 0; i < ref.length; i++) {
          // float32 accumulation in ascending k: |error| ≤ K·2^-24·Σ|a||b| (plus the last rounding)
          const bound = (s.k + 1) * 2 ** -24 * scale[i] + 1e-30;
          if (!(Math.abs(got[i] - ref[i]) <= bound)) {
            failures.push(`${name} ${s.name}: c[${i}] = ${got[i]}, expected ${ref[i]} ± ${bound}`);
            cells[cells.length - 1] += " ✗";
            break;
          }
        }
      }
    }
    rt.free(a);
    rt.free(b);
    const line = `| ${s.name} | ${s.batch}×${s.m}×${s.n}×${s.k} | ${s.count} | ${
      cells.join(" | ")
    } |`;
    lines.push(line);
    console.log(line);
  }
  const total = `| **matmul ms per step** | | | ${stepMs.map((ms) => ms.toFixed(0)).join(" | ")} |`;
  lines.push(total);
  console.log(total);
  if (config.out) {
    await Deno.writeTextFile(
      config.out,
      `Matmul kernel zoo, GFLOP/s (WebGPU adapter: ${describeAdapter(rt.adapter)})\n\n${
        lines.join("\n")
      }\n`,
    );
    console.log(`\nwrote ${config.out}`);
  }
  timer.destroy();
  rt.destroy();
  if (failures.length > 0) {
    throw new Error(`${failures.length} products out of bounds:\n${failures.join("\n")}`);
  }
}

if (import.meta.main) await runCli(main);
