/**
 * WebAssembly text of the CPU backend's SIMD `exp` kernels, the source of the bytes in
 * `_exp_wasm_bytes.ts` (regenerate with `core/cpu/_gen_exp_wasm.ts`; a test checks they match).
 * Float64 (two lanes per `v128`), valid for `x ≤ 0` (and NaN, −Infinity), the only arguments the
 * backend passes: `x = (k/2)·ln 2 + r`, `|r| ≤ ln2/4`, `exp(x) = 2^⌊k/2⌋ · (√2 if k is odd) · P(r)`,
 * `P` the degree-10 Taylor polynomial; 0 below −708 (where `e^x` < 3.4e-308). Float32 (four lanes,
 * the cross-entropy's `exp(z − max)`): `2^k·P(r)`, `|r| ≤ 0.347`, `P` of degree 7; 0 below −87.
 * Error bounds: SPEC §10.6. Private to `core/cpu/`.
 *
 * @module
 */

import { sparseWatFunctions } from "./_sparse_wasm_source.ts";

/** Below this argument the kernels return 0 (the scale 2^⌊k/2⌋ stays a normal double above it). */
export const EXP_WASM_UNDERFLOW = -708;
/** Taylor degree of `P`: the truncation `(ln2/4)^11/11!` is below 1.1e-16. */
export const EXP_WASM_DEGREE = 10;
/** Below this argument the float32 kernel returns 0 (`2^k` stays a normal float32 above it). */
export const EXP_F32_UNDERFLOW = -87;
/** Taylor degree of the float32 `P` on `|r| ≤ 0.347`: truncation below 0.2 float32 rounding units. */
export const EXP_F32_DEGREE = 7;
/** The float32 kernel's relative error bound (SPEC §10.6), in units of `2^-24`, above the flush. */
export const EXP_F32_ERROR_UNITS = 4.3;

/** A double literal that round-trips exactly (JS prints the shortest such decimal). */
const fmt = (x: number) => (Number.isFinite(x) ? String(x) : x > 0 ? "inf" : "-inf");

/** The constants of `expInto`, as `[local name, value]`. */
function expConstants(): [string, number][] {
  // fdlibm's split of ln 2 (the high part has 32 trailing zero bits), halved exactly.
  return [
    ["twoOverLn2", 2 / Math.LN2],
    ["ln2HalfHi", 6.93147180369123816490e-01 / 2],
    ["ln2HalfLo", 1.90821492927058770002e-10 / 2],
    ["half", 0.5],
    ["sqrt2", Math.SQRT2],
    ["one", 1],
    // 2^m from the bits of m + 2^52 + 1023 (exact for small integers m) shifted into the exponent.
    ["magic", 2 ** 52 + 1023],
    ["underflow", EXP_WASM_UNDERFLOW],
    ...Array.from(
      { length: EXP_WASM_DEGREE + 1 },
      (_, d) => [`c${d}`, 1 / factorial(d)] as [string, number],
    ),
  ];
}

/** The float32 kernel's constants (`f` prefix), as `[local name, value]` (rounded to float32). */
function expF32Constants(): [string, number][] {
  return [
    ["fLog2e", Math.LOG2E],
    // ln 2 = fC1 + fC2, fC1 with 15 significant bits: k·fC1 is exact for |k| < 2^9.
    ["fC1", 0.693145751953125],
    ["fC2", Math.LN2 - 0.693145751953125],
    ["fUnderflow", EXP_F32_UNDERFLOW],
    ["fRound", 1.5 * 2 ** 23],
    ...Array.from(
      { length: EXP_F32_DEGREE + 1 },
      (_, d) => [`f${d}`, 1 / factorial(d)] as [string, number],
    ),
  ].map(([name, value]) => [name, Math.fround(value as number)] as [string, number]);
}

/** Locals holding `constants` and the statements setting them once before a loop (V8 rebuilds a
 * `v128.const` with two or three instructions at every use). */
