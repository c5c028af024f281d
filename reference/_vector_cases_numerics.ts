/**
 * Test-vector cases of masked decay, flip rate, FP8 and gated activations (SPEC §2–3): the SPEC §9 cases from `./cases.ts`, edge cases and
 * seeded random cases, each output computed by the reference oracle. Part of `./vectors.ts`.
 *
 * @module
 */

import { MAX_F32, MIN_SUBNORMAL_F32, SPEC_FP8, SPEC_GEGLU, SPEC_MASKED_DECAY } from "./cases.ts";
import { flipCount, flipRate } from "./flip_rate.ts";
import { decodeFp8, encodeFp8, FP8_MAX, type Fp8Format, quantizeFp8 } from "./fp8.ts";
import { geglu, gegluBackward, swiglu, swigluBackward } from "./gated.ts";
import { maskedDecay } from "./masked_decay.ts";
import { type Matrix, matrix } from "./matrix.ts";
import { prune24 } from "./prune.ts";
import { transposableMask24 } from "./transposable.ts";
import * as inputs from "./_vector_inputs.ts";
import type { TestVectorCase } from "./vectors.ts";
const DECAY_TOLERANCE = inputs.allclose(1e-6, 1e-6);

const decayCase = inputs.caseBuilder((grad: Matrix, w: Matrix, mask: Uint8Array, alpha: number) => {
  return {
    function: "maskedDecay",
    params: { alpha },
    inputs: {
      grad: inputs.mat(grad),
      w: inputs.mat(w),
      mask: inputs.maskTensor(mask, w.rows, w.cols),
    },
    outputs: {
      out: inputs.output(
        inputs.mat(maskedDecay(grad, w, mask, alpha)),
        "maskedDecay(grad, w, mask, alpha)",
        DECAY_TOLERANCE,
      ),
    },
  };
});

export function decayCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const cases: TestVectorCase[] = [
    decayCase(
      "spec9",
      "SPEC §9: grad [1,1,1,1], w [1,2,3,4], mask [1,0,1,0], α = 0.03 → [1, 1.06, 1, 1.12].",
      inputs.rowsMatrix([SPEC_MASKED_DECAY.grad]),
      inputs.rowsMatrix([SPEC_MASKED_DECAY.w]),
      Uint8Array.from(SPEC_MASKED_DECAY.mask),
      SPEC_MASKED_DECAY.alpha,
    ),
    decayCase(
      "edges",
      "Signed zeros, subnormal weights, all-kept and all-pruned groups, large weights; α = 1e-3.",
      inputs.rowsMatrix([[0, -0, 1e-40, -5], [1, 2, 3, 4], [-1, -2, -3, -4], [0, 0, 0, 0]]),
      inputs.rowsMatrix([[-0, 3, MIN_SUBNORMAL_F32, 1e30], [1, 2, 3, 4], [1, 2, 3, 4], [
        -0,
        2 ** -130,
        -1e-30,
        7,
      ]]),
      Uint8Array.of(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0),
      1e-3,
    ),
  ];
  const alphas = [6e-5, 2e-4, 0];
  shapes.forEach((s, k) => {
    const w = inputs.irwinHallMatrix(s.rows, s.cols, {
      seed,
      stream: inputs.STREAM.decay + 2 * k,
      scale: 0.02,
    });
    const grad = inputs.irwinHallMatrix(s.rows, s.cols, {
      seed,
      stream: inputs.STREAM.decay + 2 * k + 1,
      scale: 1e-3,
    });
    const alpha = alphas[k % alphas.length];
    const useTransposable = k % 2 === 1;
    const mask = useTransposable ? transposableMask24(w).mask : prune24(w).mask;
    cases.push(decayCase(
      `random_${inputs.shapeName(s)}`,
      `Irwin-Hall weights × 0.02 and gradients × 1e-3 (seed ${seed}, streams ${
        inputs.STREAM.decay + 2 * k
      }, ${inputs.STREAM.decay + 2 * k + 1}), the ${
        useTransposable ? "transposable" : "prune24"
      } ` +
        `mask of w, α = ${alpha}.`,
      grad,
      w,
      mask,
      alpha,
    ));
  });
  return cases;
}

