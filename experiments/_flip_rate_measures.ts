/**
 * The measurements of `flip_rate.ts` (and of `alpha_select.ts`, which selects the masked-decay
 * factor α, SPEC 2.3): the per-step flip rate of a mask of the dense weights, the flip-rate curves
 * and their statistics (SPEC 2.4).
 *
 * @module
 */

import type { Backend, Tensor } from "../core/backend.ts";
import type { GPT } from "../core/gpt2.ts";
import type { RunLog } from "./lm.ts";

/** `6e-5`-style text of an α. */
export function fmtAlpha(alpha: number): string {
  return alpha === 0 ? "0" : alpha.toExponential().replace("e+", "e");
}

// ---- the per-step flip rates of the dense weights ----------------------------------------------

/**
 * A **per-step flip rate** of a mask computed from the dense weights: after every optimizer step,
 * the fraction of the bits of `kind`'s mask (SPEC 1.1's hard top-2 mask, or SPEC 1.4's
 * transposable mask) of all sparse layers' weights that changed since the previous measurement
 * (SPEC 2.4: Σ flips / Σ entries); the first measurement only stores the mask and reports `null`.
 * The hard kind is the common currency of the flip-rate figures (for `dense`, `ste`, `sr-ste` and
 * `s-ste` it is the mask the method itself tracks); the transposable kind on a dense run is the
 * like-for-like bound of the α selection (a transposable change flips at least 4 bits, a top-2
 * change 2, so the two rates are not comparable).
 */
export class MaskFlips {
  readonly kind: "hard" | "transposable";
  #previous: Tensor[] | undefined = undefined;

  constructor(kind: "hard" | "transposable" = "hard") {
    this.kind = kind;
  }

  async measure(model: GPT): Promise<number | null> {
    const be = model.backend;
    const layers = model.sparseLayers();
    const masks = layers.map((layer) =>
      this.kind === "hard"
        ? be.pruneNM(layer.weight.value, 2, 4).mask
        : be.transposableMask24(layer.weight.value)
    );
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

/** The pointwise mean of curves sampled at the same x (one run per seed). */
export function meanCurve(curves: readonly Curve[]): Curve {
  if (curves.length === 0) return [];
  return curves[0].map(([x], i) => [x, curves.reduce((a, c) => a + c[i][1], 0) / curves.length]);
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