function constantLocals(constants: [string, number][], lanes: "f64x2" | "f32x4") {
  const splat = (v: number) => Array(lanes === "f64x2" ? 2 : 4).fill(fmt(v)).join(" ");
  return {
    locals: constants.map(([name]) => `(local $${name} v128)`).join(" "),
    set: constants.map(([name, value]) =>
      `(local.set $${name} (v128.const ${lanes} ${splat(value)}))`
    ).join("\n    "),
  };
}
const F64 = constantLocals(expConstants(), "f64x2");
const F32 = constantLocals(expF32Constants(), "f32x4");

/**
 * Statements computing `exp` of the v128 local `$x<s>` into `$e<s>` (locals `$k $r $poly $m` with
 * the same suffix, so two independent chains can interleave).
 */
function expInto(s: string): string {
  const get = (name: string) => `(local.get $${name}${s})`;
  const c = (name: string) => `(local.get $${name})`;
  let horner = c(`c${EXP_WASM_DEGREE}`);
  for (let d = EXP_WASM_DEGREE - 1; d >= 0; d--) {
    horner = `(f64x2.add (f64x2.mul ${horner} ${get("r")}) ${c(`c${d}`)})`;
  }
  return `
    (local.set $k${s} (f64x2.nearest (f64x2.mul ${get("x")} ${c("twoOverLn2")})))
    (local.set $r${s} (f64x2.sub
      (f64x2.sub ${get("x")} (f64x2.mul ${get("k")} ${c("ln2HalfHi")}))
      (f64x2.mul ${get("k")} ${c("ln2HalfLo")})))
    (local.set $poly${s} ${horner})
    (local.set $m${s} (f64x2.floor (f64x2.mul ${get("k")} ${c("half")})))
    (local.set $e${s} (f64x2.mul
      (f64x2.mul ${get("poly")}
        (v128.bitselect ${c("sqrt2")} ${c("one")}
          (f64x2.ne ${get("k")} (f64x2.add ${get("m")} ${get("m")}))))
      (i64x2.shl (f64x2.add ${get("m")} ${c("magic")}) (i32.const 52))))
    (local.set $e${s} (v128.andnot ${get("e")} (f64x2.lt ${get("x")} ${c("underflow")})))`;
}

/**
 * Statements computing the float32 `exp(z − m)` of the v128 locals `$z<s>` (four lanes each,
 * `$negM` holding `−m`) into `$fe<s>`, for each suffix `s`, interleaved so the independent chains
 * overlap: `d = z − m` rounded and its exact error `e` (Knuth's TwoSum), `k = round(d·log2 e)`,
 * `r = (d − k·C1) − k·C2 + e` (the first difference exact), `2^k·P(r)`; 0 where `d < −87`.
 */
function expF32Into(suffixes: string[]): string {
  const c = (name: string) => `(local.get $${name})`;
  const steps = (s: string) => {
    const get = (name: string) => `(local.get $${name}${s})`;
    let horner = c(`f${EXP_F32_DEGREE}`);
    for (let d = EXP_F32_DEGREE - 1; d >= 0; d--) {
      horner = `(f32x4.add (f32x4.mul ${horner} ${get("fr")}) ${c(`f${d}`)})`;
    }
    return [
      `(local.set $fd${s} (f32x4.add ${get("z")} ${c("negM")}))`,
      `(local.set $fa${s} (f32x4.sub ${get("fd")} ${c("negM")}))`,
      `(local.set $fe${s} (f32x4.add (f32x4.sub ${get("z")} ${get("fa")})
        (f32x4.sub ${c("negM")} (f32x4.sub ${get("fd")} ${get("fa")}))))`,
      // t = d·log2 e + 1.5·2^23 holds k = round(d·log2 e) in its low mantissa bits.
      `(local.set $ft${s} (f32x4.add (f32x4.mul ${get("fd")} ${c("fLog2e")}) ${c("fRound")}))`,
      `(local.set $fk${s} (f32x4.sub ${get("ft")} ${c("fRound")}))`,
      `(local.set $fr${s} (f32x4.add
        (f32x4.sub (f32x4.sub ${get("fd")} (f32x4.mul ${get("fk")} ${c("fC1")}))
          (f32x4.mul ${get("fk")} ${c("fC2")}))
        ${get("fe")}))`,
      `(local.set $fe${s} (f32x4.mul ${horner}
        (i32x4.shl (i32x4.add ${get("ft")} ${c("fBias")}) (i32.const 23))))`,
      `(local.set $fe${s} (v128.andnot ${get("fe")} (f32x4.lt ${get("fd")} ${c("fUnderflow")})))`,
    ];
  };
  const all = suffixes.map(steps);
  return all[0].map((_, i) => all.map((list) => list[i]).join("\n      ")).join("\n      ");
}

