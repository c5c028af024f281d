/**
 * Helpers shared by `speed.ts`, `zoo/gemm_speed.ts` and `zoo/sparse_bound.ts` on top of the
 * benchmark harness (`_bench.ts`): its batch timer set up for one product per call, a sampled
 * float64 check of a product, 2:4 test matrices, seeded uploads of large operands, the WGSL roofline
 * of the H100 that kernel rows state their bounds against, and the 2:4 kernel's weights. Public (no
 * `_`) because the zoo sits in a subfolder.
 *
 * @module
 */

import type { GpuRuntime } from "../gpu/runtime.ts";
import { packSwitch24, packSwitchDense } from "../gpu/kernels/matmul_sparse_switch.ts";
import { assertProductClose, seededFloats } from "../reference/testing.ts";
import { BatchTimer, type Latency, measureLatency } from "./_bench.ts";

/**
 * The WGSL roofline measured on an H100 80GB HBM3 (issue 15, 2026-12-06, micro-benchmark with long
 * dispatches): fp32 FMA rate, workgroup-memory `vec4` loads per second, and the `vec4` copy
 * kernel's global bandwidth (results/device/2026-11-23-h100-bench-gpu.md).
 */
export const H100_WGSL = { fmaTflops: 51.2, wgVec4PerS: 1.86e12, copyGBps: 2986 };

/**
 * The harness's batch timer (`_bench.ts`) for one product per call, recorded into buffers the
 * caller keeps: at least `batchMs` of GPU work per batch, median of `batches`; GPU timestamps
 * where the device has them.
 */
export async function kernelTimer(
  rt: GpuRuntime,
  options: { batchMs?: number; batches?: number } = {},
): Promise<{ timer: BatchTimer; latency: Latency; time: (record: () => void) => Promise<number> }> {
  const latency = await measureLatency(rt);
  const timer = new BatchTimer(
    rt,
    {
      batches: options.batches ?? 3,
      warmup: 1,
      latencyFactor: 0,
      minBatchMs: options.batchMs ?? 100,
      maxReps: 2000,
      chunkBytes: 256 * 1024 ** 2,
      rotateBytes: 0,
      maxSets: 2,
    },
    latency.trivialDispatch,
    rt.features.timestamp,
  );
  const time = async (record: () => void) =>
    (await timer.measure(() => {
      record();
      return [];
    })).ms;
  return { timer, latency, time };
}

/**
 * Checks 64 sampled outputs of a product (`assertProductClose` of `reference/testing.ts`).
 *
 * @returns `"ok (x of bound)"` or `"FAIL …"` (a benchmark row states it rather than stopping).
 */
export function sampleCheck(
  got: Float32Array,
  rows: number,
  cols: number,
  k: number,
  a: (i: number, kk: number) => number,
  b: (j: number, kk: number) => number,
): string {
  try {
    const worst = assertProductClose("product", got, { rows, cols, k }, a, b, { sample: 64 });
    return `ok (${worst.toFixed(2)} of bound)`;
  } catch (e) {
    return `FAIL ${(e as Error).message}`;
  }
}

/** A 2:4 matrix `[rows, k]` with a random pattern per group of four along k. */
export function random24(
  rows: number,
  k: number,
  values: Float32Array,
  seed: number,
): Float32Array {
  const w = values.slice();
  let s = seed >>> 0;
  const pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]];
  for (let g = 0; g < rows * k / 4; g++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const keep = pairs[Math.floor((s / 2 ** 32) * 6)];
    for (let i = 0; i < 4; i++) if (!keep.includes(i)) w[4 * g + i] = 0;
  }
  return w;
}

/** Values of {@linkcode uploadSeeded}'s block, which repeats across a buffer. */
const BLOCK = 1 << 20;

/**
 * A storage buffer of `n` float32 values in `[-0.5, 0.5)`: a seeded block of 2^20 values
 * (`seededFloats`) repeated (generating the 400 M values of the tied head's logits on the host
 * would take half a minute), and the host's view of any element for checks.
 */
export function uploadSeeded(
  rt: GpuRuntime,
  n: number,
  seed: number,
): { buffer: GPUBuffer; at: (i: number) => number } {
  const block = seededFloats(Math.min(n, BLOCK), seed);
  const buffer = rt.alloc(4 * Math.max(n, 1));
  for (let off = 0; off < n; off += BLOCK) {
    rt.write(buffer, block.subarray(0, Math.min(BLOCK, n - off)), 4 * off);
  }
  return { buffer, at: (i) => block[i % BLOCK] };
}

/**
 * A seeded 2:4 weight `w [R, K]` for the switch kernel (`matmul_sparse_switch.ts`) and its device
 * operands: `compressed` (`wv`, `wc`) for the 2:4 modes, `dense` (`w` in the dense mode's layout)
 * for the same-structure control. The caller frees the buffers.
 */
export function switchWeights(
  rt: GpuRuntime,
  R: number,
  K: number,
): { w: Float32Array; compressed: GPUBuffer[]; dense: GPUBuffer[] } {
  const w = random24(R, K, seededFloats(R * K, 5 + R), 6 + R);
  const { wv, wc } = packSwitch24(w, R, K);
  const compressed = [rt.upload(wv), rt.upload(wc)];
  return { w, compressed, dense: [rt.upload(packSwitchDense(w, R, K))] };
}
