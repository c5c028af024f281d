/**
 * Test-vector cases of Philox and MVUE sampling (SPEC §2.6–2.7): the SPEC §9 cases from `./cases.ts`, edge cases and
 * seeded random cases, each output computed by the reference oracle. Part of `./vectors.ts`.
 *
 * @module
 */

import { MIN_SUBNORMAL_F32, SPEC_MVUE } from "./cases.ts";
import type { Matrix } from "./matrix.ts";
import { mvue24, mvue24Probabilities, mvue24WithUniforms } from "./mvue.ts";
import { philox4x32, uniform4, uniforms } from "./rng.ts";
import * as inputs from "./_vector_inputs.ts";
import type { TestVectorCase } from "./vectors.ts";
export function philoxCases(): TestVectorCase[] {
  const ones = 0xffffffff;
  const kat: [number[], number[]][] = [
    [[0, 0, 0, 0], [0, 0]],
    [[ones, ones, ones, ones], [ones, ones]],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]],
    [[1, 0, 0, 0], [0, 0]],
    [[0, 1, 0, 0], [0, 0]],
    [[0, 0, 1, 0], [0, 0]],
    [[0, 0, 0, 1], [0, 0]],
    [[0, 0, 0, 0], [1, 0]],
    [[0, 0, 0, 0], [0, 1]],
    [[0x7fffffff, 0x80000000, 0xfffeffff, 0x10000], [0x1ffff, 0xffff]],
  ];
  const counters = kat.flatMap(([c]) => c);
  const keys = kat.flatMap(([, k]) => k);
  const words = kat.flatMap(([c, k]) =>
    philox4x32(c as [number, number, number, number], k as [number, number])
  );
  // (seed, stream, index) triples: seeds past 2^32 (key word 1 in use), extreme streams/indices.
  const triples: [number, number, number][] = [
    [0, 0, 0],
    [1, 0, 0],
    [42, 0, 7],
    [2024, 3, 1000],
    [2 ** 32 - 1, 1, 2],
    [2 ** 32, 0, 0],
    [2 ** 32 + 5, 7, 123456],
    [2 ** 53 - 1, 2 ** 32 - 1, 2 ** 32 - 1],
    [123456789012345, 65536, 65535],
  ];
  const tripleWords = triples.flatMap(([seed, stream, index]) =>
    philox4x32([index, stream, 0, 0], [seed % 2 ** 32, Math.floor(seed / 2 ** 32)])
  );
  const tripleUniforms = triples.flatMap(([seed, stream, index]) => uniform4(seed, stream, index));
  const cases: TestVectorCase[] = [
    {
      name: "kat",
      function: "philox4x32",
      description:
        "Philox4x32-10 known answers: the three Random123 vectors (zeros, all ones, π digits) " +
        "and single-bit counters and keys.",
      params: {},
      inputs: {
        counters: inputs.u32([kat.length, 4], counters),
        keys: inputs.u32([kat.length, 2], keys),
      },
      outputs: {
        words: inputs.output(
          inputs.u32([kat.length, 4], words),
          "philox4x32(counters[i], keys[i])",
          inputs.EXACT,
        ),
      },
    },
    {
      name: "uniform4",
      function: "uniform4",
      description:
        "uniform4(seed, stream, index) for seeds up to 2^53 - 1 (seed = seed_hi · 2^32 + " +
        "seed_lo), streams and indices up to 2^32 - 1; words are the Philox output before the " +
        "word-to-uniform map u = ((x >>> 9) + 0.5) · 2^-23.",
      params: {},
      inputs: {
        seed_lo: inputs.u32([triples.length], triples.map(([s]) => s % 2 ** 32)),
        seed_hi: inputs.u32([triples.length], triples.map(([s]) => Math.floor(s / 2 ** 32))),
        stream: inputs.u32([triples.length], triples.map(([, s]) => s)),
        index: inputs.u32([triples.length], triples.map(([, , i]) => i)),
      },
      outputs: {
        uniforms: inputs.output(
          inputs.f32([triples.length, 4], tripleUniforms),
          "uniform4(seed_hi[i] · 2^32 + seed_lo[i], stream[i], index[i])",
          inputs.EXACT,
        ),
        words: inputs.output(
          inputs.u32([triples.length, 4], tripleWords),
          "philox4x32([index[i], stream[i], 0, 0], [seed_lo[i], seed_hi[i]])",
          inputs.EXACT,
        ),
      },
    },
  ];
  const streams: [number, number, number][] = [[0, 0, 64], [2024, 5, 37], [
    2 ** 40 + 3,
    2 ** 31,
    16,
  ]];
  for (const [seed, stream, count] of streams) {
    cases.push({
      name: `uniforms_seed${seed}_stream${stream}`,
      function: "uniforms",
      description:
        `${count} consecutive uniforms of one stream: entry i is word i % 4 of counter ` +
        `floor(i / 4).`,
      params: { seed, stream, count },
      inputs: {},
      outputs: {
        uniforms: inputs.output(
          inputs.f32([count], uniforms(seed, stream, count)),
          "uniforms(seed, stream, count)",
          inputs.EXACT,
        ),
      },
    });
  }
  return cases;
}

