import { cosineLr } from "./schedule.ts";

const AUTHORS = { peakLr: 1.5e-4, warmupSteps: 3000, totalSteps: 300000, minLr: 1e-5 };

Deno.test("cosineLr: SPEC §9 values of the authors' GPT-2 schedule", () => {
  const cases: [number, number][] = [
    [0, 0],
    [1500, 7.5e-5],
    [3000, 1.5e-4],
    [151500, 8.0e-5],
    [300000, 1e-5],
  ];
  for (const [step, want] of cases) {
    const got = cosineLr(step, AUTHORS);
    if (Math.abs(got - want) > 1e-18) throw new Error(`lr(${step}) = ${got}, expected ${want}`);
  }
});

Deno.test("cosineLr: linear warm-up, monotone cosine decay, floor after the end", () => {
  const s = { peakLr: 1, warmupSteps: 4, totalSteps: 12, minLr: 0.1 };
  for (let k = 0; k < 4; k++) if (cosineLr(k, s) !== k / 4) throw new Error(`warm-up at ${k}`);
  for (let k = 5; k <= 12; k++) {
    if (!(cosineLr(k, s) < cosineLr(k - 1, s))) throw new Error(`not decreasing at ${k}`);
  }
  const mid = cosineLr(8, s); // halfway through the decay: floor + (peak − floor)/2
  if (Math.abs(mid - 0.55) > 1e-15) throw new Error(`midpoint ${mid}`);
  if (cosineLr(13, s) !== 0.1 || cosineLr(1000, s) !== 0.1) throw new Error("floor after the end");
  const none = { peakLr: 2, warmupSteps: 0, totalSteps: 10, minLr: 0 };
  if (cosineLr(0, none) !== 2) throw new Error("no warm-up starts at the peak");
});

Deno.test("cosineLr: invalid steps and schedules are RangeErrors", () => {
  const bad: [number, Partial<typeof AUTHORS>, RegExp][] = [
    [-1, {}, /step must be a non-negative integer, got -1/],
    [1.5, {}, /step must be a non-negative integer, got 1.5/],
    [0, { warmupSteps: 300000 }, /warmupSteps must be an integer in \[0, totalSteps = 300000\)/],
    [0, { totalSteps: 0 }, /totalSteps must be a positive integer, got 0/],
    [0, { minLr: 1 }, /minLr <= peakLr/],
    [0, { minLr: -1e-5 }, /0 <= minLr/],
  ];
  for (const [step, override, pattern] of bad) {
    let ok = false;
    try {
      cosineLr(step, { ...AUTHORS, ...override });
    } catch (e) {
      ok = e instanceof RangeError && pattern.test(e.message);
      if (!ok) throw new Error(`unexpected error ${e}`);
    }
    if (!ok) throw new Error(`accepted ${step} ${JSON.stringify(override)}`);
  }
});