const flipCase = inputs.caseBuilder(
  (prev: Uint8Array, next: Uint8Array, rows: number, cols: number) => {
    return {
      function: "flipRate",
      inputs: {
        prev_mask: inputs.maskTensor(prev, rows, cols),
        next_mask: inputs.maskTensor(next, rows, cols),
      },
      outputs: {
        flip_count: inputs.output(
          inputs.u32([], [flipCount(prev, next)]),
          "flipCount(prev_mask, next_mask)",
          inputs.EXACT,
        ),
        flip_rate: inputs.output(
          inputs.f64([], [flipRate(prev, next)]),
          "flipRate(prev_mask, next_mask) = flip_count / (rows · cols)",
          inputs.allclose(0, 1e-6),
        ),
      },
    };
  },
);

export function flipCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const doc = Uint8Array.of(1, 1, 0, 0);
  const cases: TestVectorCase[] = [
    flipCase(
      "doc_example",
      "[1,1,0,0] → [1,0,1,0]: 2 flips, rate 0.5.",
      doc,
      Uint8Array.of(1, 0, 1, 0),
      1,
      4,
    ),
    flipCase("identical", "The same mask twice: rate 0.", doc, doc, 1, 4),
    flipCase(
      "complement",
      "Every bit flips: rate 1.",
      Uint8Array.of(1, 0, 0, 1, 0, 1, 1, 0),
      Uint8Array.of(0, 1, 1, 0, 1, 0, 0, 1),
      2,
      4,
    ),
  ];
  shapes.forEach((s, k) => {
    const w = inputs.irwinHallMatrix(s.rows, s.cols, { seed, stream: inputs.STREAM.flip + 2 * k });
    const noise = inputs.irwinHallMatrix(s.rows, s.cols, {
      seed,
      stream: inputs.STREAM.flip + 2 * k + 1,
      scale: 0.1,
    });
    const moved = matrix(s.rows, s.cols, w.data.map((v, i) => v + noise.data[i]));
    cases.push(flipCase(
      `random_${inputs.shapeName(s)}`,
      `prune24 masks of Irwin-Hall weights w (seed ${seed}, stream ${
        inputs.STREAM.flip + 2 * k
      }) and ` +
        `of f32(w + 0.1·noise) (stream ${inputs.STREAM.flip + 2 * k + 1}).`,
      prune24(w).mask,
      prune24(moved).mask,
      s.rows,
      s.cols,
    ));
  });
  return cases;
}

/** The next float32 above (`direction = 1`) or below (`-1`) a positive finite float32 `x`. */
function nextFloat32(x: number, direction: 1 | -1): number {
  const b = new Float32Array([x]);
  const u = new Uint32Array(b.buffer);
  u[0] += direction;
  return b[0];
}

/** Values around the FP8 grid: grid points, midpoints (ties), just off midpoints, saturation. */
function fp8EncodeInputs(format: Fp8Format): Float32Array {
  const grid: number[] = [];
  for (let code = 0; code < 128; code++) {
    const v = decodeFp8(code, format);
    if (Number.isFinite(v)) grid.push(v);
  }
  grid.sort((a, b) => a - b);
  const values: number[] = [];
  for (let i = 0; i < grid.length; i++) {
    values.push(grid[i]);
    if (i + 1 < grid.length) {
      const mid = (grid[i] + grid[i + 1]) / 2; // exact in float32 (≤ 5 significant bits)
      values.push(mid, nextFloat32(mid, 1), nextFloat32(mid, -1));
    }
  }
  const max = FP8_MAX[format];
  const step = format === "e4m3" ? 32 : 8192; // the grid step just below max
  values.push(max + step / 2, max + step, 1e10, MAX_F32, 2.7, 300, -0.3, 0.1, 1 / 3);
  values.push(MIN_SUBNORMAL_F32, 2 ** -126, 1e-30);
  const positive = values.slice();
  const signed = positive.concat(positive.map((v) => -v), [-0, Infinity, -Infinity]);
  return Float32Array.from(signed);
}