/**
 * Statements of one AdamW step on two float64 lanes taken from the float32 vectors `$p4 $g4 $m4
 * $v4` by `lanes` (low or high half), into `$p $m $v`, as `adamwRange`: the scaled gradient
 * rounded to float32, each moment rounded to float32 before its bias correction; a frozen `v` kept.
 */
function adamwHalf(lanes: (vector: string) => string): string {
  const f32 = (x: string) => `(f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero ${x}))`;
  const get = (name: string) => `(local.get $${name})`;
  return `
      (local.set $g ${f32(`(f64x2.mul (f64x2.promote_low_f32x4 ${lanes("g4")}) ${get("s")})`)})
      (local.set $m ${
    f32(`(f64x2.add (f64x2.mul ${get("b1")} (f64x2.promote_low_f32x4 ${lanes("m4")}))
        (f64x2.mul ${get("ob1")} ${get("g")}))`)
  })
      (local.set $v (f64x2.promote_low_f32x4 ${lanes("v4")}))
      (if (i32.eqz ${get("frozen")}) (then (local.set $v ${
    f32(`(f64x2.add (f64x2.mul ${get("b2")} ${get("v")})
        (f64x2.mul (f64x2.mul ${get("ob2")} ${get("g")}) ${get("g")}))`)
  })))
      (local.set $p (f64x2.promote_low_f32x4 ${lanes("p4")}))
      (local.set $p (f64x2.sub ${get("p")} (f64x2.mul ${get("lr")} (f64x2.add
        (f64x2.div (f64x2.div ${get("m")} ${get("c1")})
          (f64x2.add (f64x2.sqrt (f64x2.div ${get("v")} ${get("c2")})) ${get("eps")}))
        (f64x2.mul ${get("wd")} ${get("p")})))))`;
}

/** The function `adamw_f32` (see {@linkcode expWat}). */
function adamwFunction(): string {
  const scalars = ["lr", "b1", "b2", "eps", "wd", "c1", "c2", "s"];
  const low = (v: string) => `(local.get $${v})`;
  const high = (v: string) =>
    `(i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $${v}) (local.get $${v}))`;
  const join = (a: string, b: string) =>
    `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (f32x4.demote_f64x2_zero (local.get $${a}))
        (f32x4.demote_f64x2_zero (local.get $${b})))`;
  const at = (base: string) => `(i32.add (local.get $${base}) (local.get $i))`;
  return `(func (export "adamw_f32") (param $pp i32) (param $gp i32) (param $mp i32) (param $vp i32)
      (param $n i32) ${scalars.map((x) => `(param $${x}_ f64)`).join(" ")} (param $frozen i32)
    (local $i i32) (local $end i32) (local $p4 v128) (local $g4 v128) (local $m4 v128) (local $v4 v128)
    (local $p v128) (local $g v128) (local $m v128) (local $v v128)
    (local $pLow v128) (local $mLow v128) (local $vLow v128) (local $ob1 v128) (local $ob2 v128)
    ${scalars.map((x) => `(local $${x} v128)`).join(" ")}
    ${scalars.map((x) => `(local.set $${x} (f64x2.splat (local.get $${x}_)))`).join("\n    ")}
    (local.set $ob1 (f64x2.splat (f64.sub (f64.const 1) (local.get $b1_))))
    (local.set $ob2 (f64x2.splat (f64.sub (f64.const 1) (local.get $b2_))))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $p4 (v128.load ${at("pp")}))
      (local.set $g4 (v128.load ${at("gp")}))
      (local.set $m4 (v128.load ${at("mp")}))
      (local.set $v4 (v128.load ${at("vp")}))
      ${adamwHalf(low)}
      (local.set $pLow (local.get $p))
      (local.set $mLow (local.get $m))
      (local.set $vLow (local.get $v))
      ${adamwHalf(high)}
      (v128.store ${at("pp")} ${join("pLow", "p")})
      (v128.store ${at("mp")} ${join("mLow", "m")})
      (v128.store ${at("vp")} ${join("vLow", "v")})
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $next))))`;
}

