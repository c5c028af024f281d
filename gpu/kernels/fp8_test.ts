/**
 * FP8 quantisation on the GPU against `reference/fp8.ts` (SPEC §2.9): all 256 codes round-trip;
 * dequantised values and codes under the flush rule of `../float32_rules.ts` (a subnormal operand
 * may quantise to the zero code).
 * The kernels run through `GpuKernels`; the shared fixture prints the adapter and every test fails
 * (never skips) without one.
 *
 * @module
 */

import { assertEqualArrays } from "../../reference/testing.ts";
import { type Matrix, matrix } from "../../reference/matrix.ts";
import { SPEC_FP8 } from "../../reference/cases.ts";
import { decodeFp8, encodeFp8, quantizeFp8 } from "../../reference/fp8.ts";
import { assertEqualOrFlushed, isSubnormalF32 } from "../float32_rules.ts";
import type { GpuKernels } from "../gpu_kernels.ts";
import { gaussian, LARGE, mat, parityTest, pick, random } from "../testing.ts";

function unpackCodes(words: Uint32Array, n: number): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, n).slice();
}

/** What needed the flush rule so far in the FP8 test (printed at its end). */
type Fp8Flushes = { values: number; codes: number; subnormalResults: number };

/**
 * Quantises `x` on both sides and compares the scale (exact), the dequantised values and the codes
 * (the flush rule, against the reference and against the reference with subnormal entries of `x`
 * read as 0, under the same scale: the device computes the scale from the integer bits).
 */
async function checkFp8(
  gpu: GpuKernels,
  x: Matrix,
  format: "e4m3" | "e5m2",
  label: string,
  flushes: Fp8Flushes,
) {
  const want = quantizeFp8(x, { format });
  const got = await gpu.quantizeFp8(x, { format });
  assertEqualArrays([got.scale], [want.scale], `${label} scale`);
  // The reference on a device that reads subnormal entries of x as 0: only those entries change.
  const flushedValues = Float32Array.from(want.dequantized.data);
  const flushedCodes = new Map<number, number>();
  x.data.forEach((v, i) => {
    if (!isSubnormalF32(v)) return;
    const code = encodeFp8(Math.fround(0 * want.scale), format);
    flushedCodes.set(i, code);
    flushedValues[i] = decodeFp8(code, format) / want.scale;
  });
  flushes.values += assertEqualOrFlushed(
    got.dequantized.data,
    want.dequantized.data,
    `${label} dequantized`,
    flushedValues,
  );
  flushes.subnormalResults += want.dequantized.data.filter(isSubnormalF32).length;
  const { codes, scale } = await gpu.quantizeFp8Codes(x, { format });
  assertEqualArrays([scale], [want.scale], `${label} codes scale`);
  const wantCodes = Array.from(x.data, (v) => encodeFp8(Math.fround(v * want.scale), format));
  // A flushed operand's code is the zero code, of either sign.
  const gotCodes = unpackCodes(codes, x.data.length);
  for (const [i, code] of flushedCodes) {
    if (gotCodes[i] !== wantCodes[i] && (gotCodes[i] & 0x7f) === 0 && (code & 0x7f) === 0) {
      gotCodes[i] = wantCodes[i];
      flushes.codes++;
    }
  }
  assertEqualArrays(gotCodes, wantCodes, `${label} codes`);
}

parityTest(
  "quantizeFp8: all 256 codes round-trip, values and codes equal the reference",
  async (gpu) => {
    const flushes: Fp8Flushes = { values: 0, codes: 0, subnormalResults: 0 };
    for (const format of ["e4m3", "e5m2"] as const) {
      // Every finite code's value; amax = FMT_MAX, so s = 1 and each value must keep its code.
      const codes = Array.from({ length: 256 }, (_, c) => c).filter((c) =>
        Number.isFinite(decodeFp8(c, format))
      );
      const x = matrix(1, codes.length, codes.map((c) => decodeFp8(c, format)));
      const got = await gpu.quantizeFp8Codes(x, { format });
      if (got.scale !== 1) throw new Error(`${format}: scale ${got.scale}, expected 1`);
      assertEqualArrays(unpackCodes(got.codes, codes.length), codes, `${format} code round trip`);
      // SPEC §9 with s = 1 (the format's maximum is in the input, so amax sets s = 1).
      const cases = SPEC_FP8[format];
      const inputs = [...cases.map(([x]) => x), FP8_MAXES[format]];
      const spec = await gpu.quantizeFp8(matrix(1, inputs.length, inputs), { format });
      const expected = [...cases.map(([, q]) => q), FP8_MAXES[format]];
      assertEqualArrays(spec.dequantized.data, expected, `${format} SPEC §9`);

      const rand = random(format === "e4m3" ? 13 : 14);
      // 1024×4096 for E4M3; E5M2 runs the same kernel text with other constants.
      const big: [number, number] = format === "e4m3" ? LARGE : [256, 1024];
      for (const [r, c] of [[1, 1], [1, 3], [4, 4], [12, 20], [37, 43], big]) {
        for (const scale of r * c > 1e5 ? [0.37] : [1e-3, 1, 1e4]) {
          const x = mat(r, c, gaussian(rand, r * c, scale));
          for (let i = 0; i < Math.min(8, x.data.length); i++) {
            x.data[Math.floor(rand() * x.data.length)] = pick(rand, [0, -0, 1e-40, -3e-42]);
          }
          await checkFp8(gpu, x, format, `${format} [${r}, ${c}] ×${scale}`, flushes);
        }
      }
      await checkFp8(gpu, matrix(2, 3), format, `${format} all zeros (s = 1)`, flushes);
      // amax so small that FMT_MAX / amax overflows: s clamps to the largest float32; the results
      // are subnormal-heavy, which a flushing device may round to zero.
      const tiny = matrix(1, 4, [1e-37, -2e-38, 1e-40, 0]);
      await checkFp8(gpu, tiny, format, `${format} tiny amax`, flushes);
    }
    console.log(
      `  quantizeFp8: ${flushes.values} dequantized values and ${flushes.codes} codes flushed ` +
        `(${flushes.subnormalResults} subnormal reference values)`,
    );
  },
);

const FP8_MAXES = { e4m3: 448, e5m2: 57344 } as const;
