/**
 * WebAssembly text of the CPU backend's MVUE 2:4 and FP8 kernels (`_sparse.ts`'s loops with the
 * same float32 operations, so the same bits: a WebAssembly `f32` operation is the IEEE single
 * operation, as `Math.fround` of the double one for `+ − × ÷`), part of the module of
 * `_exp_wasm_source.ts`. Philox's 32×32→64 products are one `i64.mul` each. Private to `core/cpu/`.
 *
 * @module
 */

import { MVUE_EPSILON, MVUE_MAX_GROUP_SUM } from "../../reference/mvue.ts";

const M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

/** `[v0, v1, v2, v3][i]` of four locals (`i` an i32 local in 0..3), as nested `select`s. */
function sel(i: string, v: string[]): string {
  const g = (k: number) => `(local.get $${v[k]})`,
    at = (k: number) => `(i32.eq (local.get $${i}) (i32.const ${k}))`;
  return `(select ${g(0)} (select ${g(1)} (select ${g(2)} ${g(3)} ${at(2)}) ${at(1)}) ${at(0)})`;
}

/**
 * Philox4x32-10 at counter `($c0, $c1, 0, 0)` under key `($k0, $k1)` (copied to `$kk0 $kk1`),
 * unrolled; words 0 and 1 end in `$c0 $c1`.
 */
function philox(): string {
  const lines = ["(local.set $c2 (i32.const 0)) (local.set $c3 (i32.const 0))"];
  lines.push("(local.set $kk0 (local.get $k0)) (local.set $kk1 (local.get $k1))");
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      lines.push(`(local.set $kk0 (i32.add (local.get $kk0) (i32.const ${W0 | 0})))`);
      lines.push(`(local.set $kk1 (i32.add (local.get $kk1) (i32.const ${W1 | 0})))`);
    }
    lines.push(
      `(local.set $p0 (i64.mul (i64.extend_i32_u (local.get $c0)) (i64.const ${M0})))`,
      `(local.set $p1 (i64.mul (i64.extend_i32_u (local.get $c2)) (i64.const ${M1})))`,
      `(local.set $c0 (i32.xor (i32.xor (i32.wrap_i64 (i64.shr_u (local.get $p1) (i64.const 32)))
        (local.get $c1)) (local.get $kk0)))`,
      "(local.set $c1 (i32.wrap_i64 (local.get $p1)))",
      `(local.set $c2 (i32.xor (i32.xor (i32.wrap_i64 (i64.shr_u (local.get $p0) (i64.const 32)))
        (local.get $c3)) (local.get $kk1)))`,
      "(local.set $c3 (i32.wrap_i64 (local.get $p0)))",
    );
  }
  return lines.join("\n      ");
}

/** The uniform `((w >>> 9) + 0.5)·2^-23` of word `w` (exact in float32: 24 significant bits). */
const uniform = (w: string) =>
  `(f32.mul (f32.add (f32.convert_i32_u (i32.shr_u (local.get $${w}) (i32.const 9)))
    (f32.const 0.5)) (f32.const ${2 ** -23}))`;

const add = (a: string, b: string) => `(f32.add (local.get $${a}) (local.get $${b}))`;
const div = (a: string, b: string) => `(f32.div (local.get $${a}) (local.get $${b}))`;
const set = (name: string, value: string) => `(local.set $${name} ${value})`;
const four = (name: string) => [0, 1, 2, 3].map((i) => `${name}${i}`);

/** The output `x_k / f(t_k + f(a_k·s_k))` of the pick in the i32 local `k`. */
const output = (k: string) =>
  `(f32.store (i32.add (local.get $dst) (i32.shl (local.get $${k}) (i32.const 2)))
        (f32.div ${sel(k, four("x"))} (f32.add ${sel(k, four("t"))}
          (f32.mul ${sel(k, four("a"))} ${sel(k, four("s"))}))))`;

