/**
 * The measurements of `flip_rate.ts`: the per-step hard flip rate of the dense weights, the flip-rate
 * curves and their statistics, and the warm-up selection of the masked-decay factor α (SPEC 2.3,
 * 2.4).
 *
 * @module
 */

import type { Backend, Tensor } from "../core/backend.ts";
import type { GPT } from "../core/gpt2.ts";
import type { RunLog } from "./_lm.ts";

/** `6e-5`-style text of an α. */
export function fmtAlpha(alpha: number): string {
  return alpha === 0 ? "0" : alpha.toExponential().replace("e+", "e");
}

// ---- the per-step hard flip rate ---------------------------------------------------------------

/**
 * The **hard flip rate, per step**: measures, after every optimizer step, the fraction of the hard
 * top-2 mask bits (SPEC 1.1) of all sparse layers' dense weights that changed since the previous
 * measurement (SPEC 2.4: Σ flips / Σ entries); the first measurement only stores the mask and
 * reports `null`. It is the common currency of all the figures: for `dense`, `ste`, `sr-ste` and
 * `s-ste` it is the mask the method itself tracks (the trainer's flip rate, one step later); for
 * `t-sr-ste` it is the mask its weights would have if it were refreshed every step.
 */
export class HardMaskFlips {
  #previous: Tensor[] | undefined = undefined;

  async measure(model: GPT): Promise<number | null> {
    const be = model.backend;
    const layers = model.sparseLayers();
    const masks = layers.map((layer) => be.pruneNM(layer.weight.value, 2, 4).mask);
    let rate: number | null = null;
    if (this.#previous === undefined) {
      this.#previous = masks.map((m) => be.keep(m));
    } else {
      const previous = this.#previous;
      const counts = await be.readMany(masks.map((m, i) => be.flipCount(previous[i], m)));
      let flips = 0, entries = 0;
      layers.forEach((layer, i) => {
        flips += counts[i][0];
        entries += layer.maskSize;
      });
      rate = flips / entries;
      masks.forEach((m, i) => be.assign(previous[i], m));
    }
    be.release();
    return rate;
  }