export function fp8Cases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const cases: TestVectorCase[] = [];
  const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (const format of ["e4m3", "e5m2"] as const) {
    cases.push({
      name: `${format}_table`,
      function: "decodeFp8",
      description: `All 256 ${format} codes → values (bit 7 sign; NaN codes give NaN${
        format === "e5m2" ? ", 0x7C/0xFC give ±Inf" : ""
      }; 0x80 gives -0).`,
      params: { format },
      inputs: { codes: inputs.u8([256], codes) },
      outputs: {
        values: inputs.output(
          inputs.f32([256], Array.from(codes, (c) => decodeFp8(c, format))),
          "decodeFp8(codes[i], format)",
          inputs.EXACT,
        ),
      },
    });
  }
  for (const format of ["e4m3", "e5m2"] as const) {
    const x = Float32Array.from(SPEC_FP8[format], ([input]) => input);
    cases.push(encodeCase(
      `${format}_spec9`,
      `SPEC §9 (no scaling): ${
        format === "e4m3"
          ? "E4M3 2.7 → 2.75, 300 → 288, -0.3 → -0.3125"
          : "E5M2 2.7 → 2.5, 300 → 320"
      }.`,
      x,
      format,
    ));
  }
  for (const format of ["e4m3", "e5m2"] as const) {
    cases.push(encodeCase(
      `${format}_encode`,
      "Every finite grid value, every midpoint between neighbours (ties to the even code), the " +
        "float32 values just above and below each midpoint, saturation above the largest finite " +
        `value, ±Inf (${
          format === "e4m3" ? "NaN code 0x7F/0xFF: E4M3 has no infinity" : "0x7C/0xFC"
        }), ` +
        "-0, values below half the smallest subnormal (→ ±0).",
      fp8EncodeInputs(format),
      format,
    ));
  }
  for (const format of ["e4m3", "e5m2"] as const) {
    cases.push(quantizeCase(
      `quantize_${format}_doc`,
      "The module example [1, -0.3, 0.01]: s = FMT_MAX.",
      matrix(1, 3, [1, -0.3, 0.01]),
      format,
    ));
    cases.push(quantizeCase(
      `quantize_${format}_edges`,
      "Signed zeros, float32 subnormals and magnitudes from 1e-8 to 7.25 in one tensor.",
      inputs.rowsMatrix([[-0, 0, 1e-40, -MIN_SUBNORMAL_F32], [1e-3, -2e-3, 5, -7.25], [
        1e-8,
        3,
        0.1,
        -0.1,
      ]]),
      format,
    ));
    cases.push(quantizeCase(
      `quantize_${format}_zeros`,
      "All zeros: amax = 0, s = 1, output zeros (signs kept).",
      inputs.rowsMatrix([[0, -0, 0, 0]]),
      format,
    ));
    cases.push(quantizeCase(
      `quantize_${format}_tiny`,
      "amax so small that FMT_MAX / amax overflows float32: s is clamped to the largest float32.",
      inputs.rowsMatrix([[1e-40, -2e-40, 3e-41, 0]]),
      format,
    ));
    shapes.forEach((s, k) => {
      const stream = inputs.STREAM.fp8 + k;
      cases.push(quantizeCase(
        `quantize_${format}_random_${inputs.shapeName(s)}`,
        `Irwin-Hall normal values × 0.02 (seed ${seed}, stream ${stream}).`,
        inputs.irwinHallMatrix(s.rows, s.cols, { seed, stream, scale: 0.02 }),
        format,
      ));
    });
  }
  return cases;
}

const encodeCase = inputs.caseBuilder((x: Float32Array, format: Fp8Format) => {
  const codes = Array.from(x, (v) => encodeFp8(v, format));
  return {
    function: "encodeFp8",
    params: { format },
    inputs: { x: inputs.f32([x.length], x) },
    outputs: {
      codes: inputs.output(inputs.u8([x.length], codes), "encodeFp8(x[i], format)", inputs.EXACT),
      values: inputs.output(
        inputs.f32([x.length], codes.map((c) => decodeFp8(c, format))),
        "decodeFp8(codes[i], format)",
        inputs.EXACT,
      ),
    },
  };
});

