/**
 * Per-tensor amax FP8 quantise–dequantise on the GPU (SPEC §2.9), the device twin of `quantizeFp8`
 * of `reference/fp8.ts` (OCP E4M3FN and E5M2, nearest-even, saturating), bit for bit. Three passes,
 * no host round trip: workgroup maxima of `bits & 0x7fffffff`; one workgroup finishes `amax` and
 * writes the 34-word scale buffer (word 0 `s`, word 1 `amax`, words `2n + 2`, `2n + 3` the exact
 * `n / s` for `n = 1..15` as a significand in `[1, 2)` and an `i32` exponent, by integer long
 * division); then one thread per four entries encodes `x·s` with integer operations and dequantises
 * it from the table (codes optionally packed four per `u32`). Device inputs are not checked.
 *
 * @module
 */

import type { Fp8Format } from "../../reference/fp8.ts";
import type { GpuRuntime, KernelSpec } from "../runtime.ts";
import { grid, packParams, WG_1D } from "./_params.ts";
import { wgslBindings, wgslItemMain } from "./_wgsl.ts";
import {
  assertVec4Operands,
  cachedSpec,
  encodeAbsMaxPartials,
  foldPartialsWgsl,
} from "./_sparse.ts";

export type { Fp8Format } from "../../reference/fp8.ts";

/** Words of the scale buffer written by the second pass. */
export const FP8_SCALE_WORDS: number = 34;

interface FormatConstants {
  mantissaBits: number;
  bias: number;
  max: number;
  maxCode: number;
  /** Code of +Inf (E5M2) or of NaN (E4M3, which saturates nothing to Inf). */
  infCode: number;
  hasInfinity: boolean;
}

const FORMATS: Record<Fp8Format, FormatConstants> = {
  e4m3: { mantissaBits: 3, bias: 7, max: 448, maxCode: 0x7e, infCode: 0x7f, hasInfinity: false },
  e5m2: {
    mantissaBits: 2,
    bias: 15,
    max: 57344,
    maxCode: 0x7b,
    infCode: 0x7c,
    hasInfinity: true,
  },
};

function formatOf(format: Fp8Format, action: string): FormatConstants {
  if (format !== "e4m3" && format !== "e5m2") {
    throw new TypeError(
      `Cannot ${action}: unknown FP8 format "${format}", expected "e4m3" or "e5m2"`,
    );
  }
  return FORMATS[format];
}

function f32Bits(v: number): number {
  return new Uint32Array(Float32Array.of(v).buffer)[0];
}

/** WGSL of the correctly rounded positive float32 division (as significand and exponent). */
const EXACT_DIVISION_WGSL = `
// (significand, exponent) of a positive finite float32: value = m · 2^e, m in [2^23, 2^24).
fn fp8_unpack(bits: u32) -> vec2<i32> {
  let fe = (bits >> 23u) & 0xffu;
  var m = bits & 0x7fffffu;
  var e = i32(fe) - 150;
  if (fe == 0u) {
    let shift = countLeadingZeros(m) - 8u;
    m = m << shift;
    e = -149 - i32(shift);
  } else {
    m = m | 0x800000u;
  }
  return vec2<i32>(i32(m), e);
}

// a / b for positive finite float32 bits, rounded to nearest even at 24 bits with an unbounded
// exponent: returns (m, e), value m · 2^e, m in [2^23, 2^24).
fn fp8_divide(a: u32, b: u32) -> vec2<i32> {
  let ua = fp8_unpack(a);
  let ub = fp8_unpack(b);
  var ma = u32(ua.x);
  let mb = u32(ub.x);
  var e = ua.y - ub.y;
  if (ma < mb) {
    ma = ma << 1u;
    e -= 1;
  }
  // Restoring division: q = floor(ma / mb · 2^24), 25 bits; r != 0 is the sticky bit.
  var q = 0u;
  var r = ma;
  for (var i = 0u; i < 25u; i++) {
    q = q << 1u;
    if (r >= mb) {
      r -= mb;
      q |= 1u;
    }
    r = r << 1u;
  }
  var m = q >> 1u;
  var ex = e - 23;
  if ((q & 1u) == 1u && (r != 0u || (m & 1u) == 1u)) { m += 1u; }
  if (m == 0x1000000u) {
    m = 0x800000u;
    ex += 1;
  }
  return vec2<i32>(i32(m), ex);
}
`;

/**
 * The second pass: the final amax, the scale and the table of `n / s` (see the module
 * documentation for the buffer layout). Bindings: `partials`, `scale` (34 words), uniform
 * `{ count }`. One workgroup.
 *
 * @param format `"e4m3"` or `"e5m2"`.
 * @returns The kernel, key `fp8-scale-{format}`.
 * @throws {TypeError} If the format is unknown.
 * @example
 * ```ts
 * import { fp8ScaleKernel } from "./fp8.ts";
 * if (fp8ScaleKernel("e4m3").key !== "fp8-scale-e4m3") throw new Error("unexpected");
 * ```
 */
