import type { Matrix } from "../reference/matrix.ts";
import {
  decodeSafetensors,
  type SafetensorsContents,
  type SafetensorsTensor,
} from "../core/safetensors.ts";
import { encodeTestVectorFamily } from "../core/test_vectors.ts";
import { compress24, decompress24 } from "../reference/compress.ts";
import { flipCount, flipRate } from "../reference/flip_rate.ts";
import { decodeFp8, encodeFp8, type Fp8Format, quantizeFp8 } from "../reference/fp8.ts";
import { geglu, gegluBackward, swiglu, swigluBackward } from "../reference/gated.ts";
import { maskedDecay } from "../reference/masked_decay.ts";
import { mvue24, mvue24Probabilities, mvue24WithUniforms } from "../reference/mvue.ts";
import { prune24, pruneNM } from "../reference/prune.ts";
import { philox4x32, uniform4, uniforms } from "../reference/rng.ts";
import { softThreshold24, ssteScale, type SsteScaleRecipe } from "../reference/soft_threshold.ts";
import {
  transposableMask24,
  transposablePatternIndices,
  transposablePatterns,
} from "../reference/transposable.ts";
import {
  buildTestVectors,
  irwinHallMatrix,
  type TestVectorCaseEntry,
  type TestVectorIndex,
  testVectorIndex,
  uniformIntegerMatrix,
} from "../reference/vectors.ts";
import {
  SPEC_BETA,
  SPEC_COMPRESS,
  SPEC_FP8,
  SPEC_GEGLU,
  SPEC_HARD_24,
  SPEC_MASKED_DECAY,
  SPEC_MVUE,
  SPEC_SOFT_24,
  SPEC_TRANSPOSABLE,
} from "../reference/cases.ts";
import { assert, assertClose, assertEqualArrays, assertThrows } from "../reference/testing.ts";

// ---- small local helpers -------------------------------------------------------------------

const VECTORS_DIR = new URL("../vectors/", import.meta.url);

type TypedArray = SafetensorsTensor["data"];

function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Same dtype, same shape, same bits (so `-0` and `0` differ, as do NaN payloads). */
function assertSameTensor(actual: SafetensorsTensor, expected: SafetensorsTensor, label: string) {
  assert(actual.dtype === expected.dtype, `${label}: dtype ${actual.dtype} vs ${expected.dtype}`);
  assert(
    JSON.stringify(actual.shape) === JSON.stringify(expected.shape),
    `${label}: shape [${actual.shape}] vs [${expected.shape}]`,
  );
  assertEqualArrays(actual.data, expected.data, `${label} (values)`);
  assertEqualArrays(bytesOf(actual.data), bytesOf(expected.data), `${label} (bits)`);
}

function loadCommitted(file: string): SafetensorsContents {
  return decodeSafetensors(Deno.readFileSync(new URL(file, VECTORS_DIR)));
}

function asMatrix(t: SafetensorsTensor, label: string): Matrix {
  assert(t.dtype === "F32" && t.shape.length === 2, `${label}: expected a 2-D F32 tensor`);
  return { rows: t.shape[0], cols: t.shape[1], data: t.data as Float32Array };
}

// The expected tensors, one constructor per dtype the vectors use.
const ARRAYS = { F32: Float32Array, F64: Float64Array, U8: Uint8Array, U32: Uint32Array } as const;
const tensorOf = (dtype: keyof typeof ARRAYS) => (shape: number[], data: ArrayLike<number>) =>
  ({ dtype, shape, data: ARRAYS[dtype].from(data) }) as SafetensorsTensor;
const f32 = tensorOf("F32"), f64 = tensorOf("F64"), u8 = tensorOf("U8"), u32 = tensorOf("U32");
const mat = (m: Matrix): SafetensorsTensor => f32([m.rows, m.cols], m.data);

/**
 * Recomputes a case's outputs from its inputs by calling the reference functions directly; an
 * independent dispatch from the builder's, so a miswired output is caught.
 */
