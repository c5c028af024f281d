/**
 * GPU benchmark of the sparse kernels (P1 speed tables, P2 Table 10 kernel figures): every kernel of
 * `gpu/kernels/` at GPT-2 FFN shapes, timed with `rt.sync()` around batches of dispatches, reported
 * as median time and achieved GB/s (with the byte formula beside it) next to the device's copy
 * bandwidth measured in the same run (a buffer-to-buffer copy and a vec4 copy kernel); the 2:4
 * compressed sparse matmul as TFLOP/s (dense-equivalent `2·T·in·out` and effective `T·in·out`)
 * against the dense tiled matmul of the same run; and the transposable-mask search time.
 *
 * What to expect: the element-wise sparse kernels are memory-bound, so their GB/s should approach
 * the vec4-copy figure; the transposable search does ~90 pattern scores per 16 entries and may be
 * compute-bound; the WGSL sparse matmul is a plain tiled kernel without sparse tensor cores, so
 * its dense-equivalent rate is a ratio against the same-run dense WGSL matmul, not against vendor
 * libraries (P1/P2 report 1.3–1.6× on sparse tensor cores for whole FFN layers).
 *
 * Usage:
 *   deno task bench:gpu                          # full GPT-2 shapes (a real GPU)
 *   deno task bench:gpu --quick                  # small shapes, few repetitions (software adapter)
 *   deno task bench:gpu --quick --out=results/bench_gpu.md
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encodeCompress24, encodeDecompress24 } from "../gpu/kernels/compress.ts";
import { encodeFlipCount } from "../gpu/kernels/flip_rate.ts";
import { encodeQuantizeFp8 } from "../gpu/kernels/fp8.ts";
import {
  encodeGeglu,
  encodeGegluBackward,
  encodeSwiglu,
  encodeSwigluBackward,
} from "../gpu/kernels/gated.ts";
import { encodeMaskedDecay } from "../gpu/kernels/masked_decay.ts";
import { encodeMatmul, TILING_128, TILING_64 } from "../gpu/kernels/matmul.ts";
import { encodeMvue24 } from "../gpu/kernels/mvue.ts";
import { encodePruneNM } from "../gpu/kernels/prune.ts";
import { encodeSoftThreshold24, encodeSsteSums } from "../gpu/kernels/soft_threshold.ts";
import { encodeSparseMatmul24 } from "../gpu/kernels/sparse_matmul.ts";
import { encodeTransposableMask24 } from "../gpu/kernels/transposable.ts";
import {
  grid,
  GRID_BUILTINS,
  LINEAR_WORKGROUP,
  packParams,
  WG_1D,
} from "../gpu/kernels/_params.ts";
import { GpuRuntime, type KernelSpec, WebGpuUnavailableError } from "../gpu/runtime.ts";

// ---- configuration ------------------------------------------------------------------------------
interface BenchConfig {
  /** Weight shapes `[rows, cols]` for the element-wise kernels. */
  shapes: [number, number][];
  /** Linear layers `[in, out]` for the matmuls. */
  layers: [number, number][];
  /** Tokens `T` of the matmul input `X [T, in]`. */
  tokens: number;
  /** Timed samples per measurement (the median is reported). */
  reps: number;
  /** Untimed calls before timing (compilation, pool warm-up). */
  warmup: number;
  /** Calls are batched between two syncs until a batch takes about this long. */
  minBatchMs: number;
  /** Bytes of the copy-bandwidth buffers. */
  copyBytes: number;
}

const FULL: BenchConfig = {
  shapes: [[768, 3072], [3072, 768], [1024, 4096], [4096, 4096]],
  layers: [[768, 3072], [3072, 768], [1024, 4096], [4096, 4096]],
  tokens: 8192,
  reps: 15,
  warmup: 3,
  minBatchMs: 5,
  copyBytes: 256 * 1024 * 1024,
};

const QUICK: BenchConfig = {
  shapes: [[64, 256], [256, 64], [128, 512]],
  layers: [[64, 256], [256, 64]],
  tokens: 128,
  reps: 3,
  warmup: 1,
  minBatchMs: 0,
  copyBytes: 16 * 1024 * 1024,
};

