import { matrix } from "./matrix.ts";
import {
  mvue24,
  mvue24Probabilities,
  mvue24WithUniforms,
  MVUE_EPSILON,
  MVUE_MAX_GROUP_SUM,
} from "./mvue.ts";
import { SPEC_MVUE } from "./cases.ts";
import { uniform4 } from "./rng.ts";
import { assert, assertClose, assertThrows, seededRandom } from "./testing.ts";

/** The float32 value just above `x` (x > 0, normal). */
function nextUp32(x: number): number {
  const b = new Float32Array([x]);
  const u = new Uint32Array(b.buffer);
  u[0]++;
  return b[0];
}

/** Positions of the nonzero entries of one group of `data` starting at `o`. */
function kept(data: Float32Array, o = 0): number[] {
  return [0, 1, 2, 3].filter((k) => data[o + k] !== 0);
}

const one = (values: readonly number[]) => matrix(1, values.length, values);

Deno.test("mvue24Probabilities reproduces the SPEC §9 inclusion probabilities", () => {
  assertClose(
    mvue24Probabilities(one(SPEC_MVUE.w)).data,
    SPEC_MVUE.p,
    { atol: 1e-6, rtol: 0 },
    "p([0.1,-3,2,0.5])",
  );
  assertClose(
    mvue24Probabilities(one(SPEC_MVUE.ascending.w)).data,
    SPEC_MVUE.ascending.p,
    { atol: 1e-6, rtol: 0 },
    "p([1,2,3,4])",
  );
  assertClose(mvue24Probabilities(one(SPEC_MVUE.equal.w)).data, [0.5, 0.5, 0.5, 0.5], {
    atol: 1e-7,
    rtol: 0,
  }, "p(1111)");
  assertClose(mvue24Probabilities(one([0, 0, 0, 0])).data, [0.5, 0.5, 0.5, 0.5], {
    atol: 1e-7,
    rtol: 0,
  }, "p(0000)");
});

Deno.test("inclusion probabilities sum to 2 in every group and lie in (0, 1]", () => {
  const rnd = seededRandom(7);
  const values = Array.from({ length: 3 * 40 }, (_, i) => (rnd() - 0.5) * 10 ** ((i % 7) - 3));
  const p = mvue24Probabilities(matrix(3, 40, values)).data;
  for (let o = 0; o < p.length; o += 4) {
    const s = p[o] + p[o + 1] + p[o + 2] + p[o + 3];
    assert(Math.abs(s - 2) <= 1e-6, `group at ${o}: Σp = ${s}`);
    for (let k = 0; k < 4; k++) assert(p[o + k] > 0 && p[o + k] <= 1, `p[${o + k}] = ${p[o + k]}`);
  }
});

Deno.test("injected uniforms (0.5, 0.5) on [0.1,-3,2,0.5] pick 1 then 2 (SPEC §9)", () => {
  const out = mvue24WithUniforms(one(SPEC_MVUE.w), Float32Array.from(SPEC_MVUE.uniforms));
  assertClose(out.data, SPEC_MVUE.sampled, { atol: 1e-6, rtol: 0 }, "out");
});

Deno.test("[1,1,1,1] keeps two values equal to 2 whatever the draw (SPEC §9)", () => {
  for (let seed = 0; seed < 50; seed++) {
    const out = mvue24(one(SPEC_MVUE.equal.w), { seed });
    const k = kept(out.data);
    assert(k.length === 2, `seed ${seed}: kept ${k}`);
    for (const i of k) {
      assert(Math.abs(out.data[i] - SPEC_MVUE.equal.kept) <= 1e-6, `seed ${seed}: ${out.data[i]}`);
    }
  }
});