function recompute(
  c: TestVectorCaseEntry,
  input: (name: string) => SafetensorsTensor,
): Record<string, SafetensorsTensor> {
  const w = () => asMatrix(input("w"), `${c.name}/w`);
  const p = c.params;
  switch (c.function) {
    case "prune24": {
      const r = prune24(w());
      return { pruned: mat(r.pruned), mask: u8(input("w").shape, r.mask) };
    }
    case "pruneNM": {
      const r = pruneNM(w(), { n: p.n as number, m: p.m as number });
      return { pruned: mat(r.pruned), mask: u8(input("w").shape, r.mask) };
    }
    case "softThreshold24": {
      const r = softThreshold24(w());
      return { pruned: mat(r.pruned), mask: u8(input("w").shape, r.mask) };
    }
    case "ssteScale":
      return { beta: f64([], [ssteScale(w(), { recipe: p.recipe as SsteScaleRecipe })]) };
    case "transposablePatterns": {
      const words = transposablePatterns();
      const masks: number[] = [];
      for (const word of words) for (let k = 15; k >= 0; k--) masks.push((word >> k) & 1);
      return { words: u32([90], words), masks: u8([90, 4, 4], masks) };
    }
    case "transposableMask24": {
      const x = w();
      const r = transposableMask24(x);
      const blocks = [x.rows / 4, x.cols / 4];
      const retained = new Float64Array(blocks[0] * blocks[1]);
      for (let i = 0; i < x.rows; i++) {
        for (let j = 0; j < x.cols; j++) {
          retained[Math.floor(i / 4) * blocks[1] + Math.floor(j / 4)] += Math.abs(
            r.pruned.data[i * x.cols + j],
          );
        }
      }
      return {
        pruned: mat(r.pruned),
        mask: u8([x.rows, x.cols], r.mask),
        pattern_indices: u8(blocks, transposablePatternIndices(x)),
        retained: f64(blocks, retained),
      };
    }
    case "compress24": {
      const r = compress24(asMatrix(input("a"), `${c.name}/a`));
      return {
        values: mat(r.values),
        meta: u32([r.meta.length], r.meta),
        decompressed: mat(decompress24(r)),
      };
    }
    case "philox4x32": {
      const counters = input("counters").data, keys = input("keys").data;
      const words: number[] = [];
      for (let i = 0; i < counters.length / 4; i++) {
        words.push(...philox4x32(
          [counters[4 * i], counters[4 * i + 1], counters[4 * i + 2], counters[4 * i + 3]],
          [keys[2 * i], keys[2 * i + 1]],
        ));
      }
      return { words: u32([words.length / 4, 4], words) };
    }
    case "uniform4": {
      const lo = input("seed_lo").data, hi = input("seed_hi").data;
      const streams = input("stream").data, indices = input("index").data;
      const u: number[] = [], words: number[] = [];
      for (let i = 0; i < lo.length; i++) {
        u.push(...uniform4(hi[i] * 2 ** 32 + lo[i], streams[i], indices[i]));
        words.push(...philox4x32([indices[i], streams[i], 0, 0], [lo[i], hi[i]]));
      }
      return { uniforms: f32([lo.length, 4], u), words: u32([lo.length, 4], words) };
    }
    case "uniforms":
      return {
        uniforms: f32(
          [p.count as number],
          uniforms(p.seed as number, p.stream as number, p.count as number),
        ),
      };
    case "mvue24": {
      const g = asMatrix(input("g"), `${c.name}/g`);
      const seed = p.seed as number, stream = p.stream as number;
      // The stored uniforms must be the generator's, and both entry points must agree.
      const expected = new Float32Array(g.data.length / 2);
      for (let q = 0; q < expected.length / 2; q++) {
        const [a, b] = uniform4(seed, stream, q);
        expected[2 * q] = a;
        expected[2 * q + 1] = b;
      }
      assertSameTensor(input("uniforms"), f32([expected.length], expected), `${c.name} uniforms`);
      const out = mvue24(g, { seed, stream });
      assertSameTensor(
        mat(mvue24WithUniforms(g, input("uniforms").data as Float32Array)),
        mat(out),
        `${c.name}: mvue24WithUniforms vs mvue24`,
      );
      return { out: mat(out) };
    }
    case "mvue24WithUniforms":
      return {
        out: mat(mvue24WithUniforms(
          asMatrix(input("g"), `${c.name}/g`),
          input("uniforms").data as Float32Array,
        )),
      };
    case "mvue24Probabilities":
      return { probabilities: mat(mvue24Probabilities(asMatrix(input("g"), `${c.name}/g`))) };
    case "maskedDecay":
      return {
        out: mat(maskedDecay(
          asMatrix(input("grad"), `${c.name}/grad`),
          asMatrix(input("w"), `${c.name}/w`),
          input("mask").data as Uint8Array,
          p.alpha as number,
        )),
      };
    case "flipRate": {
      const prev = input("prev_mask").data as Uint8Array;
      const next = input("next_mask").data as Uint8Array;
      return {
        flip_count: u32([], [flipCount(prev, next)]),
        flip_rate: f64([], [flipRate(prev, next)]),
      };
    }
    case "decodeFp8": {
      const codes = input("codes").data;
      const format = p.format as Fp8Format;
      return { values: f32([codes.length], Array.from(codes, (k) => decodeFp8(k, format))) };
    }
    case "encodeFp8": {
      const x = input("x").data;
      const format = p.format as Fp8Format;
      const codes = Array.from(x, (v) => encodeFp8(v, format));
      return {
        codes: u8([x.length], codes),
        values: f32([x.length], codes.map((k) => decodeFp8(k, format))),
      };
    }
    case "quantizeFp8": {
      const x = asMatrix(input("x"), `${c.name}/x`);
      const format = p.format as Fp8Format;
      const r = quantizeFp8(x, { format });
      return {
        dequantized: mat(r.dequantized),
        scale: f32([], [r.scale]),
        codes: u8(
          [x.rows, x.cols],
          Array.from(x.data, (v) => encodeFp8(Math.fround(v * r.scale), format)),
        ),
      };
    }
    case "geglu":
    case "swiglu": {
      const x = asMatrix(input("x"), `${c.name}/x`);
      const dy = asMatrix(input("dy"), `${c.name}/dy`);
      const [forward, backward] = c.function === "geglu"
        ? [geglu, gegluBackward]
        : [swiglu, swigluBackward];
      return { out: mat(forward(x)), dx: mat(backward(x, dy)) };
    }
    default:
      throw new Error(`${c.name}: no re-check for function ${c.function}`);
  }
}