/**
 * The function `mvue24(src, dst, groups, g0, stream, k0, k1)`: MVUE 2:4 of `groups` groups of four
 * float32 values at `src` into `dst`, group `i` drawing Philox's words 0 and 1 at counter
 * `(g0 + i, stream, 0, 0)` under key `(k0, k1)`, in `mvue24Range`'s operation order; returns −1,
 * or the first group whose magnitude sum exceeds 2^126 (not NaN: inputs are finite).
 */
function mvueFunction(): string {
  const f32Locals = ["x", "a", "t", "r", "q", "s"].flatMap(four).concat(
    ["a01", "q01", "sum", "u0", "u1", "cum1", "cum2", "rf", "d1", "cc2"],
  );
  const i32Locals = [
    "i",
    "c0",
    "c1",
    "c2",
    "c3",
    "kk0",
    "kk1",
    "first",
    "j1",
    "j2",
    "j3",
    "k",
    "n",
  ];
  return `(func (export "mvue24") (param $src i32) (param $dst i32) (param $groups i32) (param $g0 i32)
      (param $stream i32) (param $k0 i32) (param $k1 i32) (result i32)
    ${f32Locals.map((l) => `(local $${l} f32)`).join(" ")}
    ${i32Locals.map((l) => `(local $${l} i32)`).join(" ")} (local $p0 i64) (local $p1 i64)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $groups)))
      ${
    [0, 1, 2, 3].map((i) => set(`x${i}`, `(f32.load offset=${4 * i} (local.get $src))`)).join(" ")
  }
      ${
    [0, 1, 2, 3].map((i) =>
      set(`a${i}`, `(f32.add (f32.abs (local.get $x${i})) (f32.const ${MVUE_EPSILON}))`)
    ).join("\n      ")
  }
      ;; S and R_i (the sum of the other three in ascending order), sharing a0 + a1.
      ${set("a01", add("a0", "a1"))}
      ${set("r3", add("a01", "a2"))}
      ${set("sum", add("r3", "a3"))}
      (if (i32.eqz (f32.le (local.get $sum) (f32.const ${MVUE_MAX_GROUP_SUM})))
        (then (return (local.get $i))))
      ${set("r2", add("a01", "a3"))}
      ${set("r1", `(f32.add ${add("a0", "a2")} (local.get $a3))`)}
      ${set("r0", `(f32.add ${add("a1", "a2")} (local.get $a3))`)}
      ${[0, 1, 2, 3].map((i) => set(`t${i}`, div(`a${i}`, "sum"))).join(" ")}
      ${set("c0", "(i32.add (local.get $g0) (local.get $i))")}
      ${set("c1", "(local.get $stream)")}
      ${philox()}
      ${set("u0", uniform("c0"))}
      ${set("u1", uniform("c1"))}
      ;; First pick: the inclusive inverse CDF over t (its partial sums never decrease, so the pick
      ;; is the number of them below u0; fallback 3).
      ${set("cum1", add("t0", "t1"))}
      ${set("cum2", add("cum1", "t2"))}
      (local.set $first (i32.add (i32.add (f32.gt (local.get $u0) (local.get $t0))
        (f32.gt (local.get $u0) (local.get $cum1))) (f32.gt (local.get $u0) (local.get $cum2))))
      ;; Second pick among the others j1 < j2 < j3 with probabilities a_j / R_first (fallback j3).
      ${set("rf", sel("first", four("r")))}
      ${set("j1", "(i32.eqz (local.get $first))")}
      ${set("j2", "(i32.sub (i32.const 2) (i32.gt_u (local.get $first) (i32.const 1)))")}
      ${set("j3", "(i32.sub (i32.const 3) (i32.eq (local.get $first) (i32.const 3)))")}
      ${set("d1", `(f32.div ${sel("j1", four("a"))} (local.get $rf))`)}
      ${set("cc2", `(f32.add (local.get $d1) (f32.div ${sel("j2", four("a"))} (local.get $rf)))`)}
      ${
    set(
      "n",
      "(i32.add (f32.gt (local.get $u1) (local.get $d1)) (f32.gt (local.get $u1) (local.get $cc2)))",
    )
  }
      ${
    set(
      "k",
      "(select (local.get $j1) (select (local.get $j2) (local.get $j3) (i32.eq (local.get $n) (i32.const 1))) (i32.eqz (local.get $n)))",
    )
  }
      ;; s_k = Σ_{i≠k} t_i / R_i in ascending order.
      ${[0, 1, 2, 3].map((i) => set(`q${i}`, div(`t${i}`, `r${i}`))).join(" ")}
      ${set("q01", add("q0", "q1"))}
      ${set("s3", add("q01", "q2"))}
      ${set("s2", add("q01", "q3"))}
      ${set("s1", `(f32.add ${add("q0", "q2")} (local.get $q3))`)}
      ${set("s0", `(f32.add ${add("q1", "q2")} (local.get $q3))`)}
      (v128.store (local.get $dst) (v128.const i32x4 0 0 0 0))
      ${output("first")}
      ${output("k")}
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const -1))`;
}

