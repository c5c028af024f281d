import { matrix } from "./matrix.ts";
import { SPEC_FP8 } from "./cases.ts";
import { decodeFp8, encodeFp8, FP8_MAX, type Fp8Format, quantizeFp8 } from "./fp8.ts";
import { assert, assertThrows, seededRandom } from "./testing.ts";

const hex = (c: number) => "0x" + c.toString(16).padStart(2, "0");
const grid = (x: number, fmt: Fp8Format) => decodeFp8(encodeFp8(x, fmt), fmt);
const FORMATS: Fp8Format[] = ["e4m3", "e5m2"];

Deno.test("FP8 reproduces SPEC §9 (no scaling)", () => {
  for (const fmt of FORMATS) {
    for (const [x, want] of SPEC_FP8[fmt]) {
      assert(grid(x, fmt) === want, `${fmt}(${x}) = ${grid(x, fmt)}, want ${want}`);
      assert(grid(Math.fround(x), fmt) === want, `${fmt}(f32 ${x}) = ${grid(Math.fround(x), fmt)}`);
    }
  }
});

Deno.test("decodeFp8 gives the OCP values of landmark codes", () => {
  const e4m3: [number, number][] = [
    [0x00, 0],
    [0x01, 2 ** -9],
    [0x07, 7 * 2 ** -9],
    [0x08, 2 ** -6],
    [0x38, 1],
    [0x39, 1.125],
    [0x7e, 448],
    [0x77, 240],
    [0xb8, -1],
    [0xfe, -448],
  ];
  const e5m2: [number, number][] = [
    [0x00, 0],
    [0x01, 2 ** -16],
    [0x03, 3 * 2 ** -16],
    [0x04, 2 ** -14],
    [0x3c, 1],
    [0x3d, 1.25],
    [0x7b, 57344],
    [0x7c, Infinity],
    [0xfc, -Infinity],
    [0xbc, -1],
  ];
  for (const [fmt, cases] of [["e4m3", e4m3], ["e5m2", e5m2]] as const) {
    for (const [code, want] of cases) {
      const got = decodeFp8(code, fmt);
      assert(got === want, `${fmt} ${hex(code)} = ${got}, want ${want}`);
    }
    assert(Object.is(decodeFp8(0x80, fmt), -0), `${fmt} 0x80 must be -0`);
  }
  assert(FP8_MAX.e4m3 === 448 && FP8_MAX.e5m2 === 57344, "FP8_MAX");
});

Deno.test("all 256 codes round-trip; NaN codes decode to NaN; values are float32 and monotone", () => {
  const nanCodes: Record<Fp8Format, number[]> = {
    e4m3: [0x7f, 0xff],
    e5m2: [0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff],
  };
  for (const fmt of FORMATS) {
    let previous = -Infinity;
    for (let code = 0; code < 256; code++) {
      const v = decodeFp8(code, fmt);
      if (nanCodes[fmt].includes(code)) {
        assert(Number.isNaN(v), `${fmt} ${hex(code)} must be NaN, got ${v}`);
        continue;
      }
      assert(!Number.isNaN(v), `${fmt} ${hex(code)} decoded to NaN`);
      assert(Math.fround(v) === v, `${fmt} ${hex(code)} = ${v} is not a float32 value`);
      const back = encodeFp8(v, fmt);
      assert(back === code, `${fmt}: ${hex(code)} → ${v} → ${hex(back)}`);
      if (code < 0x80) {
        assert(
          v > previous || code === 0,
          `${fmt}: codes must increase with value at ${hex(code)}`,
        );
        previous = v;
      } else {
        assert(Object.is(v, -decodeFp8(code - 0x80, fmt)), `${fmt} ${hex(code)} must mirror`);
      }
    }
    assert(encodeFp8(NaN, fmt) === 0x7f, `${fmt}: encode(NaN) must be 0x7f`);
    assert(encodeFp8(-0, fmt) === 0x80 && encodeFp8(0, fmt) === 0, `${fmt}: signed zeros`);
  }
});