export function fp8ScaleKernel(format: Fp8Format): KernelSpec {
  const f = formatOf(format, "build the FP8 scale kernel");
  return cachedSpec(
    `fp8-scale-${format}`,
    () =>
      `// FP8 scale (SPEC 2.9), ${format}: s = min(${f.max} / amax, FLOAT32_MAX), and n / s for n < 16.
${EXACT_DIVISION_WGSL}
${
        wgslBindings("count: u32", [
          "read partials: array<u32>",
          "read_write scale: array<u32>",
        ])
      }
${foldPartialsWgsl({ type: "u32", op: "max", components: 1 }, WG_1D)}
  if (lid != 0u) { return; }
  let amax = red[0];
  var s = 0x3f800000u; // 1.0
  if (amax != 0u) {
    let d = fp8_divide(0x${f32Bits(f.max).toString(16)}u, amax);
    let biased = d.y + 150;
    s = select((u32(biased) << 23u) | (u32(d.x) & 0x7fffffu), 0x7f7fffffu, biased >= 255);
  }
  scale[0] = s;
  scale[1] = amax;
  scale[2] = 0u;
  scale[3] = 0u;
  for (var n = 1u; n < 16u; n++) {
    let d = fp8_divide(bitcast<u32>(f32(n)), s);
    scale[2u * n + 2u] = 0x3f800000u | (u32(d.x) & 0x7fffffu);
    scale[2u * n + 3u] = bitcast<u32>(d.y + 23);
  }
}
`,
  );
}

/**
 * The third pass: quantise–dequantise four entries per thread. Bindings: `x`, `scale`,
 * `dequantized`, then `codes` (one `u32` per four entries) when `options.codes`, then uniform
 * `{ quads }`.
 *
 * @param format `"e4m3"` or `"e5m2"`.
 * @param options `codes`: also write the packed codes.
 * @returns The kernel, key `fp8-quantize-{format}` (plus `-codes`).
 * @throws {TypeError} If the format is unknown.
 * @example
 * ```ts
 * import { fp8QuantizeKernel } from "./fp8.ts";
 * const spec = fp8QuantizeKernel("e5m2", { codes: true });
 * if (spec.key !== "fp8-quantize-e5m2-codes") throw new Error("unexpected");
 * ```
 */
export function fp8QuantizeKernel(
  format: Fp8Format,
  options: { codes?: boolean } = {},
): KernelSpec {
  const f = formatOf(format, "build the FP8 quantize kernel");
  const codes = options.codes === true;
  const mb = f.mantissaBits;
  const minExp = 1 - f.bias;
  const specials = f.hasInfinity
    ? `if ((mag >> ${mb}u) == 31u) {
    return bitcast<f32>(sign | select(0x7fc00000u, 0x7f800000u, (mag & 3u) == 0u));
  }`
    : `if (mag == 0x7fu) { return bitcast<f32>(0x7fc00000u); }`;
  return cachedSpec(
    `fp8-quantize-${format}${codes ? "-codes" : ""}`,
    () =>
      `// FP8 ${format} quantise-dequantise (SPEC 2.9), four entries per thread.
struct Params { quads: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> scale: array<u32>;
@group(0) @binding(2) var<storage, read_write> dequantized: array<vec4<f32>>;
${
        codes
          ? `@group(0) @binding(3) var<storage, read_write> codes: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;`
          : "@group(0) @binding(3) var<uniform> p: Params;"
      }

// The ${format} code of a float32 (bits): nearest, ties to even, saturating at +-${f.max}.
fn fp8_encode(bits: u32) -> u32 {
  let sign = (bits >> 24u) & 0x80u;
  let a = bits & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0x7fu; }
  if (a == 0x7f800000u) { return sign | 0x${f.infCode.toString(16)}u; }
  if (a > 0x${f32Bits(f.max).toString(16)}u) { return sign | 0x${f.maxCode.toString(16)}u; }
  if (a < 0x00800000u) { return sign; } // below 2^-126: rounds to zero
  let fe = i32(a >> 23u) - 127;
  let sig = (a & 0x7fffffu) | 0x800000u; // value = sig * 2^(fe - 23)
  var e = max(fe, ${minExp});
  let shift = u32(${23 - mb} + e - fe);
  var n = 0u;
  if (shift < 32u) {
    n = sig >> shift;
    let rem = sig & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (n & 1u) == 1u)) { n += 1u; }
  }
  if (n == ${2 << mb}u) {
    n = ${1 << mb}u;
    e += 1;
  }
  if (n < ${1 << mb}u) { return sign | n; }
  return sign | (u32(e + ${f.bias}) << ${mb}u) | (n - ${1 << mb}u);
}

// code / s, correctly rounded: the code's value is n * 2^k and scale holds n / s.
fn fp8_dequantize(code: u32) -> f32 {
  let sign = (code & 0x80u) << 24u;
  let mag = code & 0x7fu;
  if (mag == 0u) { return bitcast<f32>(sign); }
  ${specials}
  let ef = mag >> ${mb}u;
  let mf = mag & ${(1 << mb) - 1}u;
  let n = select(${1 << mb}u + mf, mf, ef == 0u);
  let k = select(i32(ef) - ${f.bias + mb}, ${minExp - mb}, ef == 0u);
  let mant = scale[2u * n + 2u];
  let ex = bitcast<i32>(scale[2u * n + 3u]) + k;
  var v: f32;
  if (ex >= -126 && ex <= 127) {
    v = bitcast<f32>((u32(ex + 127) << 23u) | (mant & 0x7fffffu));
  } else {
    v = ldexp(bitcast<f32>(mant), ex);
  }
  return bitcast<f32>(bitcast<u32>(v) | sign);
}

${wgslItemMain("i", "p.quads")}
  let y = bitcast<vec4<u32>>(x[i] * bitcast<f32>(scale[0]));
  let c = vec4<u32>(fp8_encode(y.x), fp8_encode(y.y), fp8_encode(y.z), fp8_encode(y.w));
  dequantized[i] = vec4<f32>(
    fp8_dequantize(c.x),
    fp8_dequantize(c.y),
    fp8_dequantize(c.z),
    fp8_dequantize(c.w),
  );
${codes ? "  codes[i] = c.x | (c.y << 8u) | (c.z << 16u) | (c.w << 24u);" : ""}
}
`,
  );
}

