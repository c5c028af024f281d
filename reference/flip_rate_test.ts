import { flipCount, flipRate } from "./flip_rate.ts";
import { assert, assertThrows } from "./testing.ts";

const u8 = (v: number[]) => Uint8Array.from(v);

Deno.test("flip count and rate are the XOR popcount and its fraction (SPEC §2.4)", () => {
  const prev = u8([1, 1, 0, 0, 0, 1, 1, 0]), next = u8([1, 0, 1, 0, 0, 1, 0, 1]);
  assert(flipCount(prev, next) === 4, `count ${flipCount(prev, next)}`);
  assert(flipRate(prev, next) === 0.5, `rate ${flipRate(prev, next)}`);
  assert(flipRate(prev, prev) === 0, "identical masks flip nothing");
  assert(flipRate(prev, prev.map((b) => 1 - b)) === 1, "complementary masks flip everything");
  assert(flipCount(u8([]), u8([])) === 0, "two empty masks differ in 0 entries");
  assert(flipRate(u8([0, 0, 1]), u8([0, 0, 0])) === 1 / 3, "one of three");
});

Deno.test("summed flip counts give the size-weighted global rate", () => {
  const layers = [
    [u8(Array(400).fill(0)), u8(Array(400).fill(0).map((_, i) => (i < 40 ? 1 : 0)))],
    [u8([1, 1, 0, 0]), u8([0, 0, 1, 1])],
  ];
  let flips = 0, size = 0;
  for (const [a, b] of layers) {
    flips += flipCount(a, b);
    size += a.length;
  }
  // 44 / 404, not the mean of the per-layer rates 0.1 and 1: big layers weigh more.
  assert(flips === 44 && size === 404, `${flips} / ${size}`);
});

Deno.test("flip functions reject bad masks and name the offending value", () => {
  for (const fn of [flipCount, flipRate]) {
    assertThrows(() => fn(u8([1, 0]), u8([1, 0, 0])), RangeError, ["2 entries", "got 3"]);
    assertThrows(() => fn(u8([1, 3]), u8([1, 0])), RangeError, ["got 3 at 1"]);
    assertThrows(() => fn(u8([1, 0]), u8([1, 7])), RangeError, ["got 7 at 1"]);
    assertThrows(() => fn([1, 0] as never, u8([1, 0])), TypeError, ["Uint8Array", "Array"]);
    assertThrows(() => fn(u8([1, 0]), new Float32Array([1, 0]) as never), TypeError, [
      "Uint8Array",
    ]);
  }
  assertThrows(() => flipRate(u8([]), u8([])), RangeError, ["empty", "length 0"]);
});
