import { uniforms } from "./rng.ts";
import {
  assert,
  assertEqualArrays,
  assertRejects,
  assertThrows,
  gaussianMatrix,
  seededFloats,
  seededRandom,
  tieHeavyMatrix,
} from "./testing.ts";

Deno.test("assertThrows checks the class and every fragment, and fails when nothing throws", () => {
  const e = assertThrows(
    () => {
      throw new RangeError("Cannot x: got 3");
    },
    RangeError,
    "Cannot x",
    ["got 3"],
  );
  assert(e.message === "Cannot x: got 3", "returns the error");
  const fails = [
    () => assertThrows(() => {}, TypeError),
    () => assertThrows(() => JSON.parse("{"), RangeError),
    () => assertThrows(() => JSON.parse("{"), SyntaxError, "no such fragment"),
  ];
  for (const f of fails) {
    let failed = false;
    try {
      f();
    } catch {
      failed = true;
    }
    assert(failed, `${f} passed`);
  }
});

Deno.test("assertRejects awaits the promise", async () => {
  await assertRejects(() => Promise.reject(new TypeError("Cannot y")), TypeError, "Cannot y");
  let failed = false;
  try {
    await assertRejects(() => Promise.resolve(1), TypeError);
  } catch {
    failed = true;
  }
  assert(failed, "a resolved promise passed");
});

Deno.test("seededRandom and seededFloats follow the Philox stream of the seed", () => {
  const rand = seededRandom(7, 3);
  assertEqualArrays(Array.from({ length: 10 }, rand), uniforms(7, 3, 10), "seededRandom");
  assertEqualArrays(seededFloats(10, 7, (u) => u, 3), uniforms(7, 3, 10), "seededFloats");
  const centred = seededFloats(6, 5);
  const u = uniforms(5, 0, 6);
  assertEqualArrays(centred, u.map((x) => x - 0.5), "default map u − 0.5");
});

Deno.test("gaussianMatrix and tieHeavyMatrix are deterministic and shaped", () => {
  const g = gaussianMatrix(3, 8, 1);
  assert(g.rows === 3 && g.cols === 8 && g.data.length === 24, "gaussian shape");
  assertEqualArrays(g.data, gaussianMatrix(3, 8, 1).data, "gaussian repeat");
  assert(g.data.every(Number.isFinite), "finite");
  const t = tieHeavyMatrix(4, 4, 2);
  assert(t.data.every((v) => Number.isInteger(v) && v >= -3 && v <= 3), "ties in [-3, 3]");
});
