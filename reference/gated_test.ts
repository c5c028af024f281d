import { type Matrix, matrix } from "./matrix.ts";
import { SPEC_GEGLU } from "./cases.ts";
import { geglu, gegluBackward, swiglu, swigluBackward } from "./gated.ts";
import { assert, assertClose, assertThrows, seededRandom } from "./testing.ts";

// Float64 activations written independently of the module: ½(1 + tanh u) = σ(2u).
const geluF64 = (g: number) =>
  g / (1 + Math.exp(-2 * Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3)));
const siluF64 = (g: number) => g / (1 + Math.exp(-g));

/** `Σ dy ⊙ (x ⊙ act(gate))` in float64 over plain arrays. */
function loss(input: number[], dy: number[], h: number, act: (g: number) => number): number {
  let sum = 0;
  for (let r = 0; r < dy.length / h; r++) {
    for (let j = 0; j < h; j++) {
      sum += dy[r * h + j] * input[r * 2 * h + j] * act(input[r * 2 * h + h + j]);
    }
  }
  return sum;
}

Deno.test("GEGLU reproduces SPEC §9 forward and backward", () => {
  const input = matrix(1, 6, SPEC_GEGLU.input);
  assertClose(geglu(input).data, SPEC_GEGLU.out, { atol: 1e-6, rtol: 0 }, "geglu");
  const grad = gegluBackward(input, matrix(1, 3, [1, 1, 1]));
  assertClose(
    grad.data,
    [...SPEC_GEGLU.dx, ...SPEC_GEGLU.dgate],
    { atol: 1e-6, rtol: 0 },
    "∂input",
  );
  assert(grad.rows === 1 && grad.cols === 6, "backward shape");
});

Deno.test("SwiGLU matches known SiLU values", () => {
  const out = swiglu(matrix(1, 6, [1, 2, -3, 1, -2, 0]));
  assertClose(out.data, [0.7310585786, 2 * -0.2384058440, 0], { atol: 1e-7, rtol: 0 }, "swiglu");
});

Deno.test("forward passes agree with independent float64 formulas on varied rows", () => {
  const rand = seededRandom(8);
  const rnd = () => rand() - 0.5;
  const t = 5, h = 7;
  const x = matrix(t, 2 * h, Array.from({ length: t * 2 * h }, () => 12 * rnd()));
  for (const [fn, act, name] of [[geglu, geluF64, "geglu"], [swiglu, siluF64, "swiglu"]] as const) {
    const out = fn(x);
    assert(out.rows === t && out.cols === h, `${name} shape [${out.rows}, ${out.cols}]`);
    for (let r = 0; r < t; r++) {
      for (let j = 0; j < h; j++) {
        const want = x.data[r * 2 * h + j] * act(x.data[r * 2 * h + h + j]);
        const got = out.data[r * h + j];
        assert(
          Math.abs(got - want) <= 2 ** -23 * Math.abs(want) + 1e-30,
          `${name}[${r}, ${j}]: ${got} vs ${want}`,
        );
      }
    }
  }
});

Deno.test("backward passes match central finite differences in float64", () => {
  const rand = seededRandom(44);
  const rnd = () => rand() - 0.5;
  const t = 3, h = 5;
  const input = Array.from({ length: t * 2 * h }, () => Math.fround(8 * rnd()));
  const dy = Array.from({ length: t * h }, () => Math.fround(2 * rnd()));
  const cases: [(x: Matrix, dy: Matrix) => Matrix, (g: number) => number, string][] = [
    [gegluBackward, geluF64, "gegluBackward"],
    [swigluBackward, siluF64, "swigluBackward"],
  ];
  for (const [backward, act, name] of cases) {
    const grad = backward(matrix(t, 2 * h, input), matrix(t, h, dy));
    const step = 1e-5;
    for (let i = 0; i < input.length; i++) {
      const plus = input.slice(), minus = input.slice();
      plus[i] += step;
      minus[i] -= step;
      const fd = (loss(plus, dy, h, act) - loss(minus, dy, h, act)) / (2 * step);
      // Truncation error ~ step² and cancellation ~ 1e-16 / step, far below the float32 rounding
      // of the analytic gradient (relative 2^-24).
      assert(
        Math.abs(grad.data[i] - fd) <= 1e-7 + 1e-6 * Math.abs(fd),
        `${name}[${i}]: analytic ${grad.data[i]} vs finite difference ${fd}`,
      );
    }
  }
});

Deno.test("huge finite inputs give no NaN; empty inputs give empty outputs", () => {
  const x = matrix(1, 4, [1, 2, 3e38, -3e38]);
  const dy = matrix(1, 2, [1, 1]);
  for (const fn of [geglu, swiglu]) {
    const out = fn(x).data;
    assert(out[0] === Math.fround(3e38) && out[1] === 0, `${fn.name}: ${out}`);
  }
  for (const fn of [gegluBackward, swigluBackward]) {
    const g = fn(x, dy).data;
    for (const v of g) assert(!Number.isNaN(v), `${fn.name}: NaN in ${g}`);
    assert(
      g[0] === Math.fround(3e38) && g[1] === 0 && g[2] === 1 && g[3] === 0,
      `${fn.name}: ${g}`,
    );
  }
  const empty = gegluBackward(matrix(0, 6), matrix(0, 3));
  assert(empty.rows === 0 && empty.cols === 6, "empty backward");
  assert(swiglu(matrix(2, 0)).cols === 0, "zero-width forward");
});

Deno.test("gated activations reject bad input and name the offending value", () => {
  for (const fn of [geglu, swiglu]) {
    assertThrows(() => fn(matrix(1, 3, [1, 2, 3])), RangeError, ["even", "got 3"]);
    assertThrows(() => fn(matrix(2, 2, [1, 2, 3, NaN])), RangeError, ["NaN", "row 1, column 1"]);
    assertThrows(() => fn(matrix(1, 2, [-Infinity, 0])), RangeError, ["-Infinity", "column 0"]);
    assertThrows(() => fn({ rows: 1, cols: 2 } as never), TypeError, ["Float32Array"]);
  }
  const x = matrix(2, 4, [1, 2, 3, 4, 5, 6, 7, 8]);
  for (const fn of [gegluBackward, swigluBackward]) {
    assertThrows(() => fn(x, matrix(2, 4)), RangeError, ["[2, 2]", "got [2, 4]"]);
    assertThrows(() => fn(x, matrix(1, 2)), RangeError, ["[2, 2]", "got [1, 2]"]);
    assertThrows(() => fn(x, matrix(2, 2, [0, 0, Infinity, 0])), RangeError, [
      "output gradient",
      "Infinity",
      "row 1, column 0",
    ]);
    assertThrows(() => fn(matrix(1, 5), matrix(1, 2)), RangeError, ["even", "got 5"]);
  }
});
