import { judgeProbe, olsSlope, selectAlpha } from "./_alpha_selection.ts";
import type { Curve } from "./_flip_rate_measures.ts";
import { assert, assertClose, assertThrows } from "../reference/testing.ts";

/** A curve of `n` steps from x = 1: `f(x)` plus a fixed ±`wiggle` alternation (the noise). */
function curve(n: number, f: (x: number) => number, wiggle = 0): Curve {
  return Array.from({ length: n }, (_, i) => [i + 1, f(i + 1) + (i % 2 ? wiggle : -wiggle)]);
}

Deno.test("olsSlope: an exact line has its slope and a zero-width interval; noise widens it", () => {
  const exact = olsSlope(curve(10, (x) => 3 - 0.5 * x));
  assertClose(new Float64Array([exact.slope, exact.lo, exact.hi]), [-0.5, -0.5, -0.5], {
    atol: 1e-12,
    rtol: 0,
  }, "exact slope");
  const noisy = olsSlope(curve(10, (x) => 3 - 0.5 * x, 0.2));
  assert(noisy.lo < -0.5 && noisy.hi > -0.5, `interval [${noisy.lo}, ${noisy.hi}]`);
  assertThrows(() => olsSlope([[1, 1], [2, 2]]), RangeError, "at least 3 points");
  assertThrows(() => olsSlope([[1, 1], [1, 2], [1, 3]]), RangeError, "every x is 1");
});

Deno.test("judgeProbe: the trend test rejects a flip rate rising against the dense bound", () => {
  const dense = curve(40, () => 1e-2, 5e-4);
  // Below the bound on average, but climbing steadily relative to dense: rejected as rising.
  const rising = judgeProbe(1e-3, 1, curve(40, (x) => 4e-3 + 1.5e-4 * (x - 20), 2e-4), dense, 20);
  assert(rising.below_bound, `mean ${rising.flip_rate} vs bound ${rising.bound}`);
  assert(
    rising.rising && !rising.healthy,
    `slope [${rising.ratio_slope.lo}, ${rising.ratio_slope.hi}]`,
  );
  // Flat with the same noise: not rising, healthy.
  const flat = judgeProbe(1e-3, 1, curve(40, () => 6e-3, 2e-4), dense, 20);
  assert(!flat.rising && flat.healthy, `slope [${flat.ratio_slope.lo}, ${flat.ratio_slope.hi}]`);
  // Falling but above the bound: not healthy for the level test alone.
  const above = judgeProbe(0, 1, curve(40, (x) => 2e-2 - 1e-4 * x, 2e-4), dense, 20);
  assert(!above.below_bound && !above.rising && !above.healthy, "above the bound");
  // A dense rate of 0 is left out of the ratio; too few steps is an error.
  assertThrows(
    () => judgeProbe(0, 1, curve(40, () => 1e-3), curve(40, () => 0), 20),
    RangeError,
    "at least 3 points",
  );
  assertThrows(
    () => judgeProbe(0, 1, curve(10, () => 1e-3), dense, 20),
    RangeError,
    "needs 3 steps from step 20",
  );
});

Deno.test("selectAlpha: the smallest α healthy in every seed, else the largest", () => {
  const dense = curve(40, () => 1e-2, 5e-4);
  const at = (alpha: number, seed: number, level: number) =>
    judgeProbe(alpha, seed, curve(40, () => level, 2e-4), dense, 20);
  const picked = selectAlpha([
    at(0, 1, 2e-2),
    at(0, 2, 2e-2),
    at(1e-3, 1, 5e-3),
    at(1e-3, 2, 2e-2), // healthy in one seed only
    at(1e-2, 1, 5e-3),
    at(1e-2, 2, 5e-3),
  ]);
  assert(picked.selected === 1e-2 && picked.healthy, picked.reason);
  assert(picked.reason.includes("α=1e-3: seed 2 above the bound"), picked.reason);
  const none = selectAlpha([at(0, 1, 2e-2), at(0, 2, 2e-2), at(1e-2, 1, 2e-2), at(1e-2, 2, 5e-3)]);
  assert(none.selected === 1e-2 && !none.healthy, none.reason);
});

Deno.test("gpt2.ts's --alpha default is the α selected in results/alpha_selection", async () => {
  const root = new URL("../", import.meta.url);
  const summary = JSON.parse(
    await Deno.readTextFile(new URL("results/alpha_selection/summary.json", root)),
  );
  const source = await Deno.readTextFile(new URL("experiments/gpt2.ts", root));
  const match = source.match(/^\s*alpha: ([0-9.e+-]+),/m);
  assert(match !== null, "gpt2.ts's config block has no alpha line");
  assert(
    Number(match[1]) === summary.selected_alpha,
    `gpt2.ts's --alpha default is ${match[1]}, the selection picked ${summary.selected_alpha}`,
  );
});

Deno.test("the gpu preset's H100 run trained T-SR-STE with the α selected at its size", async () => {
  const root = new URL("../", import.meta.url);
  const read = async (path: string) => JSON.parse(await Deno.readTextFile(new URL(path, root)));
  const selection = await read("results/gpt2_gpu/alpha_selection/summary.json");
  const run = await read("results/gpt2_gpu/summary.json");
  assert(
    run.config.alpha === selection.selected_alpha,
    `the run used α ${run.config.alpha}, the selection picked ${selection.selected_alpha}`,
  );
  const source = await Deno.readTextFile(new URL("experiments/gpt2.ts", root));
  assert(
    source.includes('alphaFrom: "results/gpt2_gpu/alpha_selection/summary.json"'),
    "gpt2.ts's gpu preset should read the committed selection",
  );
});
