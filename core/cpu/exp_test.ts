import { fastExp } from "./_exp.ts";

/** Largest relative difference from `Math.exp` the CPU backend's tolerances assume (5e-15). */
const BOUND = 5e-15;

Deno.test("fastExp is within 5e-15 of Math.exp over the whole double range", () => {
  let worst = 0, at = 0;
  const check = (x: number) => {
    const e = Math.exp(x), f = fastExp(x);
    if (e < 1e-300) return; // subnormal results: absolute error < 1e-300
    const rel = Math.abs(f - e) / e;
    if (rel > worst) [worst, at] = [rel, x];
  };
  for (let i = 0; i <= 400_000; i++) check(-745 + (1454.78 * i) / 400_000);
  for (let i = 0; i <= 400_000; i++) check(-20 + (40 * i) / 400_000); // softmax, GELU, CE range
  for (let i = -64; i <= 64; i++) check((i * Math.LN2) / 32); // table boundaries
  if (!(worst <= BOUND)) throw new Error(`fastExp error ${worst} at x = ${at} exceeds ${BOUND}`);
});

Deno.test("fastExp: limits, zeros, NaN and the underflow/overflow edges", () => {
  const cases: [number, number][] = [
    [0, 1],
    [-0, 1],
    [-Infinity, 0],
    [Infinity, Infinity],
    [-746, 0],
    [710, Infinity],
  ];
  for (const [x, want] of cases) {
    if (fastExp(x) !== want) throw new Error(`fastExp(${x}) = ${fastExp(x)}, expected ${want}`);
  }
  if (!Number.isNaN(fastExp(NaN))) throw new Error("fastExp(NaN) is not NaN");
  const big = fastExp(709.7);
  if (!(Math.abs(big - Math.exp(709.7)) / Math.exp(709.7) <= BOUND)) {
    throw new Error(`fastExp(709.7) = ${big}`);
  }
  if (fastExp(-745) <= 0) throw new Error("fastExp(-745) must be the smallest subnormal, not 0");
});