Deno.test("selection is inclusive, lower index on equality, in both picks", () => {
  // ε vanishes next to these powers of two, so t = (1/8, 1/8, 1/4, 1/2) exactly and the
  // cumulative values 1/8, 1/4, 1/2, 1 are exact.
  const g = one([1024, -1024, 2048, 4096]);
  // With u1 tiny the second pick is the lowest remaining index, with u1 near 1 the highest; the
  // index common to both pairs is the first pick.
  const first = (u0: number) => {
    const low = kept(mvue24WithUniforms(g, new Float32Array([u0, 2 ** -24])).data);
    const high = kept(mvue24WithUniforms(g, new Float32Array([u0, 1 - 2 ** -24])).data);
    const common = low.filter((k) => high.includes(k));
    return common.length === 1 ? common[0] : -1;
  };
  const cases: [number, number][] = [
    [2 ** -24, 0],
    [0.125, 0],
    [nextUp32(0.125), 1],
    [0.25, 1],
    [nextUp32(0.25), 2],
    [0.5, 2],
    [nextUp32(0.5), 3],
    [1 - 2 ** -24, 3],
  ];
  for (const [u0, want] of cases) assert(first(u0) === want, `u0 = ${u0}: first pick ${first(u0)}`);
  // First pick 3 (u0 near 1); the rest have probabilities a_j / R = (1/4, 1/4, 1/2).
  const second = (u1: number) => kept(mvue24WithUniforms(g, new Float32Array([0.9, u1])).data);
  const secondCases: [number, string][] = [
    [0.25, "0,3"],
    [nextUp32(0.25), "1,3"],
    [0.5, "1,3"],
    [nextUp32(0.5), "2,3"],
  ];
  for (const [u1, want] of secondCases) {
    assert(second(u1).join() === want, `u1 = ${u1}: kept ${second(u1)}, want ${want}`);
  }
});

Deno.test("when rounding leaves the last cumulative value below u, the last index is taken", () => {
  const f = Math.fround;
  const top = 1 - 2 ** -24; // the largest uniform the generator can produce
  // Found by search: the float32 cumulative t of this group ends at 1 - 2^-23 < top.
  const g1 = [9.950130462646484, 6.0761566162109375, -0.8932199478149414, -2.1719717979431152];
  const a1 = g1.map((x) => f(Math.abs(x) + MVUE_EPSILON));
  const s1 = f(f(f(a1[0] + a1[1]) + a1[2]) + a1[3]);
  let c = 0;
  for (const a of a1) c = f(c + f(a / s1));
  assert(c < top, `precondition: the cumulative ${c} must be below ${top}`);
  const out1 = mvue24WithUniforms(one(g1), new Float32Array([top, 0.5]));
  assert(kept(out1.data).includes(3), `first pick must fall back to 3: kept ${kept(out1.data)}`);
  // Here the second pick after first = 0 runs over (1, 2, 3) and ends at 1 - 2^-23 < top.
  const g2 = [-8.989127159118652, -2.609632968902588, 5.4952592849731445, 1.1237714290618896];
  const a2 = g2.map((x) => f(Math.abs(x) + MVUE_EPSILON));
  const r0 = f(f(a2[1] + a2[2]) + a2[3]);
  c = 0;
  for (const j of [1, 2, 3]) c = f(c + f(a2[j] / r0));
  assert(c < top, `precondition: the cumulative ${c} must be below ${top}`);
  const out2 = mvue24WithUniforms(one(g2), new Float32Array([2 ** -24, top]));
  assert(kept(out2.data).join() === "0,3", `second pick must fall back to 3: ${kept(out2.data)}`);
});

Deno.test("drawn positions agree with a float64 inverse CDF away from the boundaries", () => {
  const rnd = seededRandom(99);
  let compared = 0;
  for (let n = 0; n < 3000; n++) {
    const x = [0, 1, 2, 3].map(() => Math.fround((rnd() - 0.5) * 10 ** Math.floor(rnd() * 4)));
    if (x.includes(0)) continue;
    const u = new Float32Array([rnd(), rnd()]);
    if (!(u[0] > 0 && u[1] > 0)) continue;
    const a = x.map((v) => Math.abs(v) + MVUE_EPSILON);
    const s = a[0] + a[1] + a[2] + a[3];
    let c = 0, i = 3, margin = Infinity;
    for (let k = 0; k < 4; k++) {
      c += a[k] / s;
      margin = Math.min(margin, Math.abs(u[0] - c));
      if (u[0] <= c) {
        i = k;
        break;
      }
    }
    const others = [0, 1, 2, 3].filter((k) => k !== i);
    let j = others[2];
    c = 0;
    for (const k of others) {
      c += a[k] / (s - a[i]);
      margin = Math.min(margin, Math.abs(u[1] - c));
      if (u[1] <= c) {
        j = k;
        break;
      }
    }
    if (margin < 1e-5) continue;
    compared++;
    const got = kept(mvue24WithUniforms(one(x), u).data).join();
    const want = [i, j].sort().join();
    assert(got === want, `x ${x}, u ${u}: kept ${got}, float64 picks ${want}`);
  }
  assert(compared > 2500, `only ${compared} comparisons`);
});