/** MVUE outputs: a port that follows mvue24's float32 operation order matches the selection. */
const MVUE_TOLERANCE = inputs.allclose(0, 1e-5);
const PROBABILITY_TOLERANCE = inputs.allclose(1e-7, 1e-5);

function groupUniforms(seed: number, stream: number, groups: number): Float32Array {
  const u = new Float32Array(2 * groups);
  for (let q = 0; q < groups; q++) {
    const [u0, u1] = uniform4(seed, stream, q);
    u[2 * q] = u0;
    u[2 * q + 1] = u1;
  }
  return u;
}

const mvueSeededCase = inputs.caseBuilder((g: Matrix, seed: number, stream: number) => {
  const u = groupUniforms(seed, stream, g.data.length / 4);
  return {
    function: "mvue24",
    params: { seed, stream },
    inputs: { g: inputs.mat(g), uniforms: inputs.f32([u.length], u) },
    outputs: {
      out: inputs.output(
        inputs.mat(mvue24(g, { seed, stream })),
        "mvue24(g, { seed, stream }) = mvue24WithUniforms(g, uniforms); group q uses " +
          "uniforms[2q], uniforms[2q + 1] = uniform4(seed, stream, q)[0], [1]",
        MVUE_TOLERANCE,
      ),
    },
  };
});

const mvueUniformsCase = inputs.caseBuilder((g: Matrix, u: readonly number[]) => {
  const uniformsF32 = Float32Array.from(u);
  return {
    function: "mvue24WithUniforms",
    inputs: { g: inputs.mat(g), uniforms: inputs.f32([u.length], uniformsF32) },
    outputs: {
      out: inputs.output(
        inputs.mat(mvue24WithUniforms(g, uniformsF32)),
        "mvue24WithUniforms(g, uniforms)",
        MVUE_TOLERANCE,
      ),
    },
  };
});

const probabilitiesCase = inputs.caseBuilder((g: Matrix) => {
  return {
    function: "mvue24Probabilities",
    inputs: { g: inputs.mat(g) },
    outputs: {
      probabilities: inputs.output(
        inputs.mat(mvue24Probabilities(g)),
        "mvue24Probabilities(g)",
        PROBABILITY_TOLERANCE,
      ),
    },
  };
});

