/**
 * WebAssembly text of the CPU backend's MVUE 2:4 and FP8 kernels (`_sparse.ts`'s loops with the
 * same float32 operations, so the same bits: a WebAssembly `f32` operation is the IEEE single
 * operation, as `Math.fround` of the double one for `+ − × ÷`), part of the module of
 * `_exp_wasm_source.ts`. MVUE takes four groups at once, one per lane; Philox's 32×32→64 products
 * are `i64x2.extmul`s (two lanes each). Private to `core/cpu/`.
 *
 * @module
 */

import { MVUE_EPSILON, MVUE_MAX_GROUP_SUM } from "../../reference/mvue.ts";
import {
  PHILOX_M0 as M0,
  PHILOX_M1 as M1,
  PHILOX_W0 as W0,
  PHILOX_W1 as W1,
} from "../../reference/rng.ts";

/** `(i8x16.shuffle …)` picking the 32-bit lanes `lanes` of `a` (0–3) and `b` (4–7). */
function shuffle(lanes: number[], a: string, b: string): string {
  const bytes = lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]).join(" ");
  return `(i8x16.shuffle ${bytes} ${a} ${b})`;
}

/** Statements transposing the 4×4 lanes of locals `from` into locals `to` (via `$tr0..3`). */
function transpose(from: string[], to: string[]): string {
  const g = (n: string) => `(local.get $${n})`;
  return [
    set("tr0", shuffle([0, 4, 1, 5], g(from[0]), g(from[1]))),
    set("tr1", shuffle([2, 6, 3, 7], g(from[0]), g(from[1]))),
    set("tr2", shuffle([0, 4, 1, 5], g(from[2]), g(from[3]))),
    set("tr3", shuffle([2, 6, 3, 7], g(from[2]), g(from[3]))),
    set(to[0], shuffle([0, 1, 4, 5], g("tr0"), g("tr2"))),
    set(to[1], shuffle([2, 3, 6, 7], g("tr0"), g("tr2"))),
    set(to[2], shuffle([0, 1, 4, 5], g("tr1"), g("tr3"))),
    set(to[3], shuffle([2, 3, 6, 7], g("tr1"), g("tr3"))),
  ].join("\n      ");
}

/** The high words of the four 32×32→64 products `c·m` (`c`, `m` v128 expressions). */
const mulhi = (c: string, m: string) =>
  shuffle(
    [1, 3, 5, 7],
    `(i64x2.extmul_low_i32x4_u ${c} ${m})`,
    `(i64x2.extmul_high_i32x4_u ${c} ${m})`,
  );

/**
 * Philox4x32-10 in four lanes at counters `($c0, $c1, 0, 0)` under the round keys `$key0_r`,
 * `$key1_r`, unrolled; words 0 and 1 end in `$c0 $c1`.
 */
function philox(): string {
  const lines = ["(local.set $c2 (v128.const i32x4 0 0 0 0)) (local.set $c3 (local.get $c2))"];
  for (let round = 0; round < 10; round++) {
    lines.push(
      set("h0", mulhi("(local.get $c0)", "(local.get $mul0)")),
      set("l0", "(i32x4.mul (local.get $c0) (local.get $mul0))"),
      set(
        "c0",
        `(v128.xor (v128.xor ${mulhi("(local.get $c2)", "(local.get $mul1)")}
        (local.get $c1)) (local.get $key0_${round}))`,
      ),
      set("c1", "(i32x4.mul (local.get $c2) (local.get $mul1))"),
      set("c2", `(v128.xor (v128.xor (local.get $h0) (local.get $c3)) (local.get $key1_${round}))`),
      set("c3", "(local.get $l0)"),
    );
  }
  return lines.join("\n      ");
}

/** The round keys `k + round·W` of both key words, splat into `$key0_r`, `$key1_r`. */
function roundKeys(): string {
  return Array.from(
    { length: 10 },
    (_, r) =>
      [["0", W0], ["1", W1]].map(([w, inc]) =>
        set(
          `key${w}_${r}`,
          `(i32x4.splat (i32.add (local.get $k${w}) (i32.const ${Math.imul(r, inc as number)})))`,
        )
      ).join(" "),
  ).join("\n    ");
}

/** The uniforms `((w >>> 9) + 0.5)·2^-23` of four words (exact in float32: 24 significant bits). */
const uniform = (w: string) =>
  `(f32x4.mul (f32x4.add (f32x4.convert_i32x4_u (i32x4.shr_u (local.get $${w}) (i32.const 9)))
    (v128.const f32x4 0.5 0.5 0.5 0.5)) (f32x4.splat (f32.const ${2 ** -23})))`;