Deno.test("mvue24 draws words 0 and 1 of uniform4(seed, stream, q) for group q", () => {
  const rand = seededRandom(3);
  const rnd = () => rand() - 0.5;
  const g = matrix(3, 12, Array.from({ length: 36 }, rnd));
  const u = new Float32Array(18);
  for (let q = 0; q < 9; q++) {
    const w = uniform4(11, 5, q);
    u[2 * q] = w[0];
    u[2 * q + 1] = w[1];
  }
  const a = mvue24(g, { seed: 11, stream: 5 }).data;
  const b = mvue24WithUniforms(g, u).data;
  assert(a.join() === b.join(), `mvue24 ${a} vs explicit uniforms ${b}`);
  assert(
    mvue24(g, { seed: 11 }).data.join() === mvue24(g, { seed: 11, stream: 0 }).data.join(),
    "",
  );
  let differ = 0;
  for (let s = 0; s < 20; s++) {
    if (mvue24(g, { seed: 11, stream: s }).data.join() !== a.join()) differ++;
  }
  assert(differ >= 18, `only ${differ} of 20 streams changed the draw`);
  const empty = mvue24(matrix(0, 8), { seed: 1 });
  assert(empty.rows === 0 && empty.cols === 8 && empty.data.length === 0, "empty matrix");
});

Deno.test("MVUE is unbiased and draws each position with probability p_k (SPEC §2.7)", () => {
  const groups = [
    [0.1, -3, 2, 0.5],
    [1, 2, 3, 4],
    [1, 1, 1, 1],
    [0, 0.5, -2, 1e-3],
    [0, 0, 0, 0],
    [-1e-6, 2e-6, 0, 5e-7],
  ];
  const g = matrix(1, 24, groups.flat());
  const p = mvue24Probabilities(g).data;
  const n = 20000;
  const sum = new Float64Array(24), hits = new Float64Array(24);
  const pairs = new Map<string, number>();
  for (let seed = 0; seed < n; seed++) {
    const out = mvue24(g, { seed }).data;
    for (let i = 0; i < 24; i++) {
      assert(!Number.isNaN(out[i]), `seed ${seed}: NaN at ${i}`);
      sum[i] += out[i];
      if (out[i] !== 0) hits[i]++;
    }
    const pair = kept(out, 0).join();
    pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
  }
  for (let i = 0; i < 24; i++) {
    const x = g.data[i];
    // Var(out_i) = x² (1/p − 1) exactly; 4σ/√n, plus float32 rounding of x/p (a few ulps of x).
    const sigma = Math.abs(x) * Math.sqrt(1 / p[i] - 1);
    const mean = sum[i] / n;
    const tol = 4 * sigma / Math.sqrt(n) + 4 * 2 ** -24 * Math.abs(x);
    assert(Math.abs(mean - x) <= tol, `element ${i}: mean ${mean} vs x ${x} (tol ${tol})`);
    if (x === 0) {
      assert(sum[i] === 0, `element ${i} is 0, its outputs must be 0`);
      continue;
    }
    const freq = hits[i] / n, sp = Math.sqrt(p[i] * (1 - p[i]) / n);
    assert(Math.abs(freq - p[i]) <= 4 * sp, `element ${i}: frequency ${freq} vs p ${p[i]}`);
  }
  const pairProbabilities: Record<string, number> = {
    "0,1": 0.030345,
    "0,2": 0.016414,
    "0,3": 0.003374,
    "1,2": 0.709707,
    "1,3": 0.155543,
    "2,3": 0.084617,
  };
  for (const [pair, q] of Object.entries(pairProbabilities)) {
    const freq = (pairs.get(pair) ?? 0) / n, sq = Math.sqrt(q * (1 - q) / n);
    assert(Math.abs(freq - q) <= 4 * sq, `pair {${pair}}: frequency ${freq} vs SPEC ${q}`);
  }
});