export function mvueCases(seed: number, shapes: inputs.Shape[]): TestVectorCase[] {
  const edges = inputs.rowsMatrix([
    [0, 0, 0, 0],
    [0, 0, 3, 0],
    [1, 1, 1, 1],
    [-0, 0, -0, 0],
    [MIN_SUBNORMAL_F32, 0, 0, 0],
    [1e30, 1e30, -1e30, 1e30],
    [1e30, 1e-30, 0, 1],
    [1e20, 1, 1, -1],
    [-1, 2, -3, 4],
    [2 ** -140, -(2 ** -135), 1, 0],
    [0.1, -3, 2, 0.5],
    [-7, 0, 0, 1e-6],
  ]);
  const big = 2 ** 20;
  const third = Math.fround(1 / 3);
  const cases: TestVectorCase[] = [
    mvueUniformsCase(
      "spec9_uniforms",
      "SPEC §9: [0.1, -3, 2, 0.5] with (u0, u1) = (0.5, 0.5) picks 1 then 2 → " +
        "(0, -3.349730, 2.466887, 0).",
      inputs.rowsMatrix([SPEC_MVUE.w]),
      SPEC_MVUE.uniforms,
    ),
    mvueUniformsCase(
      "uniform_boundaries",
      "Groups [2^20 × 4] (t = 1/4 exactly, so the cumulative sums are 0.25, 0.5, 0.75, 1): " +
        "uniforms exactly on a cumulative value pick the lower index (inclusive ≤), the smallest " +
        "(2^-24) and largest (1 - 2^-24) uniforms, and u1 = f32(1/3) on the second pick's first " +
        "boundary.",
      inputs.rowsMatrix([
        [big, big, big, big],
        [big, -big, big, -big],
        [big, big, big, big],
        [-big, big, -big, big],
        [big, big, big, big],
        [big, big, big, big],
      ]),
      [
        [0.25, third],
        [0.5, third],
        [0.75, 1 - 2 ** -24],
        [Math.fround(0.25 + 2 ** -24), 2 ** -24],
        [2 ** -24, 0.5],
        [1 - 2 ** -24, 1 - 2 ** -24],
      ].flat(),
    ),
    mvueSeededCase(
      "edges",
      `Zeros, signed zeros, a single non-zero, all-equal, subnormals, sums near 4e30, one ` +
        `dominant entry (seed ${seed}, stream 0).`,
      edges,
      seed,
      0,
    ),
    mvueSeededCase(
      "large_seed",
      "The SPEC §9 group repeated, sampled with a seed above 2^32 and the largest stream.",
      inputs.rowsMatrix(Array.from({ length: 8 }, () => SPEC_MVUE.w)),
      2 ** 53 - 1,
      2 ** 32 - 1,
    ),
  ];
  shapes.forEach((s, k) => {
    const stream = inputs.STREAM.mvueSampling + k;
    cases.push(mvueSeededCase(
      `random_${inputs.shapeName(s)}`,
      `Irwin-Hall normal gradients (seed ${seed}, input stream ${
        inputs.STREAM.mvue + k
      }), sampled ` +
        `with seed ${seed}, stream ${stream}.`,
      inputs.irwinHallMatrix(s.rows, s.cols, { seed, stream: inputs.STREAM.mvue + k }),
      seed,
      stream,
    ));
  });
  cases.push(
    probabilitiesCase(
      "probabilities_spec9",
      "SPEC §9 inclusion probabilities: [0.1,-3,2,0.5] → (0.050133, 0.895595, 0.810738, " +
        "0.243534); [1,2,3,4] → (0.234524, 0.441270, 0.608333, 0.715873); [1,1,1,1] → 1/2.",
      inputs.rowsMatrix([SPEC_MVUE.w, SPEC_MVUE.ascending.w, SPEC_MVUE.equal.w]),
    ),
    probabilitiesCase("probabilities_edges", "The edge groups of case `edges`.", edges),
    probabilitiesCase(
      "probabilities_random_12x20",
      `Irwin-Hall normal gradients (seed ${seed}, stream ${inputs.STREAM.mvueProbabilities}).`,
      inputs.irwinHallMatrix(12, 20, { seed, stream: inputs.STREAM.mvueProbabilities }),
    ),
  );
  return cases;
}