/** Re-checks every case of a decoded file against the reference; returns the number checked. */
function recheckFile(contents: SafetensorsContents, label: string): number {
  const cases = JSON.parse(contents.metadata.cases) as TestVectorCaseEntry[];
  const listed = new Set<string>();
  for (const c of cases) {
    const input = (name: string): SafetensorsTensor => {
      const entry = c.inputs[name];
      assert(entry !== undefined, `${label}/${c.name}: no input "${name}" listed`);
      const t = contents.tensors[entry.tensor];
      assert(t !== undefined, `${label}: tensor ${entry.tensor} missing`);
      return t;
    };
    for (const entry of [...Object.values(c.inputs), ...Object.values(c.outputs)]) {
      const t = contents.tensors[entry.tensor];
      assert(t !== undefined, `${label}: tensor ${entry.tensor} is listed but missing`);
      assert(
        t.dtype === entry.dtype && JSON.stringify(t.shape) === JSON.stringify(entry.shape),
        `${label}: ${entry.tensor} is ${t.dtype} [${t.shape}], listed ${entry.dtype} [${entry.shape}]`,
      );
      listed.add(entry.tensor);
    }
    const fresh = recompute(c, input);
    assert(
      JSON.stringify(Object.keys(fresh).sort()) === JSON.stringify(Object.keys(c.outputs).sort()),
      `${label}/${c.name}: outputs [${Object.keys(c.outputs)}], re-check gives [${
        Object.keys(fresh)
      }]`,
    );
    for (const [name, entry] of Object.entries(c.outputs)) {
      assertSameTensor(contents.tensors[entry.tensor], fresh[name], `${label}/${entry.tensor}`);
    }
  }
  for (const name of Object.keys(contents.tensors)) {
    assert(listed.has(name), `${label}: tensor ${name} is not listed in any case`);
  }
  return cases.length;
}

function committedIndex(): TestVectorIndex {
  return JSON.parse(Deno.readTextFileSync(new URL("index.json", VECTORS_DIR)));
}

// ---- the committed folder ------------------------------------------------------------------