/**
 * The function `causal_softmax` (see {@linkcode expWat}): per row, the visible columns in pairs
 * (the lane past the row, in its last pair, set to −Infinity: no effect on the max, `exp` 0).
 */
function causalSoftmaxFunction(): string {
  // For each pair of visible columns of row $r: `$ca` the byte offset, `$xa` the scaled scores.
  const pairs = (body: string) => `
      (local.set $ca (i32.const 0))
      (local.set $lane (v128.const f64x2 0 1))
      (block $pairsDone (loop $pairs
        (br_if $pairsDone (i32.ge_u (local.get $ca) (local.get $visibleBytes)))
        (local.set $xa (v128.bitselect (local.get $minusInf)
          (f64x2.mul (local.get $sc) (f64x2.promote_low_f32x4
            (v128.load64_zero (i32.add (local.get $row) (local.get $ca)))))
          (f64x2.gt (local.get $lane) (local.get $rr))))
        ${body}
        (local.set $lane (f64x2.add (local.get $lane) (v128.const f64x2 2 2)))
        (local.set $ca (i32.add (local.get $ca) (i32.const 8)))
        (br $pairs)))`;
  return `(func (export "causal_softmax") (param $src i32) (param $dst i32) (param $T i32)
      (param $r0 i32) (param $rows i32) (param $scale f64) (result i32)
    (local $i i32) (local $r i32) (local $row i32) (local $out i32) (local $ca i32)
    (local $visibleBytes i32) (local $tmp i32) (local $max f64) (local $b f64)
    (local $sc v128) (local $rr v128) (local $lane v128) (local $vmax v128) (local $sum v128)
    (local $minusInf v128) (local $shift v128) ${EXP_LOCALS}
    ${F64.set}
    (local.set $sc (f64x2.splat (local.get $scale)))
    (local.set $minusInf (v128.const f64x2 -inf -inf))
    ;; float64 exponentials of a row, after the rows' outputs
    (local.set $tmp (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $rows) (local.get $T)) (i32.const 2))))
    (block $rowsDone (loop $rowLoop
      (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $r (i32.add (local.get $r0) (local.get $i)))
      (local.set $row (i32.add (local.get $src) (i32.shl (i32.mul (local.get $i) (local.get $T)) (i32.const 2))))
      (local.set $out (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $i) (local.get $T)) (i32.const 2))))
      (local.set $rr (f64x2.splat (f64.convert_i32_u (local.get $r))))
      ;; visible columns 0..r, rounded up to pairs
      (local.set $visibleBytes (i32.shl (i32.and (i32.add (local.get $r) (i32.const 2)) (i32.const -2)) (i32.const 2)))
      (local.set $vmax (local.get $minusInf))
      ${pairs(`(local.set $vmax (f64x2.pmax (local.get $vmax) (local.get $xa)))`)}
      (local.set $max (f64x2.extract_lane 0 (local.get $vmax)))
      (local.set $b (f64x2.extract_lane 1 (local.get $vmax)))
      (if (f64.gt (local.get $b) (local.get $max)) (then (local.set $max (local.get $b))))
      ;; a non-finite largest score: report the row
      (if (f64.ne (f64.sub (local.get $max) (local.get $max)) (f64.const 0))
        (then (return (local.get $i))))
      (local.set $shift (f64x2.splat (local.get $max)))
      (local.set $sum (v128.const f64x2 0 0))
      ${
    pairs(`(local.set $xa (f64x2.sub (local.get $xa) (local.get $shift)))
        ${expInto("a")}
        (v128.store (i32.add (local.get $tmp) (i32.shl (local.get $ca) (i32.const 1))) (local.get $ea))
        (local.set $sum (f64x2.add (local.get $sum) (local.get $ea)))`)
  }
      (local.set $sum (f64x2.splat (f64.add (f64x2.extract_lane 0 (local.get $sum))
        (f64x2.extract_lane 1 (local.get $sum)))))
      (local.set $ca (i32.const 0))
      (block $divDone (loop $div
        (br_if $divDone (i32.ge_u (local.get $ca) (local.get $visibleBytes)))
        (v128.store64_lane 0 (i32.add (local.get $out) (local.get $ca)) (f32x4.demote_f64x2_zero
          (f64x2.div (v128.load (i32.add (local.get $tmp) (i32.shl (local.get $ca) (i32.const 1))))
            (local.get $sum))))
        (local.set $ca (i32.add (local.get $ca) (i32.const 8)))
        (br $div)))
      ;; the columns past the row's last pair are 0
      (block $zeroDone (loop $zero
        (br_if $zeroDone (i32.ge_u (local.get $ca) (i32.shl (local.get $T) (i32.const 2))))
        (f32.store (i32.add (local.get $out) (local.get $ca)) (f32.const 0))
        (local.set $ca (i32.add (local.get $ca) (i32.const 4)))
        (br $zero)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rowLoop)))
    (i32.const -1))`;
}

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

