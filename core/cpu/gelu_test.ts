import { GELU_TABLES, geluBackwardRange, geluRange, tabulated } from "./_gelu.ts";
import { erfc } from "../erfc.ts";

/** Absolute error bounds of the tabulated `Φ` and `GELU' = Φ + x·φ` (SPEC §10.6). */
const PHI_BOUND = 4e-15, DERIV_BOUND = 2e-14;

/** The reference backend's float64 `Φ(x)` and `GELU'(x)` (Cody's erfc, `Math.exp`). */
const phi = (x: number) => 0.5 * erfc(-x * Math.SQRT1_2);
const deriv = (x: number) => phi(x) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

Deno.test("tabulated Φ and GELU' are within their bounds of the reference's float64 values on [−16, 9]", () => {
  let worstPhi = 0, worstDeriv = 0;
  const check = (x: number) => {
    const ep = Math.abs(tabulated(GELU_TABLES.phi, x) - phi(x));
    const ed = Math.abs(tabulated(GELU_TABLES.deriv, x) - deriv(x));
    if (!(ep <= PHI_BOUND)) throw new Error(`Φ(${x}): error ${ep} exceeds ${PHI_BOUND}`);
    if (!(ed <= DERIV_BOUND)) throw new Error(`GELU'(${x}): error ${ed} exceeds ${DERIV_BOUND}`);
    worstPhi = Math.max(worstPhi, ep);
    worstDeriv = Math.max(worstDeriv, ed);
  };
  // Float32 points every 2^-12 (slightly shifted), and the farthest from the grid (δ = ±1/128).
  for (let i = 0; i <= 25 * 4096; i++) check(Math.fround(-16 + i / 4096 + 1e-7 * Math.sin(i)));
  for (let j = 0; j < 25 * 64; j++) check(-16 + (j + 0.5) / 64);
  console.log(
    `largest errors: Φ ${worstPhi.toExponential(2)}, GELU' ${worstDeriv.toExponential(2)}`,
  );
});

Deno.test("GELU kernels: the grid's ends, beyond them, ±0, ±Infinity and NaN as the reference (after rounding)", () => {
  const x = Float32Array.of(-16, 9, -16.5, -1e6, 9.5, 1e30, 0, -0, Infinity, -Infinity, NaN);
  const out = new Float32Array(x.length), dOut = new Float32Array(x.length);
  const kept = new Float64Array(x.length), keptOut = new Float32Array(x.length);
  geluRange(x, out, kept, 0, x.length);
  geluBackwardRange(x, new Float32Array(x.length).fill(1), dOut, new Float64Array(0), 0, x.length);
  // The derivatives kept by the forward give the same backward.
  geluBackwardRange(x, new Float32Array(x.length).fill(1), keptOut, kept, 0, x.length);
  if (!dOut.every((v, i) => Object.is(v, keptOut[i]))) {
    throw new Error(`kept derivatives differ: ${keptOut} vs ${dOut}`);
  }
  const want = Array.from(x, (v) => v === -Infinity ? 0 : Math.fround(v * phi(v)));
  const wantD = Array.from(x, (v) => Number.isFinite(v) ? Math.fround(deriv(v)) : v > 0 ? 1 : 0);
  x.forEach((v, i) => {
    if (!Object.is(out[i], want[i])) throw new Error(`GELU(${v}) = ${out[i]}, expected ${want[i]}`);
    if (dOut[i] !== wantD[i]) { // zeros of either sign (the reference's sign varies below −16)
      throw new Error(`GELU'(${v}) = ${dOut[i]}, expected ${wantD[i]}`);
    }
  });
});