Deno.test("the committed vectors/ folder equals a fresh build, tensor by tensor", () => {
  const set = buildTestVectors();
  const fresh = testVectorIndex(set);
  const committed = committedIndex();
  const regenerate = "regenerate with `deno run -A experiments/export_vectors.ts --out=vectors/`";
  assert(
    JSON.stringify(committed) === JSON.stringify(fresh),
    `vectors/index.json is stale; ${regenerate}`,
  );
  for (const family of set.families) {
    const expected = decodeSafetensors(encodeTestVectorFamily(family, set.seed));
    let actual: SafetensorsContents;
    try {
      actual = loadCommitted(family.file);
    } catch (e) {
      throw new Error(`vectors/${family.file} cannot be read (${e}); ${regenerate}`);
    }
    assert(
      JSON.stringify(actual.metadata) === JSON.stringify(expected.metadata),
      `vectors/${family.file}: __metadata__ is stale; ${regenerate}`,
    );
    const names = Object.keys(expected.tensors).sort();
    assert(
      JSON.stringify(Object.keys(actual.tensors).sort()) === JSON.stringify(names),
      `vectors/${family.file}: tensor names differ from a fresh build; ${regenerate}`,
    );
    for (const name of names) {
      assertSameTensor(
        actual.tensors[name],
        expected.tensors[name],
        `vectors/${family.file} ${name}`,
      );
    }
  }
});

Deno.test("every committed case re-checks bit for bit against the reference functions", () => {
  const index = committedIndex();
  let cases = 0;
  for (const family of index.families) {
    const contents = loadCommitted(family.file);
    assert(contents.metadata.family === family.name, `${family.file}: family metadata`);
    assert(
      contents.metadata.cases === JSON.stringify(family.cases),
      `${family.file}: the metadata's case list differs from index.json`,
    );
    cases += recheckFile(contents, family.file);
  }
  assert(cases > 100, `only ${cases} cases`);
});

Deno.test("the tensor comparison catches a single flipped sign bit", () => {
  const contents = loadCommitted("prune24.safetensors");
  const name = "spec9/output/pruned";
  const original = contents.tensors[name];
  const copy = f32(original.shape, original.data);
  (copy.data as Float32Array)[0] = -(copy.data as Float32Array)[0]; // 0 → -0: equal values
  assertThrows(() => assertSameTensor(copy, original, name), Error, ["bits"]);
  contents.tensors[name] = copy;
  assertThrows(() => recheckFile(contents, "prune24.safetensors"), Error, [name]);
});