const EXP_LOCALS =
  ["a", "b"].map((s) =>
    ["x", "e", "k", "r", "poly", "m"].map((name) => `(local $${name}${s} v128)`).join(" ")
  ).join(" ") + " " + F64.locals;
/** The float32 kernel's interleaved chains. */
const F32_CHAINS = ["a", "b"];
const EXP_F32_LOCALS =
  F32_CHAINS.map((s) =>
    ["z", "fd", "fa", "fe", "fk", "fr", "ft"].map((name) => `(local $${name}${s} v128)`).join(" ")
  ).join(" ") + " (local $negM v128) (local $fBias v128) " + F32.locals;

/**
 * The module (with `_sparse_wasm_source.ts`'s `mvue24`, `abs_max_f32` and `quantize_fp8`): its own memory (exported as `mem`, grown by the caller) and these functions on byte
 * offsets into it:
 * - `max_f32(p, n)`: the largest of `n` (a multiple of 16) float32 values, NaN ignored (as
 *   `if (z > max) max = z` from −Infinity);
 * - `exp_shift_f32(src, dst, n, m)`: `dst[i] = exp(src[i] − m)` in float32 (four lanes) for `n`
 *   (a multiple of 8) float32 values; returns the float64 sum of the stored results (four lanes,
 *   added at the end);
 * - `exp_f64(p, n)`: `p[i] = exp(p[i])` in place for `n` (a multiple of 4) float64 values;
 * - `scale_f32(src, dst, n, f)`: `dst[i] = f32(f·f64(src[i]))` for `n` (a multiple of 4) float32
 *   values (float64 products, one rounding each);
 * - `adamw_f32(p, g, m, v, n, …scalars)`: one AdamW step in place on `n` (a multiple of 4) float32
 *   parameters and moments, the reference's float64 operations in its order (`adamwRange`);
 * - `add_f32(a, b, n)`: `a[i] += b[i]` for `n` (a multiple of 16) float32 values (a float32 sum is
 *   the float64 sum rounded once: 53 ≥ 2·24 + 2 bits);
 * - `causal_softmax(src, dst, T, r0, rows, scale)`: rows `r0 … r0 + rows − 1` of a `[T, T]` block
 *   of float32 scores at `src` (row `i` at `src + 4·i·T`) into float32 probabilities at `dst`
 *   (float64 exponentials of `scale·s − max`, their sum in two lanes, one division each; 0 past the
 *   row), float64 scratch after the outputs; returns −1, or the first row whose largest scaled
 *   score is not finite (nothing written from it on).
 */
