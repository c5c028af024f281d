import { constantInit, normal } from "./init.ts";
import { uniform4 } from "../reference/rng.ts";

Deno.test("normal: Box–Muller on the four uniforms of each counter, rounded once to f32", () => {
  const x = normal(42, 3, 6, 0.5);
  for (let n = 0; n < 2; n++) {
    const [u0, u1, u2, u3] = uniform4(42, 3, n);
    const r0 = Math.sqrt(-2 * Math.log(u0)), r1 = Math.sqrt(-2 * Math.log(u2));
    const want = [
      r0 * Math.cos(2 * Math.PI * u1),
      r0 * Math.sin(2 * Math.PI * u1),
      r1 * Math.cos(2 * Math.PI * u3),
      r1 * Math.sin(2 * Math.PI * u3),
    ];
    for (let j = 0; j < 4 && 4 * n + j < 6; j++) {
      if (x[4 * n + j] !== Math.fround(0.5 * want[j])) {
        throw new Error(`entry ${4 * n + j}: ${x[4 * n + j]} vs ${0.5 * want[j]}`);
      }
    }
  }
  // A prefix of a longer draw equals a shorter draw; other streams and seeds differ.
  const longer = normal(42, 3, 9, 0.5);
  if (!x.every((v, i) => v === longer[i])) throw new Error("prefix property");
  if (normal(42, 4, 6, 0.5).every((v, i) => v === x[i])) throw new Error("stream ignored");
  if (normal(43, 3, 6, 0.5).every((v, i) => v === x[i])) throw new Error("seed ignored");
});

Deno.test("normal: moments of 40 000 draws", () => {
  const x = normal(7, 0, 40000, 2);
  let s1 = 0, s2 = 0, s4 = 0;
  for (const v of x) {
    s1 += v;
    s2 += v * v;
    s4 += v ** 4;
  }
  const n = x.length, mean = s1 / n, variance = s2 / n, kurtosis = s4 / n / (variance * variance);
  // Standard errors: mean 2/√n = 0.01, variance 4·√(2/n) ≈ 0.028, kurtosis ≈ √(96/n) ≈ 0.05.
  if (Math.abs(mean) > 0.05) throw new Error(`mean ${mean}`);
  if (Math.abs(variance - 4) > 0.15) throw new Error(`variance ${variance}`);
  if (Math.abs(kurtosis - 3) > 0.25) throw new Error(`kurtosis ${kurtosis}`);
});

Deno.test("normal and constantInit: edge cases and errors", () => {
  if (normal(1, 0, 0, 1).length !== 0) throw new Error("empty draw");
  if (!normal(1, 0, 5, 0).every((v) => v === 0)) throw new Error("std 0");
  if (!constantInit(3, 1).every((v) => v === 1)) throw new Error("constant");
  for (const std of [-1, NaN, Infinity]) {
    let ok = false;
    try {
      normal(1, 0, 4, std);
    } catch (e) {
      ok = e instanceof RangeError && /std must be finite and >= 0/.test(e.message);
    }
    if (!ok) throw new Error(`accepted std ${std}`);
  }
});
