/**
 * `GpuKernels` validates its inputs as the reference functions do: every invalid input raises
 * the reference's error type and message.
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { matrix } from "../reference/matrix.ts";
import { compress24, decompress24 } from "../reference/compress.ts";
import { flipCount, flipRate } from "../reference/flip_rate.ts";
import { quantizeFp8 } from "../reference/fp8.ts";
import { geglu, gegluBackward, swiglu } from "../reference/gated.ts";
import { maskedDecay } from "../reference/masked_decay.ts";
import { mvue24, mvue24WithUniforms } from "../reference/mvue.ts";
import { prune24, pruneNM } from "../reference/prune.ts";
import { softThreshold24, ssteScale } from "../reference/soft_threshold.ts";
import { transposableMask24 } from "../reference/transposable.ts";
import { assertSameError, parityTest } from "./testing.ts";

parityTest("invalid inputs raise the reference's errors", async (gpu) => {
  const nan = matrix(1, 4, [1, NaN, 0, 0]);
  const inf = matrix(1, 4, [1, Infinity, 0, 0]);
  const w = matrix(4, 4, Array.from({ length: 16 }, (_, i) => i - 8));
  const odd = matrix(1, 10);
  const m44 = matrix(1, 4, [1, 2, 3, 0]);
  const cases: [string, () => unknown, () => Promise<unknown>][] = [
    ["prune24 cols", () => prune24(odd), () => gpu.prune24(odd)],
    ["prune24 NaN", () => prune24(nan), () => gpu.prune24(nan)],
    ["pruneNM n > m", () => pruneNM(w, { n: 3, m: 2 }), () => gpu.pruneNM(w, { n: 3, m: 2 })],
    ["pruneNM n = 0", () => pruneNM(w, { n: 0, m: 4 }), () => gpu.pruneNM(w, { n: 0, m: 4 })],
    [
      "pruneNM options",
      () => pruneNM(w, null as unknown as { n: number; m: number }),
      () => gpu.pruneNM(w, null as unknown as { n: number; m: number }),
    ],
    ["softThreshold24 NaN", () => softThreshold24(nan), () => gpu.softThreshold24(nan)],
    ["ssteScale Inf", () => ssteScale(inf), () => gpu.ssteScale(inf)],
    [
      "ssteScale recipe",
      () => ssteScale(w, { recipe: "bogus" as "mse" }),
      () => gpu.ssteScale(w, { recipe: "bogus" as "mse" }),
    ],
    ["transposable rows", () => transposableMask24(odd), () => gpu.transposableMask24(odd)],
    [
      "transposable cols",
      () => transposableMask24(matrix(4, 6)),
      () => gpu.transposableMask24(matrix(4, 6)),
    ],
    ["compress24 three non-zeros", () => compress24(m44), () => gpu.compress24(m44)],
    [
      "decompress24 invalid code",
      () => decompress24({ values: matrix(1, 2), meta: Uint32Array.of(3) }),
      () => gpu.decompress24({ values: matrix(1, 2), meta: Uint32Array.of(3) }),
    ],
    [
      "decompress24 meta length",
      () => decompress24({ values: matrix(1, 2), meta: new Uint32Array(2) }),
      () => gpu.decompress24({ values: matrix(1, 2), meta: new Uint32Array(2) }),
    ],
    [
      "decompress24 unused bits",
      () => decompress24({ values: matrix(1, 2), meta: Uint32Array.of(9 | (9 << 4)) }),
      () => gpu.decompress24({ values: matrix(1, 2), meta: Uint32Array.of(9 | (9 << 4)) }),
    ],
    ["mvue24 Inf", () => mvue24(inf, { seed: 1 }), () => gpu.mvue24(inf, { seed: 1 })],
    ["mvue24 seed", () => mvue24(w, { seed: -1 }), () => gpu.mvue24(w, { seed: -1 })],
    [
      "mvue24 stream",
      () => mvue24(w, { seed: 1, stream: 2 ** 32 }),
      () => gpu.mvue24(w, { seed: 1, stream: 2 ** 32 }),
    ],
    [
      "mvue24 group sum",
      () => mvue24(matrix(1, 4, [3e38, 3e38, 0, 0]), { seed: 1 }),
      () => gpu.mvue24(matrix(1, 4, [3e38, 3e38, 0, 0]), { seed: 1 }),
    ],
    [
      "mvue24WithUniforms zero uniform",
      () => mvue24WithUniforms(m44, new Float32Array([0, 0.5])),
      () => gpu.mvue24WithUniforms(m44, new Float32Array([0, 0.5])),
    ],
    [
      "mvue24WithUniforms length",
      () => mvue24WithUniforms(m44, new Float32Array(3)),
      () => gpu.mvue24WithUniforms(m44, new Float32Array(3)),
    ],
    [
      "maskedDecay shapes",
      () => maskedDecay(w, m44, new Uint8Array(16), 0.1),
      () => gpu.maskedDecay(w, m44, new Uint8Array(16), 0.1),
    ],
    [
      "maskedDecay mask entry",
      () => maskedDecay(m44, m44, Uint8Array.of(0, 2, 0, 1), 0.1),
      () => gpu.maskedDecay(m44, m44, Uint8Array.of(0, 2, 0, 1), 0.1),
    ],
    [
      "maskedDecay alpha",
      () => maskedDecay(m44, m44, new Uint8Array(4), -1),
      () => gpu.maskedDecay(m44, m44, new Uint8Array(4), -1),
    ],
    [
      "maskedDecay Inf",
      () => maskedDecay(inf, m44, new Uint8Array(4), 0.1),
      () => gpu.maskedDecay(inf, m44, new Uint8Array(4), 0.1),
    ],
    [
      "flipCount lengths",
      () => flipCount(new Uint8Array(3), new Uint8Array(4)),
      () => gpu.flipCount(new Uint8Array(3), new Uint8Array(4)),
    ],
    [
      "flipRate empty",
      () => flipRate(new Uint8Array(0), new Uint8Array(0)),
      () => gpu.flipRate(new Uint8Array(0), new Uint8Array(0)),
    ],
    [
      "quantizeFp8 Inf",
      () => quantizeFp8(inf, { format: "e4m3" }),
      () => gpu.quantizeFp8(inf, { format: "e4m3" }),
    ],
    [
      "quantizeFp8 format",
      () => quantizeFp8(w, { format: "e3m4" as "e4m3" }),
      () => gpu.quantizeFp8(w, { format: "e3m4" as "e4m3" }),
    ],
    ["geglu odd", () => geglu(matrix(2, 3)), () => gpu.geglu(matrix(2, 3))],
    ["swiglu Inf", () => swiglu(inf), () => gpu.swiglu(inf)],
    [
      "gegluBackward dy shape",
      () => gegluBackward(w, matrix(4, 3)),
      () => gpu.gegluBackward(w, matrix(4, 3)),
    ],
  ];
  for (const [label, reference, device] of cases) await assertSameError(label, reference, device);
});