  dispose(be: Backend): void {
    for (const t of this.#previous ?? []) be.dispose(t);
    this.#previous = undefined;
  }
}

// ---- statistics ---------------------------------------------------------------------------------

/** `[x, y]` points; x = optimizer steps completed when the mask was compared. */
export type Curve = [number, number][];

export function mean(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Mean of the points with `lo <= x < hi`. */
export function meanIn(curve: Curve, lo: number, hi: number): number | null {
  return mean(curve.filter(([x]) => x >= lo && x < hi).map(([, y]) => y));
}

/**
 * The per-step hard flip rate after step s compares the masks after steps s and s−1, i.e. the
 * flips that step s made; plotted at x = s + 1 (steps completed).
 */
export function hardCurve(log: RunLog): Curve {
  return log.steps.filter((s) => typeof s.extra?.hardFlipRate === "number")
    .map((s) => [s.step + 1, s.extra!.hardFlipRate as number]);
}

/**
 * The **mask-in-use flip rate**, what the trainer reports: computed at the start of step s from the
 * weights after s steps (flips since the previous computation); step 0 (a first computation) is
 * left out. The same hard mask as {@linkcode HardMaskFlips} except for `t-sr-ste`, whose
 * transposable mask is recomputed only every `--maskRefresh` steps, so its number is **per
 * refresh** (flips accumulated over `maskRefresh` steps), not comparable step for step, and
 * plotted separately.
 */
export function maskCurve(log: RunLog): Curve {
  return log.steps.filter((s) => s.flipRate !== null && s.step > 0)
    .map((s) => [s.step, s.flipRate!]);
}

export function movingAverage(curve: Curve, k: number): Curve {
  return curve.map(([x], i) => {
    const w = curve.slice(Math.max(0, i - k + 1), i + 1);
    return [x, w.reduce((a, [, y]) => a + y, 0) / w.length];
  });
}

export interface CurveStats {
  first_third: number | null;
  last_third: number | null;
  max: number | null;
  final: number | null;
  points: number;
}

export function curveStats(curve: Curve, steps: number): CurveStats {
  return {
    first_third: meanIn(curve, 0, steps / 3),
    last_third: meanIn(curve, (2 * steps) / 3, Infinity),
    max: curve.length ? Math.max(...curve.map(([, y]) => y)) : null,
    final: curve.at(-1)?.[1] ?? null,
    points: curve.length,
  };
}

// ---- α selection --------------------------------------------------------------------------------

export interface ProbeResult {
  alpha: number;
  /** Mean per-step transposable-mask flip rate over each third of the warm-up. */
  thirds: (number | null)[];
  /** Mean per-step hard flip rate of the dense weights over each third (for reference). */
  hard_thirds: (number | null)[];
  below_bound: boolean;
  not_rising: boolean;
  healthy: boolean;
  curve: Curve;
}

/** The warm-up thirds over steps `1..warmup−1` as `[lo, hi)` ranges of x. */
export function warmupThirds(warmup: number): [number, number][] {
  const span = warmup - 1;
  return [0, 1, 2].map((k) => [1 + (k * span) / 3, 1 + ((k + 1) * span) / 3]);
}

/**
 * Judges one warm-up probe (this project's operationalisation of SPEC 2.3; the paper's procedure
 * was not available). During the LR warm-up (`--warmup` steps, same init and data order), a
 * T-SR-STE probe runs for every α of `--probeAlphas` with `maskRefresh = 1`, so its transposable
 * mask's flip rate is per step like the bound: the per-step hard flip rate of the dense run over
 * the same steps, times `--healthyFactor`. Probe steps `1..warmup−1` (step 0 is the first mask
 * computation) are split into thirds; a probe is healthy when (1) its mean flip rate over the
 * middle and over the last third each stay at or below the bound's mean over the same third, and
 * (2) it does not rise: the last third's mean is at most the middle third's.
 */
export function judgeProbe(
  alpha: number,
  curve: Curve,
  hard: Curve,
  bound: (number | null)[],
  warmup: number,
): ProbeResult {
  const thirds = warmupThirds(warmup).map(([lo, hi]) => meanIn(curve, lo, hi));
  const hardThirds = warmupThirds(warmup).map(([lo, hi]) => meanIn(hard, lo, hi));
  const below = [1, 2].every((k) =>
    thirds[k] !== null && bound[k] !== null && thirds[k]! <= bound[k]!
  );
  const notRising = thirds[1] !== null && thirds[2] !== null && thirds[2]! <= thirds[1]!;
  return {
    alpha,
    thirds,
    hard_thirds: hardThirds,
    below_bound: below,
    not_rising: notRising,
    healthy: below && notRising,
    curve,
  };
}

/**
 * Picks the smallest healthy α of the probes (the largest α of the grid when none is healthy, and
 * the summary says so) and says why. If the selected α is not part of `--alphas`, `main` adds a
 * full T-SR-STE run with it (`--runSelected`).
 */
export function selectAlpha(
  probes: ProbeResult[],
  bound: (number | null)[],
  healthyFactor: number,
): { selected: number; healthy: boolean; reason: string } {
  const f = (v: number | null) => v === null ? "–" : v.toExponential(2);
  const grid = `{${probes.map((p) => fmtAlpha(p.alpha)).join(", ")}}`;
  const chosen = probes.find((p) => p.healthy);
  if (chosen === undefined) {
    const largest = probes.at(-1)!.alpha;
    return {
      selected: largest,
      healthy: false,
      reason: `no α of ${grid} kept the flip rate at or below the bound without rising; the ` +
        `largest, α=${fmtAlpha(largest)}, is used`,
    };
  }
  const failed = probes.filter((p) => p.alpha < chosen.alpha).map((p) =>
    `α=${fmtAlpha(p.alpha)} ${
      [p.below_bound ? "" : "above the bound", p.not_rising ? "" : "rising"]
        .filter(Boolean).join(" and ")
    }`
  );
  return {
    selected: chosen.alpha,
    healthy: true,
    reason: `α=${fmtAlpha(chosen.alpha)} is the smallest α of ${grid} whose per-step ` +
      `transposable-mask flip rate over the middle and last thirds of the warm-up ` +
      `(${f(chosen.thirds[1])}, ${f(chosen.thirds[2])}) stays at or below the bound ` +
      `(${healthyFactor} × the dense run's hard flip rate: ${f(bound[1])}, ${f(bound[2])}) and ` +
      `does not rise${failed.length > 0 ? `; smaller α failed: ${failed.join("; ")}` : ""}`,
  };
}