Deno.test("ties round to the even mantissa, in normals, subnormals and across binades", () => {
  const cases: [number, Fp8Format, number][] = [
    // E4M3 step 1/8 in [1, 2): 1.0625 between 1 (even) and 1.125 (odd).
    [1.0625, "e4m3", 1],
    [1.1875, "e4m3", 1.25],
    [-1.0625, "e4m3", -1],
    [1.0625 + 2 ** -40, "e4m3", 1.125],
    [1.0625 - 2 ** -40, "e4m3", 1],
    // E4M3 subnormals, step 2^-9: half the smallest goes to 0, 1.5 steps to 2 steps.
    [2 ** -10, "e4m3", 0],
    [-(2 ** -10), "e4m3", -0],
    [2 ** -10 + 2 ** -30, "e4m3", 2 ** -9],
    [1.5 * 2 ** -9, "e4m3", 2 ** -8],
    [2.5 * 2 ** -9, "e4m3", 2 ** -8],
    // Between the largest subnormal 7·2^-9 (odd) and the smallest normal 2^-6 (even).
    [7.5 * 2 ** -9, "e4m3", 2 ** -6],
    // Top of the range: 432 between 416 (odd) and 448 (even).
    [432, "e4m3", 448],
    [424, "e4m3", 416],
    // E5M2 step 1/4 in [1, 2).
    [1.125, "e5m2", 1],
    [1.375, "e5m2", 1.5],
    [2 ** -17, "e5m2", 0],
    [3 * 2 ** -17, "e5m2", 2 ** -15],
    [3.5 * 2 ** -16, "e5m2", 2 ** -14],
    // [32768, 65536) has step 8192: 53248 between 49152 (even) and 57344 (odd).
    [53248, "e5m2", 49152],
    [45056, "e5m2", 49152],
  ];
  for (const [x, fmt, want] of cases) {
    const got = grid(x, fmt);
    assert(Object.is(got, want), `${fmt}(${x}) = ${got}, want ${want}`);
  }
});

Deno.test("finite values beyond the largest saturate; infinities follow the documented rule", () => {
  const cases: [number, Fp8Format, number][] = [
    [449, "e4m3", 0x7e],
    [464, "e4m3", 0x7e], // half-way to the would-be 480
    [1e30, "e4m3", 0x7e],
    [-1e30, "e4m3", 0xfe],
    [Number.MAX_VALUE, "e4m3", 0x7e],
    [Infinity, "e4m3", 0x7f],
    [-Infinity, "e4m3", 0xff],
    [61440, "e5m2", 0x7b], // half-way to 65536
    [1e30, "e5m2", 0x7b],
    [-1e30, "e5m2", 0xfb],
    [Infinity, "e5m2", 0x7c],
    [-Infinity, "e5m2", 0xfc],
    [Number.MIN_VALUE, "e4m3", 0x00],
    [-Number.MIN_VALUE, "e5m2", 0x80],
  ];
  for (const [x, fmt, want] of cases) {
    const got = encodeFp8(x, fmt);
    assert(got === want, `${fmt} encode(${x}) = ${hex(got)}, want ${hex(want)}`);
  }
});

Deno.test("encodeFp8 picks the nearest grid value (brute force over all codes)", () => {
  const rnd = seededRandom(17);
  for (const fmt of FORMATS) {
    const finite: number[] = [];
    for (let c = 0; c < 128; c++) {
      const v = decodeFp8(c, fmt);
      if (Number.isFinite(v)) finite.push(c);
    }
    for (let n = 0; n < 5000; n++) {
      // Magnitudes from deep below the subnormals to above the maximum.
      const x = (rnd() < 0.5 ? -1 : 1) * 2 ** (rnd() * 40 - (fmt === "e4m3" ? 14 : 21));
      const a = Math.abs(x);
      let best = 0, bestDist = Infinity;
      for (const c of finite) {
        const d = Math.abs(decodeFp8(c, fmt) - a);
        if (d < bestDist || (d === bestDist && c % 2 === 0)) {
          best = c;
          bestDist = d;
        }
      }
      if (a > FP8_MAX[fmt]) best = fmt === "e4m3" ? 0x7e : 0x7b;
      const want = (x < 0 ? 0x80 : 0) | best;
      const got = encodeFp8(x, fmt);
      assert(got === want, `${fmt} encode(${x}) = ${hex(got)}, nearest is ${hex(want)}`);
    }
  }
});