// ---- measurement --------------------------------------------------------------------------------
/** Three significant digits (no exponent for the ranges printed here). */
function num(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/**
 * Median milliseconds of one call of `run` (which records dispatches and returns the buffers it
 * allocated): calls are batched between two `rt.sync()` so a batch lasts at least
 * `cfg.minBatchMs`, and each sample is the batch time over its size.
 */
async function timeCall(
  rt: GpuRuntime,
  cfg: BenchConfig,
  run: () => GPUBuffer[],
): Promise<number> {
  const once = () => {
    for (const b of run()) rt.free(b);
  };
  for (let i = 0; i < cfg.warmup; i++) once();
  await rt.sync();
  let t0 = performance.now();
  once();
  await rt.sync();
  const single = performance.now() - t0;
  const inner = Math.max(1, Math.min(64, Math.ceil(cfg.minBatchMs / Math.max(single, 1e-3))));
  for (let i = 0; i < inner; i++) once(); // fills the buffer pool for a whole batch
  await rt.sync();
  const samples: number[] = [];
  for (let r = 0; r < cfg.reps; r++) {
    t0 = performance.now();
    for (let i = 0; i < inner; i++) once();
    await rt.sync();
    samples.push((performance.now() - t0) / inner);
  }
  return median(samples);
}

function vec4CopySpec(): KernelSpec {
  return {
    key: "bench-vec4-copy",
    code: `struct Params { quads: u32 }
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(${WG_1D})
fn main(${GRID_BUILTINS}) {
  let i = ${LINEAR_WORKGROUP} * ${WG_1D}u + lid;
  if (i < p.quads) { dst[i] = src[i]; }
}
`,
  };
}

function randomBuffer(rt: GpuRuntime, n: number, seed: number, scale = 1): GPUBuffer {
  let s = seed >>> 0;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = scale * ((s / 4294967296) * 2 - 1);
  }
  return rt.upload(data);
}

function maskBuffer(rt: GpuRuntime, n: number, seed: number): GPUBuffer {
  let s = seed >>> 0;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 22695477) + 1) >>> 0;
    data[i] = s >>> 31;
  }
  return rt.upload(data);
}

interface Row {
  kernel: string;
  shape: string;
  ms: number;
  /** Achieved bandwidth (GB/s) or throughput (TFLOP/s) figures and their formulas. */
  figures: string;
  formula: string;
}