const add = (a: string, b: string) => `(f32x4.add (local.get $${a}) (local.get $${b}))`;
const div = (a: string, b: string) => `(f32x4.div (local.get $${a}) (local.get $${b}))`;
const set = (name: string, value: string) => `(local.set $${name} ${value})`;
const four = (name: string) => [0, 1, 2, 3].map((i) => `${name}${i}`);
const splat = (i: number) => `(i32x4.splat (i32.const ${i}))`;
/** Lane masks: the sum of `f32x4.gt` masks (each −1) negated, the number of true comparisons. */
const count = (...masks: string[]) =>
  `(i32x4.neg ${masks.reduce((acc, m) => `(i32x4.add ${acc} ${m})`)})`;

/**
 * The function `mvue24(src, dst, groups, g0, stream, k0, k1)`: MVUE 2:4 of `groups` (a multiple of
 * 4) groups of four float32 values at `src` into `dst`, four groups at a time (one per lane, after
 * a transpose), group `i` drawing Philox's words 0 and 1 at counter `(g0 + i, stream, 0, 0)` under
 * key `(k0, k1)`, in `mvue24Range`'s operation order; returns −1, or the first group whose
 * magnitude sum exceeds 2^126 (not NaN: inputs are finite).
 */
function mvueFunction(): string {
  const v128Locals = ["v", "x", "a", "t", "r", "q", "s", "m", "p", "o"].flatMap(four).concat(
    [
      "tr0",
      "tr1",
      "tr2",
      "tr3",
      "a01",
      "q01",
      "sum",
      "u0",
      "u1",
      "cum1",
      "cum2",
      "rf",
      "d1",
      "cc2",
    ],
    ["first", "second", "n", "c0", "c1", "c2", "c3", "h0", "l0", "stream4", "mul0", "mul1"],
    Array.from({ length: 10 }, (_, r) => [`key0_${r}`, `key1_${r}`]).flat(),
  );
  return `(func (export "mvue24") (param $src i32) (param $dst i32) (param $groups i32) (param $g0 i32)
      (param $stream i32) (param $k0 i32) (param $k1 i32) (result i32)
    (local $i i32) (local $bad i32) ${v128Locals.map((l) => `(local $${l} v128)`).join(" ")}
    ${roundKeys()}
    (local.set $mul0 ${splat(M0 | 0)}) (local.set $mul1 ${splat(M1 | 0)})
    (local.set $stream4 (i32x4.splat (local.get $stream)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $groups)))
      ${
    [0, 1, 2, 3].map((i) => set(`v${i}`, `(v128.load offset=${16 * i} (local.get $src))`)).join(" ")
  }
      ${transpose(four("v"), four("x"))}
      ${
    [0, 1, 2, 3].map((i) =>
      set(
        `a${i}`,
        `(f32x4.add (f32x4.abs (local.get $x${i})) (f32x4.splat (f32.const ${MVUE_EPSILON})))`,
      )
    ).join("\n      ")
  }
      ;; S and R_i (the sum of the other three in ascending order), sharing a0 + a1.
      ${set("a01", add("a0", "a1"))}
      ${set("r3", add("a01", "a2"))}
      ${set("sum", add("r3", "a3"))}
      (local.set $bad (i32.xor (i32.const 15) (i32x4.bitmask
        (f32x4.le (local.get $sum) (f32x4.splat (f32.const ${MVUE_MAX_GROUP_SUM}))))))
      (if (local.get $bad) (then (return (i32.add (local.get $i) (i32.ctz (local.get $bad))))))
      ${set("r2", add("a01", "a3"))}
      ${set("r1", `(f32x4.add ${add("a0", "a2")} (local.get $a3))`)}
      ${set("r0", `(f32x4.add ${add("a1", "a2")} (local.get $a3))`)}
      ${[0, 1, 2, 3].map((i) => set(`t${i}`, div(`a${i}`, "sum"))).join(" ")}
      ${
    set(
      "c0",
      `(i32x4.add (i32x4.splat (i32.add (local.get $g0) (local.get $i))) (v128.const i32x4 0 1 2 3))`,
    )
  }
      ${set("c1", "(local.get $stream4)")}
      ${philox()}
      ${set("u0", uniform("c0"))}
      ${set("u1", uniform("c1"))}
      ;; First pick: the inclusive inverse CDF over t (its partial sums never decrease, so the pick
      ;; is the number of them below u0; fallback 3).
      ${set("cum1", add("t0", "t1"))}
      ${set("cum2", add("cum1", "t2"))}
      ${
    set(
      "first",
      count(...["t0", "cum1", "cum2"].map((c) => `(f32x4.gt (local.get $u0) (local.get $${c}))`)),
    )
  }
      ${
    [0, 1, 2, 3].map((i) => set(`m${i}`, `(i32x4.eq (local.get $first) ${splat(i)})`)).join(" ")
  }
      ;; Second pick among the others j1 < j2 < j3 with probabilities a_j / R_first (fallback j3):
      ;; j1 = first = 0 ? 1 : 0, j2 = first ≤ 1 ? 2 : 1, j3 = first = 3 ? 2 : 3.
      ${
    set(
      "rf",
      "(v128.bitselect (local.get $r0) (v128.bitselect (local.get $r1) (v128.bitselect (local.get $r2) (local.get $r3) (local.get $m2)) (local.get $m1)) (local.get $m0))",
    )
  }
      ${
    set(
      "d1",
      "(f32x4.div (v128.bitselect (local.get $a1) (local.get $a0) (local.get $m0)) (local.get $rf))",
    )
  }
      ${
    set(
      "cc2",
      "(f32x4.add (local.get $d1) (f32x4.div (v128.bitselect (local.get $a2) (local.get $a1) (v128.or (local.get $m0) (local.get $m1))) (local.get $rf)))",
    )
  }
      ${
    set(
      "n",
      count(
        "(f32x4.gt (local.get $u1) (local.get $d1))",
        "(f32x4.gt (local.get $u1) (local.get $cc2))",
      ),
    )
  }
      ${
    set(
      "second",
      `(v128.bitselect (v128.and (local.get $m0) ${splat(1)})
        (v128.bitselect (i32x4.add ${splat(2)} (i32x4.gt_s (local.get $first) ${splat(1)}))
          (i32x4.add ${splat(3)} (local.get $m3)) (i32x4.eq (local.get $n) ${splat(1)}))
        (i32x4.eq (local.get $n) ${splat(0)}))`,
    )
  }
      ;; s_k = Σ_{i≠k} t_i / R_i in ascending order.
      ${[0, 1, 2, 3].map((i) => set(`q${i}`, div(`t${i}`, `r${i}`))).join(" ")}
      ${set("q01", add("q0", "q1"))}
      ${set("s3", add("q01", "q2"))}
      ${set("s2", add("q01", "q3"))}
      ${set("s1", `(f32x4.add ${add("q0", "q2")} (local.get $q3))`)}
      ${set("s0", `(f32x4.add ${add("q1", "q2")} (local.get $q3))`)}
      ;; x_k / p_k at the two picks, +0 elsewhere.
      ${
    [0, 1, 2, 3].map((i) =>
      set(
        `p${i}`,
        `(v128.and (v128.or (local.get $m${i}) (i32x4.eq (local.get $second) ${splat(i)}))
        (f32x4.div (local.get $x${i}) (f32x4.add (local.get $t${i}) (f32x4.mul (local.get $a${i}) (local.get $s${i})))))`,
      )
    ).join("\n      ")
  }
      ${transpose(four("p"), four("o"))}
      ${
    [0, 1, 2, 3].map((i) => `(v128.store offset=${16 * i} (local.get $dst) (local.get $o${i}))`)
      .join(" ")
  }
      (local.set $src (i32.add (local.get $src) (i32.const 64)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $next)))
    (i32.const -1))`;
}

