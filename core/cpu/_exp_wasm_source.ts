/**
 * WebAssembly text of the CPU backend's SIMD `exp` kernels (two float64 lanes per `v128`), the
 * source of the bytes in `_exp_wasm_bytes.ts` (regenerate with `core/cpu/_gen_exp_wasm.ts`; a test
 * checks they match). The `exp` is valid for `x ≤ 0` (and NaN, −Infinity), the only arguments the
 * backend passes: `x = (k/2)·ln 2 + r`, `|r| ≤ ln2/4`, `exp(x) = 2^⌊k/2⌋ · (√2 if k is odd) · P(r)`,
 * `P` the degree-10 Taylor polynomial; 0 below −708 (where `e^x` < 3.4e-308). Error bound: SPEC
 * §10.6. Private to `core/cpu/`.
 *
 * @module
 */

/** Below this argument the kernels return 0 (the scale 2^⌊k/2⌋ stays a normal double above it). */
export const EXP_WASM_UNDERFLOW = -708;
/** Taylor degree of `P`: the truncation `(ln2/4)^11/11!` is below 1.1e-16. */
export const EXP_WASM_DEGREE = 10;

/** A double literal that round-trips exactly (JS prints the shortest such decimal). */
const fmt = (x: number) => (Number.isFinite(x) ? String(x) : x > 0 ? "inf" : "-inf");

/** The constants of `expInto`, as `[local name, value]`: set once before the loop (V8 rebuilds a
 * `v128.const` with two or three instructions at every use). */
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

const CONSTANT_LOCALS = expConstants().map(([name]) => `(local $${name} v128)`).join(" ");
const SET_CONSTANTS = expConstants().map(([name, value]) =>
  `(local.set $${name} (v128.const f64x2 ${fmt(value)} ${fmt(value)}))`
).join("\n    ");

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

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

const EXP_LOCALS =
  ["a", "b"].map((s) =>
    ["x", "e", "k", "r", "poly", "m"].map((name) => `(local $${name}${s} v128)`).join(" ")
  ).join(" ") + " " + CONSTANT_LOCALS;

/**
 * The module: its own memory (exported as `mem`, grown by the caller) and three functions on byte
 * offsets into it:
 * - `max_f32(p, n)`: the largest of `n` (a multiple of 4) float32 values, NaN ignored (as
 *   `if (z > max) max = z` from −Infinity);
 * - `exp_shift(src, dst, n, shift)`: `dst[i] = exp(f64(src[i]) − shift)` for `n` float32
 *   inputs into float64 outputs, `n` a multiple of 4; returns their float64 sum (four lanes, added at
 *   the end);
 * - `exp_f64(p, n)`: `p[i] = exp(p[i])` in place for `n` (a multiple of 4) float64 values.
 */
export function expWat(): string {
  return `(module
  (memory (export "mem") 1)
  (func (export "max_f32") (param $p i32) (param $n i32) (result f32)
    (local $end i32) (local $m v128) (local $a f32) (local $b f32)
    (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $m (f32x4.pmax (local.get $m) (v128.load (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $next)))
    (local.set $a (f32x4.extract_lane 0 (local.get $m)))
    (local.set $b (f32x4.extract_lane 1 (local.get $m)))
    (if (f32.gt (local.get $b) (local.get $a)) (then (local.set $a (local.get $b))))
    (local.set $b (f32x4.extract_lane 2 (local.get $m)))
    (if (f32.gt (local.get $b) (local.get $a)) (then (local.set $a (local.get $b))))
    (local.set $b (f32x4.extract_lane 3 (local.get $m)))
    (if (f32.gt (local.get $b) (local.get $a)) (then (local.set $a (local.get $b))))
    (local.get $a))
  (func (export "exp_shift") (param $src i32) (param $dst i32) (param $n i32) (param $shift f64)
      (result f64)
    (local $end i32) (local $s v128) (local $sum v128) (local $sum2 v128) ${EXP_LOCALS}
    ${SET_CONSTANTS}
    (local.set $s (f64x2.splat (local.get $shift)))
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
      (local.set $xa (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $src)))
        (local.get $s)))
      (local.set $xb (f64x2.sub
        (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $src))) (local.get $s)))
      ${expInto("a")}
      ${expInto("b")}
      (v128.store (local.get $dst) (local.get $ea))
      (v128.store offset=16 (local.get $dst) (local.get $eb))
      (local.set $sum (f64x2.add (local.get $sum) (local.get $ea)))
      (local.set $sum2 (f64x2.add (local.get $sum2) (local.get $eb)))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
      (br $next)))
    (local.set $sum (f64x2.add (local.get $sum) (local.get $sum2)))
    (f64.add (f64x2.extract_lane 0 (local.get $sum)) (f64x2.extract_lane 1 (local.get $sum))))
  (func (export "exp_f64") (param $p i32) (param $n i32)
    (local $end i32) ${EXP_LOCALS}
    ${SET_CONSTANTS}
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
)
`;
}
