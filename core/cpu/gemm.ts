/**
 * Which library runs the CPU backend's GEMMs. `auto` (the default): oneDNN (`onednn.ts`) when it
 * loads, else OpenBLAS (`blas.ts`) with a note. Measured on the 2-core machine (commit 116c961,
 * `experiments/bench_cpu.ts --engines=cpu,cpu-onednn` with `cpu` on OpenBLAS, and the reverse order, no PyTorch in the
 * rounds, quiet): the `cpu` preset's step took 74.6 / 61.3 / 62.8 / 60.9 ms on oneDNN and
 * 83.1 / 66.5 / 67.8 / 68.5 ms on OpenBLAS (with its idle threads sleeping at once,
 * `OPENBLAS_THREAD_TIMEOUT=4`); sending oneDNN's weak products (the head's `Aᵀ·B`, attention's small
 * ones) to OpenBLAS measured slower than oneDNN alone. `TWOFOUR_GEMM` (`auto`, `onednn`,
 * `openblas`) overrides the default; `TWOFOUR_BLAS` or explicit `paths` name a CBLAS library, which
 * then runs every product.
 *
 * @module
 */

import { type Blas, type BlasUnavailable, loadBlas, type LoadBlasOptions } from "./blas.ts";
import { loadOnednn } from "./onednn.ts";
import { envGet } from "./_env.ts";

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
}

/** What {@linkcode loadGemm} loaded, and a line for the user when `auto` fell back. */
export interface LoadedGemm {
  blas: Blas;
  /** Why `auto` fell back to OpenBLAS (empty otherwise). */
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
  const dnnl = loadOnednn(dnnlOptions);
  if ("sgemm" in dnnl) return { blas: dnnl, note: "" };
  const blas = loadBlas(options);
  if (!("sgemm" in blas)) {
    return dnnl.reason === "no-ffi"
      ? dnnl
      : { ...blas, message: `${blas.message}; ${dnnl.message}` };
  }
  return { blas, note: `GEMMs through OpenBLAS (${dnnl.message}; about 1.1× slower steps)` };
}

function loaded(blas: Blas | BlasUnavailable): LoadedGemm | BlasUnavailable {
  return "sgemm" in blas ? { blas, note: "" } : blas;
}