export function expWat(): string {
  return `(module
  (memory (export "mem") 1)
  (func (export "max_f32") (param $p i32) (param $n i32) (result f32)
    (local $end i32) (local $m v128) (local $m1 v128) (local $m2 v128) (local $m3 v128)
    (local $a f32) (local $b f32)
    (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $m1 (local.get $m))
    (local.set $m2 (local.get $m))
    (local.set $m3 (local.get $m))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $m (f32x4.pmax (local.get $m) (v128.load (local.get $p))))
      (local.set $m1 (f32x4.pmax (local.get $m1) (v128.load offset=16 (local.get $p))))
      (local.set $m2 (f32x4.pmax (local.get $m2) (v128.load offset=32 (local.get $p))))
      (local.set $m3 (f32x4.pmax (local.get $m3) (v128.load offset=48 (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 64)))
      (br $next)))
    (local.set $m (f32x4.pmax (f32x4.pmax (local.get $m) (local.get $m1))
      (f32x4.pmax (local.get $m2) (local.get $m3))))
    (local.set $a (f32x4.extract_lane 0 (local.get $m)))
    (local.set $b (f32x4.extract_lane 1 (local.get $m)))
    (if (f32.gt (local.get $b) (local.get $a)) (then (local.set $a (local.get $b))))
    (local.set $b (f32x4.extract_lane 2 (local.get $m)))
    (if (f32.gt (local.get $b) (local.get $a)) (then (local.set $a (local.get $b))))
    (local.set $b (f32x4.extract_lane 3 (local.get $m)))
    (if (f32.gt (local.get $b) (local.get $a)) (then (local.set $a (local.get $b))))
    (local.get $a))
  (func (export "exp_shift_f32") (param $src i32) (param $dst i32) (param $n i32) (param $m f32)
      (result f64)
    (local $end i32) (local $sum v128) (local $sum2 v128) (local $pair v128) ${EXP_F32_LOCALS}
    ${F32.set}
    (local.set $negM (f32x4.splat (f32.neg (local.get $m))))
    (local.set $fBias (i32x4.splat (i32.const 127)))
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
      ${
    F32_CHAINS.map((s, i) => `(local.set $z${s} (v128.load offset=${16 * i} (local.get $src)))`)
      .join("\n      ")
  }
      ${expF32Into(F32_CHAINS)}
      ${
    F32_CHAINS.map((s, i) => `(v128.store offset=${16 * i} (local.get $dst) (local.get $fe${s}))`)
      .join("\n      ")
  }
      (local.set $pair (f32x4.add (local.get $fea) (local.get $feb)))
      (local.set $sum (f64x2.add (local.get $sum) (f64x2.promote_low_f32x4 (local.get $pair))))
      (local.set $sum2 (f64x2.add (local.get $sum2) (f64x2.promote_low_f32x4
        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $pair) (local.get $pair)))))
      (local.set $src (i32.add (local.get $src) (i32.const ${16 * F32_CHAINS.length})))
      (local.set $dst (i32.add (local.get $dst) (i32.const ${16 * F32_CHAINS.length})))
      (br $next)))
    (local.set $sum (f64x2.add (local.get $sum) (local.get $sum2)))
    (f64.add (f64x2.extract_lane 0 (local.get $sum)) (f64x2.extract_lane 1 (local.get $sum))))
  (func (export "scale_f32") (param $src i32) (param $dst i32) (param $n i32) (param $f f64)
    (local $end i32) (local $v v128) (local $fs v128)
    (local.set $fs (f64x2.splat (local.get $f)))
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
      (local.set $v (v128.load (local.get $src)))
      (v128.store (local.get $dst) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
        (f32x4.demote_f64x2_zero (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (local.get $fs)))
        (f32x4.demote_f64x2_zero (f64x2.mul (local.get $fs) (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (br $next))))
  ${adamwFunction()}
  ${causalSoftmaxFunction()}
  (func (export "add_f32") (param $a i32) (param $b i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $a) (local.get $end)))
      ${
    [0, 16, 32, 48].map((o) =>
      `(v128.store offset=${o} (local.get $a)
        (f32x4.add (v128.load offset=${o} (local.get $a)) (v128.load offset=${o} (local.get $b))))`
    ).join("\n      ")
  }
      (local.set $a (i32.add (local.get $a) (i32.const 64)))
      (local.set $b (i32.add (local.get $b) (i32.const 64)))
      (br $next))))
  (func (export "exp_f64") (param $p i32) (param $n i32)
    (local $end i32) ${EXP_LOCALS}
    ${F64.set}
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 3))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $xa (v128.load (local.get $p)))
      (local.set $xb (v128.load offset=16 (local.get $p)))
      ${expInto("a")}
      ${expInto("b")}
      (v128.store (local.get $p) (local.get $ea))
      (v128.store offset=16 (local.get $p) (local.get $eb))
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (br $next))))
  ${sparseWatFunctions()}
)
`;
}
