/**
 * Which library runs the CPU backend's GEMMs. `auto` (the default): OpenBLAS (`blas.ts`) when it
 * loads, else oneDNN (`onednn.ts`) with a note. Measured on the 2-core machine (commit 6243dbb,
 * `experiments/bench_cpu.ts --engines=cpu-openblas,cpu-onednn,torch`, quiet, same run, three runs):
 * the `cpu` preset's step took 94.2 / 95.9 / 81.0 ms on OpenBLAS and 97.7 / 100.0 / 85.0 ms on
 * oneDNN. oneDNN's products alone are faster (`experiments/cpu_zoo.ts`: 36.2 vs 37.7 ms of GEMM
 * per step), but waking its OpenMP threads for each of the step's products costs more than that;
 * OpenBLAS's threads sleep at once (`OPENBLAS_THREAD_TIMEOUT=4`, `blas.ts`). `TWOFOUR_GEMM`
 * (`auto`, `onednn`, `openblas`) overrides the default; `TWOFOUR_BLAS` or explicit `paths` name a
 * CBLAS library, which then runs every product.
 *
 * @module
 */

import { type Blas, type BlasUnavailable, loadBlas, type LoadBlasOptions } from "./blas.ts";
import { loadOnednn } from "./onednn.ts";

/** The GEMM engines {@linkcode loadGemm} can load. */
export const GEMM_ENGINES = ["auto", "onednn", "openblas"] as const;
/** One of {@linkcode GEMM_ENGINES}. */
export type GemmEngine = typeof GEMM_ENGINES[number];

/** Options of {@linkcode loadGemm}: the BLAS options plus the engine. */
export interface LoadGemmOptions extends LoadBlasOptions {
  /** The engine (default: `TWOFOUR_GEMM`, else `auto`; `openblas` when `paths` are given). */
  gemm?: GemmEngine;
  /** oneDNN library files to try (default: `ONEDNN_CANDIDATES` of `onednn.ts`). */
  onednnPaths?: readonly string[];
  /** OpenBLAS library files `auto` tries (default: as {@linkcode loadBlas}). */
  openblasPaths?: readonly string[];
}

/** What {@linkcode loadGemm} loaded, and a line for the user when `auto` fell back. */
export interface LoadedGemm {
  blas: Blas;
  /** Why `auto` fell back to oneDNN (empty otherwise). */
  note: string;
}

/**
 * Loads the GEMM engine (module header).
 *
 * @param options The engine, library paths and thread count.
 * @returns The engine and a note, or why no library loaded.
 * @throws {TypeError} If `gemm` or `TWOFOUR_GEMM` names no engine.
 * @example
 * ```ts ignore
 * import { loadGemm } from "./gemm.ts";
 * const gemm = loadGemm();
 * console.log("blas" in gemm ? gemm.blas.version : gemm.message);
 * ```
 */
export function loadGemm(options: LoadGemmOptions = {}): LoadedGemm | BlasUnavailable {
  const engine = options.gemm ??
    (options.paths || envGet("TWOFOUR_BLAS") ? "openblas" : (envGet("TWOFOUR_GEMM") || "auto"));
  if (!(GEMM_ENGINES as readonly string[]).includes(engine)) {
    throw new TypeError(
      `Cannot load a GEMM engine: expected one of ${GEMM_ENGINES.join(", ")}, got "${engine}"`,
    );
  }
  const dnnlOptions = { threads: options.threads, paths: options.onednnPaths };
  if (engine === "openblas") return loaded(loadBlas(options));
  if (engine === "onednn") return loaded(loadOnednn(dnnlOptions));
  const blas = loadBlas({ ...options, paths: options.openblasPaths });
  if ("sgemm" in blas) return { blas, note: "" };
  const dnnl = loadOnednn(dnnlOptions);
  if (!("sgemm" in dnnl)) {
    return blas.reason === "no-ffi"
      ? blas
      : { ...blas, message: `${blas.message}; ${dnnl.message}` };
  }
  return { blas: dnnl, note: `GEMMs through oneDNN (${blas.message})` };
}

function loaded(blas: Blas | BlasUnavailable): LoadedGemm | BlasUnavailable {
  return "sgemm" in blas ? { blas, note: "" } : blas;
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults
  }
}
