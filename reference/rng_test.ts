import { philox4x32, uniform4, uniforms } from "./rng.ts";
import { assert, assertThrows, seededRandom } from "./testing.ts";

function hex(words: readonly number[]): string {
  return words.map((w) => "0x" + w.toString(16).padStart(8, "0")).join(",");
}

/** An independent Philox4x32-10 with BigInt products, to check the 16-bit-halves emulation. */
function philoxBigInt(c: number[], k: number[]): number[] {
  const mask = 0xffffffffn;
  let [c0, c1, c2, c3] = c.map(BigInt);
  let [k0, k1] = k.map(BigInt);
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + 0x9E3779B9n) & mask;
      k1 = (k1 + 0xBB67AE85n) & mask;
    }
    const p0 = 0xD2511F53n * c0, p1 = 0xCD9E8D57n * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & mask, (p0 >> 32n) ^ c3 ^ k1, p0 & mask];
  }
  return [c0, c1, c2, c3].map(Number);
}

Deno.test("philox4x32 matches the Random123 known answers", () => {
  const cases: [number[], number[], number[]][] = [
    [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
      [0xa4093822, 0x299f31d0],
      [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ],
  ];
  for (const [ctr, key, want] of cases) {
    const got = philox4x32(ctr as [number, number, number, number], key as [number, number]);
    assert(hex(got) === hex(want), `ctr ${hex(ctr)} key ${hex(key)}: got ${hex(got)}`);
  }
});

Deno.test("philox4x32 agrees with a BigInt implementation on varied words", () => {
  // Words near the 16-bit and 32-bit boundaries exercise every carry of the emulated product.
  const special = [0, 1, 0xffff, 0x10000, 0x1ffff, 0x7fffffff, 0x80000000, 0xfffeffff, 0xffffffff];
  const rand = seededRandom(12345);
  // A full 32-bit word from two 16-bit draws (one uniform carries only 24 bits).
  const next = () => ((Math.floor(rand() * 0x10000) << 16) | Math.floor(rand() * 0x10000)) >>> 0;
  for (let n = 0; n < 2000; n++) {
    const pick = () => (n % 3 === 0 ? special[next() % special.length] : next());
    const ctr = [pick(), pick(), pick(), pick()] as [number, number, number, number];
    const key = [pick(), pick()] as [number, number];
    const got = philox4x32(ctr, key);
    const want = philoxBigInt(ctr, key);
    assert(hex(got) === hex(want), `ctr ${hex(ctr)} key ${hex(key)}: ${hex(got)} vs ${hex(want)}`);
  }
});

Deno.test("uniform4 uses counter (index, stream, 0, 0), key from the seed, and the documented map", () => {
  const seed = 3 * 2 ** 32 + 17, stream = 5, index = 123456;
  const words = philoxBigInt([index, stream, 0, 0], [17, 3]);
  const want = words.map((x) => (Math.floor(x / 512) + 0.5) / 2 ** 23);
  const got = uniform4(seed, stream, index);
  assert(got.join() === want.join(), `got ${got}, want ${want}`);
  for (const u of got) assert(Math.fround(u) === u, `${u} is not a float32 value`);
});

Deno.test("every uniform is an odd multiple of 2^-24 strictly inside (0, 1)", () => {
  // ((x >>> 9) + 0.5) * 2^-23 = (2k + 1) * 2^-24 with k < 2^23: the smallest possible value is
  // 2^-24 and the largest 1 - 2^-24.
  for (const v of uniforms(9, 0, 200000)) {
    const scaled = v * 2 ** 24;
    assert(Number.isInteger(scaled) && scaled % 2 === 1, `${v} is not an odd multiple of 2^-24`);
    assert(v >= 2 ** -24 && v <= 1 - 2 ** -24, `${v} outside [2^-24, 1 - 2^-24]`);
  }
});

Deno.test("uniforms is deterministic, lays out counters as documented, and streams/seeds differ", () => {
  const a = uniforms(7, 3, 4099), b = uniforms(7, 3, 4099);
  assert(a.join() === b.join(), "same seed and stream gave different values");
  for (const i of [0, 1, 2, 3, 4, 5, 1000, 4096, 4098]) {
    const want = uniform4(7, 3, Math.floor(i / 4))[i % 4];
    assert(a[i] === want, `entry ${i}: ${a[i]} vs ${want}`);
  }
  assert(
    uniforms(7, 3, 10).join() === a.subarray(0, 10).join(),
    "a prefix must equal a short call",
  );
  assert(uniforms(7, 3, 0).length === 0, "count 0 must give an empty array");
  const others = [uniforms(7, 4, 4099), uniforms(8, 3, 4099), uniforms(7 + 2 ** 32, 3, 4099)];
  for (const o of others) {
    let same = 0;
    for (let i = 0; i < a.length; i++) if (o[i] === a[i]) same++;
    // Independent streams coincide on a given entry with probability 2^-23.
    assert(same <= 2, `${same} of ${a.length} entries coincide across streams/seeds`);
  }
  assert(uniform4(2 ** 53 - 1, 2 ** 32 - 1, 2 ** 32 - 1).every((u) => u > 0 && u < 1), "max args");
});

/** Upper or lower χ² quantile by the Wilson–Hilferty approximation (z standard normal). */
function chiSquareQuantile(dof: number, z: number): number {
  const v = 2 / (9 * dof);
  return dof * (1 - v + z * Math.sqrt(v)) ** 3;
}

Deno.test("uniforms have the mean, variance, bucket counts and serial correlation of U(0,1)", () => {
  const n = 1 << 20;
  const u = uniforms(20240611, 1, n);
  let sum = 0, sumSq = 0, lag = 0;
  const buckets = new Float64Array(64);
  for (let i = 0; i < n; i++) {
    const c = u[i] - 0.5;
    sum += c;
    sumSq += c * c;
    if (i > 0) lag += c * (u[i - 1] - 0.5);
    buckets[Math.floor(u[i] * 64)]++;
  }
  const mean = sum / n + 0.5;
  const variance = sumSq / n - (sum / n) ** 2;
  // σ of the mean is sqrt(1/12/n); of the variance sqrt(Var((U-½)²)/n) = sqrt(1/180/n); of the
  // lag-1 covariance sqrt(1/144/n). Five σ: a real defect shows up far outside.
  assert(Math.abs(mean - 0.5) <= 5 * Math.sqrt(1 / 12 / n), `mean ${mean}`);
  assert(Math.abs(variance - 1 / 12) <= 5 * Math.sqrt(1 / 180 / n), `variance ${variance}`);
  assert(Math.abs(lag / (n - 1)) <= 5 * Math.sqrt(1 / 144 / n), `lag-1 covariance ${lag / n}`);
  const expected = n / 64;
  let chi2 = 0;
  for (const count of buckets) chi2 += (count - expected) ** 2 / expected;
  // Two-sided test at p = 1e-4 per tail (z = 3.719), 63 degrees of freedom: too good a fit is as
  // suspicious as too bad a one.
  const lo = chiSquareQuantile(63, -3.719), hi = chiSquareQuantile(63, 3.719);
  assert(chi2 >= lo && chi2 <= hi, `chi2 ${chi2} outside [${lo}, ${hi}]`);
});

Deno.test("rng validates its arguments and names the offending value", () => {
  assertThrows(() => uniform4(-1, 0, 0), RangeError, ["seed", "-1"]);
  assertThrows(() => uniform4(2 ** 53, 0, 0), RangeError, ["seed", "9007199254740992"]);
  assertThrows(() => uniform4(1.5, 0, 0), RangeError, ["seed", "1.5"]);
  assertThrows(() => uniform4(0, 2 ** 32, 0), RangeError, ["stream", "4294967296"]);
  assertThrows(() => uniform4(0, 0, -3), RangeError, ["index", "-3"]);
  assertThrows(() => uniform4(0, 0, NaN), RangeError, ["index", "NaN"]);
  assertThrows(() => uniforms(0, 0.5, 4), RangeError, ["stream", "0.5"]);
  assertThrows(() => uniforms(0, 0, -1), RangeError, ["count", "-1"]);
  assertThrows(() => uniforms(0, 0, 2.5), RangeError, ["count", "2.5"]);
  assertThrows(
    () => philox4x32([0, 0, 0] as unknown as [number, number, number, number], [0, 0]),
    TypeError,
    ["counter", "3 words"],
  );
  assertThrows(() => philox4x32([0, 0, 0, 2 ** 32], [0, 0]), RangeError, [
    "counter[3]",
    "4294967296",
  ]);
  assertThrows(() => philox4x32([0, 0, 0, 0], [0, -1]), RangeError, ["key[1]", "-1"]);
});