/**
 * The functions `abs_max_f32(p, n)` (the largest magnitude of `n`, a multiple of 16, float32
 * values; NaN if one is NaN) and `quantize_fp8(src, dst, n, scale, max, m, minExponent)` (`n` a multiple of 4: `y =
 * x·scale`, `q` = `|y|` rounded to the grid of `m` mantissa bits in its binade (at least
 * `minExponent`), ties to even, `max` from `max` on, with `y`'s sign; `dst = q / scale`).
 */
function fp8Functions(): string {
  const acc = [0, 1, 2, 3];
  return `(func (export "abs_max_f32") (param $p i32) (param $n i32) (result f32)
    (local $end i32) (local $v v128) (local $nan v128) ${
    acc.map((k) => `(local $m${k} v128)`).join(" ")
  }
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      ;; Four chains of pmax (one instruction; it skips NaN), NaN flagged on the side.
      ${
    acc.map((k) =>
      `(local.set $v (v128.load offset=${16 * k} (local.get $p)))
      (local.set $nan (v128.or (local.get $nan) (f32x4.ne (local.get $v) (local.get $v))))
      (local.set $m${k} (f32x4.pmax (local.get $m${k}) (f32x4.abs (local.get $v))))`
    ).join("\n      ")
  }
      (local.set $p (i32.add (local.get $p) (i32.const 64)))
      (br $next)))
    (if (v128.any_true (local.get $nan)) (then (return (f32.const nan))))
    (local.set $m0 (f32x4.pmax (f32x4.pmax (local.get $m0) (local.get $m1))
      (f32x4.pmax (local.get $m2) (local.get $m3))))
    (f32.max (f32.max (f32x4.extract_lane 0 (local.get $m0)) (f32x4.extract_lane 1 (local.get $m0)))
      (f32.max (f32x4.extract_lane 2 (local.get $m0)) (f32x4.extract_lane 3 (local.get $m0)))))
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