/** The tensor of {@linkcode encodeQuantizeFp8}. */
export interface QuantizeFp8Input {
  /** `size` finite float32 values. */
  x: GPUBuffer;
  /** Number of entries. */
  size: number;
}

/** Options of {@linkcode encodeQuantizeFp8}. */
export interface EncodeQuantizeFp8Options {
  /** `"e4m3"` (forward operands) or `"e5m2"` (gradients). */
  format: Fp8Format;
  /** Also write the FP8 codes, packed four per `u32` (default false). */
  codes?: boolean;
}

/** Output buffers of {@linkcode encodeQuantizeFp8}. */
export interface QuantizeFp8Buffers {
  /** `size` float32 values: each entry quantised to FP8 and divided back by the scale. */
  dequantized: GPUBuffer;
  /**
   * The {@linkcode FP8_SCALE_WORDS}-word scale buffer: word 0 is the scale `s` (float32; the FP8
   * values are `dequantized · s`), word 1 is `amax` (float32).
   */
  scale: GPUBuffer;
  /** With `options.codes`: `⌈size / 4⌉` words, entry `4w + j`'s code in byte `j` of word `w`. */
  codes?: GPUBuffer;
}

/**
 * Records per-tensor amax FP8 quantise–dequantise of `size` float32 entries (SPEC §2.9; the device
 * twin of `quantizeFp8`). `x` is not modified.
 *
 * @param rt The runtime.
 * @param input `x`, `size` finite float32 values.
 * @param options `format`: `"e4m3"` or `"e5m2"`; `codes`: also return the packed codes.
 * @returns New pooled buffers (the caller frees them): the dequantised values, the scale buffer
 * and optionally the codes.
 * @throws {TypeError} If the format is unknown.
 * @throws {RangeError} If `size` is invalid or `x` holds fewer than `16·⌈size / 4⌉` bytes (pooled
 * buffers always suffice).
 * @example
 * ```ts
 * import { GpuRuntime } from "../runtime.ts";
 * import { encodeQuantizeFp8 } from "./fp8.ts";
 * const rt = await GpuRuntime.create();
 * const x = rt.upload(new Float32Array([1, -0.3, 0.01]));
 * const { dequantized, scale } = encodeQuantizeFp8(rt, { x, size: 3 }, { format: "e4m3" });
 * const [d, s] = (await rt.readMany([{ buffer: dequantized, bytes: 12 }, { buffer: scale, bytes: 4 }]))
 *   .map((b) => new Float32Array(b));
 * rt.destroy();
 * if (s[0] !== 448 || d[0] !== 1 || d[1] !== Math.fround(-128 / 448)) throw new Error("unexpected");
 * ```
 */
export function encodeQuantizeFp8(
  rt: GpuRuntime,
  input: QuantizeFp8Input,
  options: EncodeQuantizeFp8Options,
): QuantizeFp8Buffers {
  const action = "quantize to FP8 on the GPU";
  const { x, size } = input, format = options.format;
  formatOf(format, action);
  const quads = assertVec4Operands(size, { x }, action);
  const { partials, count } = encodeAbsMaxPartials(rt, x, size);
  const scale = rt.alloc(4 * FP8_SCALE_WORDS);
  const dequantized = rt.alloc(16 * quads);
  const codes = options.codes ? rt.alloc(4 * quads) : undefined;
  rt.dispatch(fp8ScaleKernel(format), [partials, scale], [1], packParams([count]));
  rt.free(partials);
  if (quads > 0) {
    const spec = fp8QuantizeKernel(format, { codes: options.codes });
    const outs = codes ? [dequantized, codes] : [dequantized];
    rt.dispatch(spec, [x, scale, ...outs], grid(quads), packParams([quads]));
  }
  return codes ? { dequantized, scale, codes } : { dequantized, scale };
}