Deno.test("quantizeFp8 scales by FMT_MAX / amax, rounds, saturates and divides back", () => {
  const rand = seededRandom(31);
  const rnd = () => rand() - 0.5;
  const values = Array.from({ length: 4 * 16 }, (_, i) => rnd() * 10 ** ((i % 6) - 3));
  const x = matrix(4, 16, values);
  for (const fmt of FORMATS) {
    let amax = 0;
    for (const v of x.data) amax = Math.max(amax, Math.abs(v));
    const { dequantized, scale } = quantizeFp8(x, { format: fmt });
    assert(scale === Math.fround(FP8_MAX[fmt] / amax), `${fmt}: scale ${scale}`);
    assert(dequantized.rows === 4 && dequantized.cols === 16, "shape");
    // Relative error of RNE with m mantissa bits: at most 2^-(m+1) for normal values.
    const m = fmt === "e4m3" ? 3 : 2;
    const smallestNormal = fmt === "e4m3" ? 2 ** -6 : 2 ** -14;
    for (let i = 0; i < x.data.length; i++) {
      const v = x.data[i], q = dequantized.data[i];
      const y = Math.fround(v * scale);
      const want = Math.fround(grid(y, fmt) / scale);
      assert(Object.is(q, want), `${fmt} entry ${i}: ${q} vs ${want}`);
      assert(Math.sign(q) === Math.sign(v) || q === 0, `${fmt} entry ${i}: sign changed`);
      if (Math.abs(y) >= smallestNormal) {
        const rel = Math.abs(q - v) / Math.abs(v);
        assert(rel <= 2 ** -(m + 1) * (1 + 2 ** -20), `${fmt} entry ${i}: relative error ${rel}`);
      }
    }
    const big = x.data.findIndex((v) => Math.abs(v) === amax);
    assert(
      Math.abs(dequantized.data[big] - x.data[big]) <= 2 ** -22 * amax,
      `${fmt}: the amax entry ${x.data[big]} must land on FMT_MAX, got ${dequantized.data[big]}`,
    );
  }
});

Deno.test("quantizeFp8 edge cases: zeros, -0, amax on both signs, tiny amax, empty", () => {
  const zeros = quantizeFp8(matrix(1, 3, [0, -0, 0]), { format: "e4m3" });
  assert(zeros.scale === 1, `amax = 0 must give scale 1, got ${zeros.scale}`);
  assert(Object.is(zeros.dequantized.data[1], -0) && zeros.dequantized.data[0] === 0, "zeros");
  const neg = quantizeFp8(matrix(1, 2, [-2, 1]), { format: "e5m2" });
  assert(neg.scale === 57344 / 2, `scale ${neg.scale}`);
  assert(
    neg.dequantized.data[0] === -2 && neg.dequantized.data[1] === 1,
    `${neg.dequantized.data}`,
  );
  // Saturation after the float32 rounding of x·s: 13·f(448/13) rounds above 448 in float32.
  const sat = quantizeFp8(matrix(1, 2, [13, 1]), { format: "e4m3" });
  assert(Math.fround(13 * sat.scale) > 448, "precondition: x·s rounds above FMT_MAX");
  assert(sat.dequantized.data[0] === Math.fround(448 / sat.scale), `${sat.dequantized.data[0]}`);
  assert(Math.abs(sat.dequantized.data[0] - 13) <= 13 * 2 ** -22, `${sat.dequantized.data[0]}`);
  // amax a float32 subnormal: FMT_MAX / amax overflows float32, so the scale is clamped.
  const tiny = quantizeFp8(matrix(1, 2, [1e-40, -3e-41]), { format: "e4m3" });
  assert(tiny.scale === 3.4028234663852886e38, `clamped scale ${tiny.scale}`);
  for (const v of tiny.dequantized.data) assert(Number.isFinite(v), `tiny: ${v}`);
  assert(
    tiny.dequantized.data[0] !== 0 && tiny.dequantized.data[1] < 0,
    `${tiny.dequantized.data}`,
  );
  const empty = quantizeFp8(matrix(0, 5), { format: "e5m2" });
  assert(empty.scale === 1 && empty.dequantized.data.length === 0, "empty");
});

Deno.test("FP8 functions reject bad input and name the offending value", () => {
  assertThrows(() => encodeFp8(1, "e3m4" as Fp8Format), TypeError, ['"e3m4"']);
  assertThrows(() => decodeFp8(1, "fp8" as Fp8Format), TypeError, ['"fp8"']);
  assertThrows(() => quantizeFp8(matrix(1, 1), { format: "E4M3" as Fp8Format }), TypeError, [
    '"E4M3"',
  ]);
  assertThrows(() => encodeFp8("1" as never, "e4m3"), TypeError, ["number", "string"]);
  for (const bad of [-1, 256, 1.5, NaN]) {
    assertThrows(() => decodeFp8(bad, "e5m2"), RangeError, ["[0, 255]", `got ${bad}`]);
  }
  assertThrows(() => quantizeFp8(matrix(2, 2, [1, 2, NaN, 4]), { format: "e4m3" }), RangeError, [
    "NaN",
    "row 1, column 0",
  ]);
  assertThrows(() => quantizeFp8(matrix(1, 2, [1, Infinity]), { format: "e5m2" }), RangeError, [
    "Infinity",
    "column 1",
  ]);
  assertThrows(() => quantizeFp8(matrix(1, 2), undefined as never), TypeError, [
    "options",
    "undefined",
  ]);
  assertThrows(() => quantizeFp8([1, 2] as never, { format: "e4m3" }), TypeError, ["Float32Array"]);
});