const quantizeCase = inputs.caseBuilder((x: Matrix, format: Fp8Format) => {
  const { dequantized, scale } = quantizeFp8(x, { format });
  const codes = Array.from(x.data, (v) => encodeFp8(Math.fround(v * scale), format));
  return {
    function: "quantizeFp8",
    params: { format },
    inputs: { x: inputs.mat(x) },
    outputs: {
      dequantized: inputs.output(
        inputs.mat(dequantized),
        "quantizeFp8(x, { format }).dequantized",
        inputs.EXACT,
      ),
      scale: inputs.output(
        inputs.f32([], [scale]),
        "quantizeFp8(x, { format }).scale",
        inputs.EXACT,
      ),
      codes: inputs.output(
        inputs.u8([x.rows, x.cols], codes),
        "encodeFp8(f32(x · scale), format), the FP8 codes before dequantisation",
        inputs.EXACT,
      ),
    },
  };
});

/** Gated activations use tanh/exp: a port's float32 transcendental functions differ slightly. */
const GATED_TOLERANCE = inputs.allclose(1e-6, 1e-5);

/** One case per activation: the forward and its backward share the inputs. */
function activationCases(
  name: string,
  description: string,
  x: Matrix,
  dy: Matrix,
): TestVectorCase[] {
  const activations: [string, (x: Matrix) => Matrix, (x: Matrix, dy: Matrix) => Matrix][] = [
    ["geglu", geglu, gegluBackward],
    ["swiglu", swiglu, swigluBackward],
  ];
  return activations.map(([fn, forward, backward]) => ({
    name: `${fn}_${name}`,
    function: fn,
    description,
    params: {},
    inputs: { x: inputs.mat(x), dy: inputs.mat(dy) },
    outputs: {
      out: inputs.output(inputs.mat(forward(x)), `${fn}(x)`, GATED_TOLERANCE),
      dx: inputs.output(
        inputs.mat(backward(x, dy)),
        `${fn}Backward(x, dy) = [∂x | ∂gate]`,
        GATED_TOLERANCE,
      ),
    },
  }));
}

export function gatedCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const cases: TestVectorCase[] = [
    ...activationCases(
      "spec9",
      "SPEC §9: [0.5, -1, 2 | 0, 1, -2] → GEGLU [0, -0.841192, -0.090804]; with ∂out = 1, " +
        "∂x = [0, 0.841192, -0.045402], ∂gate = [0.25, -1.082964, -0.172198].",
      matrix(1, 6, SPEC_GEGLU.input),
      matrix(1, 3, [1, 1, 1]),
    ),
    ...activationCases(
      "edges",
      "Gates at ±0, ±1e-30, ±10, ±30, ±100, ±1e4 (saturated activations), subnormal and zero x.",
      matrix(
        2,
        16,
        [
          [1, -1, 2, 0.5, 3, -3, MIN_SUBNORMAL_F32, 0, -0, 0, 1e-30, -1e-30, 10, -10, 30, -30],
          [1, 1, -1, -1, 2, 2, 1e30, -0, 100, -100, 1e4, -1e4, 5, -5, 0.044715, -(2 ** -130)],
        ].flat(),
      ),
      matrix(2, 8, [1, -1, 0.5, 2, 1e-3, -0, 1, 3, 1, -2, 1, 1, 1e-20, 0, -1, 4]),
    ),
  ];
  shapes.forEach((s, k) => {
    const stream = inputs.STREAM.gated + 2 * k;
    cases.push(...activationCases(
      `random_${inputs.shapeName(s)}`,
      `Irwin-Hall normal [x | gate] × 2 (seed ${seed}, stream ${stream}) and ∂out (stream ${
        stream + 1
      }).`,
      inputs.irwinHallMatrix(s.rows, s.cols, { seed, stream, scale: 2 }),
      inputs.irwinHallMatrix(s.rows, s.cols / 2, { seed, stream: stream + 1 }),
    ));
  });
  return cases;
}