/**
 * The functions `abs_max_f32(p, n)` (the largest magnitude of `n`, a multiple of 4, finite float32
 * values) and `quantize_fp8(src, dst, n, scale, max, m, minExponent)` (`n` a multiple of 4: `y =
 * x·scale`, `q` = `|y|` rounded to the grid of `m` mantissa bits in its binade (at least
 * `minExponent`), ties to even, `max` from `max` on, with `y`'s sign; `dst = q / scale`).
 */
function fp8Functions(): string {
  return `(func (export "abs_max_f32") (param $p i32) (param $n i32) (result f32)
    (local $end i32) (local $m v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $m (f32x4.pmax (local.get $m) (f32x4.abs (v128.load (local.get $p)))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $next)))
    (f32.max (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
      (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
  (func (export "quantize_fp8") (param $src i32) (param $dst i32) (param $n i32) (param $scale f32)
      (param $max f32) (param $m i32) (param $minExponent i32)
    (local $end i32) (local $s v128) (local $mx v128) (local $minE v128) (local $upBias v128)
    (local $downBias v128) (local $y v128) (local $a v128) (local $e v128) (local $q v128)
    (local.set $s (f32x4.splat (local.get $scale)))
    (local.set $mx (f32x4.splat (local.get $max)))
    (local.set $minE (i32x4.splat (local.get $minExponent)))
    ;; 2^(m − e) and 2^(e − m) from their exponent fields (every such power is a normal float32).
    (local.set $upBias (i32x4.splat (i32.add (local.get $m) (i32.const 127))))
    (local.set $downBias (i32x4.splat (i32.sub (i32.const 127) (local.get $m))))
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
      (local.set $y (f32x4.mul (v128.load (local.get $src)) (local.get $s)))
      (local.set $a (f32x4.abs (local.get $y)))
      ;; The binade of a (a subnormal a has exponent field 0 and clamps to minExponent).
      (local.set $e (i32x4.max_s (i32x4.sub (i32x4.shr_u (local.get $a) (i32.const 23))
        (i32x4.splat (i32.const 127))) (local.get $minE)))
      ;; Scaling by powers of two is exact; nearest rounds ties to even.
      (local.set $q (f32x4.mul (f32x4.nearest (f32x4.mul (local.get $a)
          (i32x4.shl (i32x4.sub (local.get $upBias) (local.get $e)) (i32.const 23))))
        (i32x4.shl (i32x4.add (local.get $e) (local.get $downBias)) (i32.const 23))))
      (local.set $q (v128.bitselect (local.get $mx) (local.get $q)
        (f32x4.ge (local.get $a) (local.get $mx))))
      ;; y's sign (−0 included) on q ≥ 0.
      (local.set $q (v128.or (local.get $q) (v128.and (local.get $y)
        (v128.const i32x4 ${0x80000000 | 0} ${0x80000000 | 0} ${0x80000000 | 0} ${
    0x80000000 | 0
  }))))
      (v128.store (local.get $dst) (f32x4.div (local.get $q) (local.get $s)))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (br $next))))`;
}

/** The module's MVUE 2:4 and FP8 functions (see {@linkcode mvueFunction}, {@linkcode fp8Functions}). */
export function sparseWatFunctions(): string {
  return `${mvueFunction()}
  ${fp8Functions()}`;
}
