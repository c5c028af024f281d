/**
 * The `summary.json` every experiment writes: its opening fields (what ran, when, how long, the
 * full configuration; the language-model experiments add their backend, `lm.ts`) and the file's
 * format (one-space indent, a final newline).
 *
 * @module
 */

/** The opening fields of a CPU experiment's summary. */
export interface SummaryFields<C> {
  experiment: string;
  /** ISO time the summary was made. */
  date: string;
  /** Seconds since `started`. */
  wall_seconds: number;
  config: C;
}

/**
 * The opening fields of a summary, dated now.
 *
 * @param experiment The experiment's name.
 * @param run `performance.now()` when the work began, and the configuration.
 */
export function summaryFields<C>(
  experiment: string,
  run: { started: number; config: C },
): SummaryFields<C> {
  return {
    experiment,
    date: new Date().toISOString(),
    wall_seconds: (performance.now() - run.started) / 1000,
    config: run.config,
  };
}

/** Writes `<out>/summary.json`. */
export async function writeSummary(out: string, summary: unknown): Promise<void> {
  await Deno.writeTextFile(`${out}/summary.json`, JSON.stringify(summary, null, 1) + "\n");
}