Deno.test("outputs are 2:4, bounded by the group sum, zeros for an all-zero group", () => {
  const rnd = seededRandom(5);
  const values = Array.from({ length: 8 * 32 }, (_, i) => (rnd() - 0.5) * 10 ** ((i % 9) - 4));
  for (let c = 0; c < 4; c++) values[4 * 7 + c] = 0; // one all-zero group
  values[4 * 9] = 0; // a zero inside a group
  const g = matrix(8, 32, values);
  for (let seed = 0; seed < 100; seed++) {
    const out = mvue24(g, { seed, stream: 3 }).data;
    for (let o = 0; o < out.length; o += 4) {
      let s = 0, nonzero = 0, zeros = 0;
      for (let k = 0; k < 4; k++) {
        s += Math.abs(g.data[o + k]) + MVUE_EPSILON;
        if (out[o + k] !== 0) nonzero++;
        if (g.data[o + k] === 0) zeros++;
        assert(Number.isFinite(out[o + k]), `seed ${seed}: ${out[o + k]} at ${o + k}`);
        if (out[o + k] !== 0) {
          assert(Math.sign(out[o + k]) === Math.sign(g.data[o + k]), `sign flipped at ${o + k}`);
        }
      }
      for (let k = 0; k < 4; k++) {
        // |out| ≤ S holds exactly in real arithmetic; float32 rounding of t, p and x/p can add a
        // few ulps.
        assert(Math.abs(out[o + k]) <= s * (1 + 2 ** -21), `|out| ${out[o + k]} > S ${s}`);
      }
      assert(nonzero <= 2 && nonzero >= 2 - zeros, `group at ${o}: ${nonzero} nonzero`);
    }
    for (let c = 0; c < 4; c++) assert(Object.is(out[4 * 7 + c], 0), "all-zero group → +0");
  }
});

Deno.test("huge but accepted groups give finite outputs", () => {
  const g = one([2 ** 125, 1, 0, -3]);
  for (let seed = 0; seed < 200; seed++) {
    for (const v of mvue24(g, { seed }).data) assert(Number.isFinite(v), `seed ${seed}: ${v}`);
  }
  assert(MVUE_MAX_GROUP_SUM === 2 ** 126, "the documented limit");
});

Deno.test("MVUE functions reject bad input and name the offending value", () => {
  const g = one([1, 2, 3, 4]);
  for (
    const fn of [
      (m: ReturnType<typeof one>) => mvue24(m, { seed: 0 }),
      (m: ReturnType<typeof one>) => mvue24WithUniforms(m, new Float32Array(m.data.length / 2)),
      mvue24Probabilities,
    ]
  ) {
    assertThrows(() => fn(one([1, 2, 3, 4, 5, 6])), RangeError, ["multiple of 4", "got 6"]);
    assertThrows(() => fn(one([1, NaN, 3, 4])), RangeError, ["NaN", "column 1"]);
    assertThrows(() => fn(one([1, 2, 3, -Infinity])), RangeError, ["-Infinity", "column 3"]);
    assertThrows(() => fn({ rows: 1, cols: 4, data: [1, 2, 3, 4] } as never), TypeError, [
      "Float32Array",
    ]);
  }
  assertThrows(() => mvue24(one([1e38, 0, 0, 0]), { seed: 0 }), RangeError, [
    "2^126",
    "columns 0..3",
  ]);
  assertThrows(() => mvue24(one([0, 0, 0, 0, 3e38, 3e38, 0, 0]), { seed: 0 }), RangeError, [
    "columns 4..7",
    "Infinity",
  ]);
  assertThrows(() => mvue24(g, { seed: -1 }), RangeError, ["seed", "-1"]);
  assertThrows(() => mvue24(matrix(0, 4), { seed: 0.5 }), RangeError, ["seed", "0.5"]);
  assertThrows(() => mvue24(g, { seed: 0, stream: 2 ** 32 }), RangeError, ["stream", "4294967296"]);
  assertThrows(() => mvue24(g, null as never), TypeError, ["options", "null"]);
  assertThrows(() => mvue24WithUniforms(g, new Float32Array(3)), RangeError, ["2", "got 3"]);
  assertThrows(() => mvue24WithUniforms(g, [0.5, 0.5] as never), TypeError, ["Float32Array"]);
  for (const bad of [0, 1, NaN, -0.5]) {
    assertThrows(() => mvue24WithUniforms(g, new Float32Array([0.5, bad])), RangeError, [
      "(0, 1)",
      `got ${bad} at index 1`,
    ]);
  }
});