// ---- benchmark ----------------------------------------------------------------------------------
async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { quick: { type: "boolean", default: false }, out: { type: "string" } },
    strict: true,
    allowPositionals: false,
  });
  const cfg = values.quick ? QUICK : FULL;
  let rt: GpuRuntime;
  try {
    rt = await GpuRuntime.create();
  } catch (e) {
    if (e instanceof WebGpuUnavailableError) {
      console.error(e.message);
      Deno.exit(1);
    }
    throw e;
  }
  const started = performance.now();
  console.log(`bench_gpu: adapter "${rt.adapterName}", ${values.quick ? "quick" : "full"} run`);

  // Copy bandwidth, the ceiling of every memory-bound kernel (bytes read + written).
  const copyFloats = cfg.copyBytes / 4;
  const src = randomBuffer(rt, copyFloats, 1);
  const dst = rt.alloc(cfg.copyBytes);
  const copyMs = await timeCall(rt, cfg, () => {
    rt.copy(src, dst, cfg.copyBytes);
    return [];
  });
  const quads = copyFloats / 4;
  const vec4Ms = await timeCall(rt, cfg, () => {
    rt.dispatch(vec4CopySpec(), [src, dst], grid(quads), packParams([quads]));
    return [];
  });
  rt.free(src);
  rt.free(dst);
  const copyGBs = (2 * cfg.copyBytes) / copyMs / 1e6;
  const vec4GBs = (2 * cfg.copyBytes) / vec4Ms / 1e6;
  const mib = cfg.copyBytes / 2 ** 20;
  console.log(
    `copy bandwidth (2·bytes/time, ${mib} MiB): buffer copy ${num(copyGBs)} GB/s, ` +
      `vec4 kernel ${num(vec4GBs)} GB/s`,
  );

  const memoryRows: Row[] = [];
  const bandwidth = (kernel: string, shape: string, ms: number, bytes: number, formula: string) => {
    const gbs = bytes / ms / 1e6;
    const row: Row = {
      kernel,
      shape,
      ms,
      figures: `${num(gbs)} GB/s (${((100 * gbs) / vec4GBs).toFixed(0)}% of vec4 copy)`,
      formula,
    };
    memoryRows.push(row);
    console.log(
      `${kernel.padEnd(28)} ${shape.padEnd(12)} ${
        ms.toFixed(3).padStart(9)
      } ms  ${row.figures}  [${formula}]`,
    );
  };

  let searchN = 0, searchMs = 0, searchShape = "";
  for (const [rows, cols] of cfg.shapes) {
    const n = rows * cols;
    const shape = `${rows}×${cols}`;
    const w = randomBuffer(rt, n, 2);
    const g = randomBuffer(rt, n, 3);
    const m1 = maskBuffer(rt, n, 4), m2 = maskBuffer(rt, n, 5);
    const t = (run: () => GPUBuffer[]) => timeCall(rt, cfg, run);
    const pr = (p: { pruned: GPUBuffer; mask: GPUBuffer }) => [p.pruned, p.mask];

    bandwidth(
      "prune 2:4",
      shape,
      await t(() => pr(encodePruneNM(rt, w, rows, cols, 2, 4))),
      12 * n,
      "4N read + 8N write",
    );
    bandwidth(
      "prune 1:4",
      shape,
      await t(() => pr(encodePruneNM(rt, w, rows, cols, 1, 4))),
      12 * n,
      "4N + 8N",
    );
    bandwidth(
      "prune 2:8",
      shape,
      await t(() => pr(encodePruneNM(rt, w, rows, cols, 2, 8))),
      12 * n,
      "4N + 8N",
    );
    bandwidth(
      "softThreshold24",
      shape,
      await t(() => pr(encodeSoftThreshold24(rt, w, rows, cols))),
      12 * n,
      "4N + 8N",
    );
    bandwidth(
      "ssteScale sums",
      shape,
      await t(() => [encodeSsteSums(rt, w, rows, cols)]),
      8 * n,
      "2 passes × 4N",
    );
    const tMs = await t(() => {
      const o = encodeTransposableMask24(rt, w, rows, cols);
      return [o.pruned, o.mask, o.indices];
    });
    bandwidth("transposableMask24", shape, tMs, 12.25 * n, "4N + 8N + N/4");
    if (n > searchN) {
      [searchN, searchMs, searchShape] = [n, tMs, shape];
    }
    bandwidth(
      "mvue24",
      shape,
      await t(() => [encodeMvue24(rt, g, rows, cols, 7, 0)]),
      8 * n,
      "4N + 4N",
    );
    bandwidth(
      "maskedDecay",
      shape,
      await t(() => [encodeMaskedDecay(rt, g, w, m1, n, 6e-5)]),
      16 * n,
      "12N + 4N",
    );
    bandwidth("flipCount", shape, await t(() => [encodeFlipCount(rt, m1, m2, n)]), 8 * n, "8N");
    bandwidth(
      "quantizeFp8 e4m3",
      shape,
      await t(() => {
        const o = encodeQuantizeFp8(rt, g, n, "e4m3");
        return [o.dequantized, o.scale];
      }),
      12 * n,
      "amax 4N + 4N + 4N",
    );
    bandwidth(
      "quantizeFp8 e5m2 + codes",
      shape,
      await t(() => {
        const o = encodeQuantizeFp8(rt, g, n, "e5m2", { codes: true });
        return [o.dequantized, o.scale, o.codes!];
      }),
      13 * n,
      "amax 4N + 4N + 4N + N",
    );
    // Compress a 2:4 matrix (the pruned w), then decompress it.
    const pruned = encodePruneNM(rt, w, rows, cols, 2, 4);
    const comp = encodeCompress24(rt, pruned.pruned, rows, cols);
    bandwidth(
      "compress24",
      shape,
      await t(() => {
        const o = encodeCompress24(rt, pruned.pruned, rows, cols);
        return [o.values, o.meta];
      }),
      6.125 * n,
      "4N + 2N + N/8",
    );
    bandwidth(
      "decompress24",
      shape,
      await t(() => [encodeDecompress24(rt, comp.values, comp.meta, rows, cols)]),
      6.125 * n,
      "2N + N/8 + 4N",
    );
    // Gated activations with the matrix as the [T, 2h] input (T = rows, h = cols / 2).
    const h = cols / 2, dy = randomBuffer(rt, rows * h, 6);
    for (const layout of ["row-major", "column-major"] as const) {
      const tag = layout === "row-major" ? "row" : "col";
      bandwidth(
        `geglu ${tag}`,
        shape,
        await t(() => [encodeGeglu(rt, g, rows, h, { layout })]),
        6 * n,
        "4N + 2N",
      );
      bandwidth(
        `gegluBackward ${tag}`,
        shape,
        await t(() => [encodeGegluBackward(rt, g, dy, rows, h, { layout })]),
        10 * n,
        "4N + 2N + 4N",
      );
      bandwidth(
        `swiglu ${tag}`,
        shape,
        await t(() => [encodeSwiglu(rt, g, rows, h, { layout })]),
        6 * n,
        "4N + 2N",
      );
      bandwidth(
        `swigluBackward ${tag}`,
        shape,
        await t(() => [encodeSwigluBackward(rt, g, dy, rows, h, { layout })]),
        10 * n,
        "4N + 2N + 4N",
      );
    }
    for (const b of [w, g, m1, m2, dy, pruned.pruned, pruned.mask, comp.values, comp.meta]) {
      rt.free(b);
    }
    await rt.sync();
  }

  // Matmuls: Y = X·Wᵀ with X [T, in], W [out, in]; dense tiled WGSL vs 2:4 compressed.
  const matmulRows: Row[] = [];
  for (const [inDim, outDim] of cfg.layers) {
    const T = cfg.tokens;
    const shape = `${T}×${inDim}→${outDim}`;
    const x = randomBuffer(rt, T * inDim, 8);
    const w = randomBuffer(rt, outDim * inDim, 9);
    const pruned = encodePruneNM(rt, w, outDim, inDim, 2, 4);
    const comp = encodeCompress24(rt, pruned.pruned, outDim, inDim);
    const flops = 2 * T * inDim * outDim;
    const dims = { batch: 1, m: T, n: outDim, k: inDim, transA: false, transB: true };
    let denseMs = Infinity, denseTiling = "";
    for (const [name, tiling] of [["64", TILING_64], ["128", TILING_128]] as const) {
      const ms = await timeCall(rt, cfg, () => [encodeMatmul(rt, x, w, dims, { tiling })]);
      if (ms < denseMs) {
        denseMs = ms;
        denseTiling = name;
      }
    }
    const sparseMs = await timeCall(rt, cfg, () => [
      encodeSparseMatmul24(rt, x, comp.values, comp.meta, { tokens: T, inDim, outDim }),
    ]);
    const dense: Row = {
      kernel: `dense matmul (tile ${denseTiling})`,
      shape,
      ms: denseMs,
      figures: `${num(flops / denseMs / 1e9)} TFLOP/s`,
      formula: "2·T·in·out",
    };
    const sparse: Row = {
      kernel: "2:4 sparse matmul",
      shape,
      ms: sparseMs,
      figures: `${num(flops / sparseMs / 1e9)} TFLOP/s dense-equivalent, ${
        num(flops / 2 / sparseMs / 1e9)
      } effective; ${(denseMs / sparseMs).toFixed(2)}× dense`,
      formula: "2·T·in·out (effective T·in·out)",
    };
    for (const row of [dense, sparse]) {
      matmulRows.push(row);
      console.log(
        `${row.kernel.padEnd(28)} ${shape.padEnd(18)} ${
          row.ms.toFixed(3).padStart(9)
        } ms  ${row.figures}`,
      );
    }
    for (const b of [x, w, pruned.pruned, pruned.mask, comp.values, comp.meta]) rt.free(b);
    await rt.sync();
  }
  console.log(`transposable 2:4 mask search: ${searchMs.toFixed(3)} ms for ${searchShape}`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);

  if (values.out) {
    const table = (rows: Row[], unit: string) =>
      [
        `| kernel | shape | median ms | ${unit} | formula |`,
        "|---|---|---:|---|---|",
        ...rows.map((r) =>
          `| ${r.kernel} | ${r.shape} | ${r.ms.toFixed(3)} | ${r.figures} | ${r.formula} |`
        ),
      ].join("\n");
    const md = `# GPU kernel benchmark (${values.quick ? "quick" : "full"})

- Date: ${new Date().toISOString()}
- Adapter: ${rt.adapterName}
- Timing: median over ${cfg.reps} samples; each sample is a batch of calls between two \`rt.sync()\`
  divided by the batch size (batches of at least ${cfg.minBatchMs} ms), after ${cfg.warmup} warm-up calls.
- Copy bandwidth (2 × ${mib} MiB / time): buffer-to-buffer copy ${num(copyGBs)} GB/s, vec4 copy
  kernel ${num(vec4GBs)} GB/s.
- Transposable 2:4 mask search: ${searchMs.toFixed(3)} ms for ${searchShape}.
- N = rows × cols; bytes assume each input read and each output written once (float32).

## Memory-bound kernels

${table(memoryRows, "achieved")}

## Matmuls (Y = X·Wᵀ, T = ${cfg.tokens})

${table(matmulRows, "throughput")}
`;
    await Deno.writeTextFile(values.out, md);
    console.log(`wrote ${values.out}`);
  }
  rt.destroy();
}

if (import.meta.main) await main(Deno.args);