Deno.test("SPEC §9 values are in the committed vectors", () => {
  const atol = (bound: number) => ({ atol: bound, rtol: 0 });
  const prune = loadCommitted("prune24.safetensors").tensors;
  assertEqualArrays(
    prune["spec9/output/mask"].data,
    SPEC_HARD_24.flatMap((c) => [0, 1, 2, 3].map((i) => +c.kept.includes(i))),
    "prune24 spec9 mask",
  );
  assertEqualArrays(
    prune["spec9/output/pruned"].data,
    Float32Array.from(SPEC_HARD_24.flatMap((c) => c.out)),
    "pruned",
  );

  const soft = loadCommitted("soft_threshold24.safetensors").tensors;
  assertClose(
    soft["spec9/output/pruned"].data,
    SPEC_SOFT_24.flatMap((c) => c.out),
    atol(1e-7),
    "softThreshold24 spec9",
  );
  assert(soft["beta_spec9/output/beta"].data[0] === SPEC_BETA.beta, "β = 21/17");
  assert(soft["beta_zeros/output/beta"].data[0] === 1, "β of an all-zero S_soft is 1");

  const transposable = loadCommitted("transposable24.safetensors").tensors;
  assertEqualArrays(
    transposable["spec9/output/pattern_indices"].data,
    SPEC_TRANSPOSABLE.map((c) => c.pattern),
    "patterns",
  );
  assertEqualArrays(
    transposable["spec9/output/retained"].data,
    SPEC_TRANSPOSABLE.map((c) => c.retained),
    "retained",
  );
  assert(transposable["patterns/output/words"].data[0] === 0xcc33, "pattern #0");

  const compressed = loadCommitted("compress24.safetensors").tensors;
  assertEqualArrays(compressed["spec9/output/values"].data, SPEC_COMPRESS.values, "values");
  const [c0, c1, c2, c3] = SPEC_COMPRESS.codes;
  assertEqualArrays(
    compressed["spec9/output/meta"].data,
    [c0 | (c1 << 4) | (c2 << 8) | (c3 << 12)],
    "meta",
  );

  const mvue = loadCommitted("mvue24.safetensors").tensors;
  assertClose(mvue["spec9_uniforms/output/out"].data, SPEC_MVUE.sampled, atol(1e-5), "mvue (½,½)");
  assertClose(
    mvue["probabilities_spec9/output/probabilities"].data,
    [...SPEC_MVUE.p, ...SPEC_MVUE.ascending.p, 0.5, 0.5, 0.5, 0.5],
    atol(1e-6),
    "p",
  );

  const decay = loadCommitted("masked_decay.safetensors").tensors;
  assertClose(decay["spec9/output/out"].data, SPEC_MASKED_DECAY.out, atol(1e-6), "masked decay");

  const fp8 = loadCommitted("fp8.safetensors").tensors;
  for (const format of ["e4m3", "e5m2"] as const) {
    assertEqualArrays(
      fp8[`${format}_spec9/output/values`].data,
      SPEC_FP8[format].map(([, rounded]) => rounded),
      format,
    );
  }
  assert(fp8["e4m3_table/output/values"].data[0x7e] === 448, "E4M3 max");
  assert(fp8["e5m2_table/output/values"].data[0x7b] === 57344, "E5M2 max");

  const gated = loadCommitted("gated.safetensors").tensors;
  const gatedTol = atol(1e-6);
  assertClose(gated["geglu_spec9/output/out"].data, SPEC_GEGLU.out, gatedTol, "GEGLU");
  assertClose(
    gated["geglu_spec9/output/dx"].data,
    [...SPEC_GEGLU.dx, ...SPEC_GEGLU.dgate],
    gatedTol,
    "GEGLU backward",
  );

  const philox = loadCommitted("philox.safetensors").tensors;
  assertEqualArrays(
    philox["kat/output/words"].data.subarray(0, 4),
    [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    "Random123 zero vector",
  );
});

// ---- the builder ---------------------------------------------------------------------------

Deno.test("encoded families round-trip through decodeSafetensors with their case list", () => {
  const set = buildTestVectors({ seed: 7 });
  for (const family of set.families) {
    const { tensors, metadata } = decodeSafetensors(encodeTestVectorFamily(family, set.seed));
    assert(metadata.seed === "7" && metadata.family === family.name, `${family.name} metadata`);
    const listed = JSON.parse(metadata.cases) as TestVectorCaseEntry[];
    assert(listed.length === family.cases.length, `${family.name}: case count`);
    for (const c of family.cases) {
      for (const [name, t] of Object.entries(c.inputs)) {
        assertSameTensor(tensors[`${c.name}/input/${name}`], t, `${c.name}/input/${name}`);
      }
      for (const [name, o] of Object.entries(c.outputs)) {
        assertSameTensor(tensors[`${c.name}/output/${name}`], o.tensor, `${c.name}/output/${name}`);
      }
    }
    assert(recheckFile({ tensors, metadata }, family.file) === family.cases.length, "re-check");
  }
});

Deno.test("the seed moves the random inputs only; a rebuild is identical", () => {
  const a = buildTestVectors(), b = buildTestVectors({ seed: 99 });
  const again = buildTestVectors({ seed: 2024, large: false });
  const input = (set: typeof a, family: string, c: string, name: string) =>
    set.families.find((f) => f.name === family)!.cases.find((x) => x.name === c)!.inputs[name];
  assertSameTensor(input(b, "prune24", "spec9", "w"), input(a, "prune24", "spec9", "w"), "spec9");
  const ra = input(a, "prune24", "random_12x20", "w").data;
  const rb = input(b, "prune24", "random_12x20", "w").data;
  assert(ra.some((v, i) => v !== rb[i]), "a different seed gave the same random input");
  for (let f = 0; f < a.families.length; f++) {
    const x = encodeTestVectorFamily(a.families[f], a.seed);
    const y = encodeTestVectorFamily(again.families[f], again.seed);
    assertEqualArrays(x, y, `rebuild of ${a.families[f].name}`);
  }
});

Deno.test("every case has the expected kinds, unique names, and exact masks, codes and words", () => {
  const index = testVectorIndex(buildTestVectors());
  for (const family of index.families) {
    const names = family.cases.map((c) => c.name);
    assert(new Set(names).size === names.length, `${family.name}: duplicate case names`);
    for (const c of family.cases) {
      for (const [name, o] of Object.entries(c.outputs)) {
        if (o.dtype !== "F32" && o.dtype !== "F64") {
          assert(o.tolerance.kind === "exact", `${c.name}/${name}: ${o.dtype} must be exact`);
        }
        if (o.tolerance.kind === "allclose") {
          assert(o.tolerance.rtol <= 1e-4 && o.tolerance.atol <= 1e-6, `${c.name}/${name} tol`);
        }
      }
    }
    if (family.name !== "philox") {
      assert(names.some((n) => n.includes("spec9") || n === "doc_example"), `${family.name}: §9`);
      assert(names.some((n) => n.includes("random_64x128")), `${family.name}: random 64×128`);
      assert(!names.some((n) => n.includes("768x3072")), `${family.name}: large without large`);
    }
  }
  const mvue = index.families.find((f) => f.name === "mvue24")!;
  for (const c of mvue.cases.filter((x) => x.function === "mvue24")) {
    assert(typeof c.params.seed === "number" && typeof c.params.stream === "number", c.name);
    assert(c.inputs.uniforms !== undefined, `${c.name}: uniforms must be stored`);
  }
});

Deno.test("buildTestVectors rejects bad options", () => {
  assertThrows(() => buildTestVectors({ seed: -1 }), RangeError, ["seed", "-1"]);
  assertThrows(() => buildTestVectors({ seed: 1.5 }), RangeError, ["seed", "1.5"]);
  assertThrows(() => buildTestVectors({ seed: 2 ** 53 }), RangeError, ["seed"]);
  assertThrows(
    () => buildTestVectors({ large: "yes" as unknown as boolean }),
    TypeError,
    ["large", "yes"],
  );
  assertThrows(
    () => buildTestVectors(null as unknown as { seed: number }),
    TypeError,
    ["options", "null"],
  );
});

// ---- the input generators ------------------------------------------------------------------

Deno.test("irwinHallMatrix follows its formula and is roughly standard normal", () => {
  const m = irwinHallMatrix(64, 128, { seed: 5, stream: 9 });
  for (const i of [0, 1, 777, 64 * 128 - 1]) {
    const [u0, u1, u2, u3] = uniform4(5, 9, i);
    assert(m.data[i] === Math.fround((u0 + u1 + u2 + u3 - 2) * Math.sqrt(3)), `entry ${i}`);
  }
  let sum = 0, squares = 0;
  for (const v of m.data) {
    sum += v;
    squares += v * v;
    assert(Math.abs(v) <= 2 * Math.sqrt(3), `value ${v} outside ±2√3`);
  }
  const n = m.data.length, mean = sum / n, variance = squares / n - mean * mean;
  // Standard errors: 1/√8192 ≈ 0.011 for the mean, about 0.013 for the variance.
  assert(Math.abs(mean) < 0.05, `mean ${mean}`);
  assert(Math.abs(variance - 1) < 0.06, `variance ${variance}`);
  const scaled = irwinHallMatrix(2, 4, { seed: 5, stream: 9, scale: 0.5 });
  // Halving is exact, so scaling before or after the float32 rounding agrees.
  assert(scaled.data[3] === m.data[3] * 0.5, `scale: ${scaled.data[3]} vs ${m.data[3]} / 2`);
  assertThrows(() => irwinHallMatrix(2, 4, { seed: -1, stream: 0 }), RangeError, ["seed"]);
  assertThrows(() => irwinHallMatrix(2, 4, { seed: 1, stream: 2 ** 32 }), RangeError, ["stream"]);
});

Deno.test("uniformIntegerMatrix covers [low, high] evenly and rejects bad bounds", () => {
  const m = uniformIntegerMatrix(40, 50, { seed: 3, stream: 1, low: -3, high: 3 });
  const u = uniforms(3, 1, 2000);
  const counts = new Map<number, number>();
  for (let i = 0; i < m.data.length; i++) {
    assert(m.data[i] === -3 + Math.floor(u[i] * 7), `entry ${i}`);
    counts.set(m.data[i], (counts.get(m.data[i]) ?? 0) + 1);
  }
  assert(counts.size === 7, `values seen: ${[...counts.keys()]}`);
  for (const [v, k] of counts) assert(Math.abs(k - 2000 / 7) < 60, `value ${v} drawn ${k} times`);
  assertThrows(
    () => uniformIntegerMatrix(1, 4, { seed: 1, stream: 0, low: 2, high: 1 }),
    RangeError,
    ["low = 2", "high = 1"],
  );
  assertThrows(
    () => uniformIntegerMatrix(1, 4, { seed: 1, stream: 0, low: 0.5, high: 1 }),
    RangeError,
    ["low = 0.5"],
  );
});
