/**
 * The learning-rate schedule of SPEC §4: linear warm-up, then a cosine decay to a floor.
 *
 * @module
 */

/** Parameters of {@linkcode cosineLr}. */
export interface CosineSchedule {
  /** Peak learning rate, reached at the end of the warm-up. */
  peakLr: number;
  /** Number of warm-up steps (0: none). */
  warmupSteps: number;
  /** Total number of optimizer steps; the floor is reached here and kept afterwards. */
  totalSteps: number;
  /** The floor the cosine decays to. */
  minLr: number;
}

/**
 * Checks a schedule.
 *
 * @param schedule The schedule.
 * @throws {RangeError} Unless `0 ≤ minLr ≤ peakLr` are finite, `warmupSteps` is an integer in
 * `[0, totalSteps)` and `totalSteps` a positive integer.
 */
export function assertCosineSchedule(schedule: CosineSchedule): void {
  const { peakLr, warmupSteps, totalSteps, minLr } = schedule;
  const action = "use the learning-rate schedule";
  if (!Number.isFinite(peakLr) || !Number.isFinite(minLr) || minLr < 0 || minLr > peakLr) {
    throw new RangeError(
      `Cannot ${action}: need finite 0 <= minLr <= peakLr, got minLr ${minLr}, peakLr ${peakLr}`,
    );
  }
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw new RangeError(
      `Cannot ${action}: totalSteps must be a positive integer, got ${totalSteps}`,
    );
  }
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps >= totalSteps) {
    throw new RangeError(
      `Cannot ${action}: warmupSteps must be an integer in [0, totalSteps = ${totalSteps}), got ${warmupSteps}`,
    );
  }
}

/**
 * The learning rate of optimizer step `step` (0-based): `peak·s/warmup` for `s < warmup`, else
 * `floor + ½(peak − floor)(1 + cos(π·(s − warmup)/(total − warmup)))`, and the floor for
 * `s ≥ total`.
 *
 * @param step The 0-based step, a non-negative integer.
 * @param schedule `{ peakLr, warmupSteps, totalSteps, minLr }`.
 * @returns The learning rate.
 * @throws {RangeError} On a negative or non-integer step or an invalid schedule.
 * @example
 * ```ts
 * import { cosineLr } from "./schedule.ts";
 * // The authors' GPT-2 configuration (SPEC §9).
 * const s = { peakLr: 1.5e-4, warmupSteps: 3000, totalSteps: 300000, minLr: 1e-5 };
 * if (cosineLr(0, s) !== 0 || cosineLr(1500, s) !== 7.5e-5 || cosineLr(300000, s) !== 1e-5) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function cosineLr(step: number, schedule: CosineSchedule): number {
  assertCosineSchedule(schedule);
  if (!Number.isInteger(step) || step < 0) {
    throw new RangeError(
      `Cannot compute the learning rate: the step must be a non-negative integer, got ${step}`,
    );
  }
  const { peakLr, warmupSteps, totalSteps, minLr } = schedule;
  if (step < warmupSteps) return peakLr * (step / warmupSteps);
  if (step >= totalSteps) return minLr;
  const progress = (step - warmupSteps) / (totalSteps - warmupSteps);
  return minLr + 0.5 * (peakLr - minLr) * (1 + Math.cos(Math.PI * progress));
}
