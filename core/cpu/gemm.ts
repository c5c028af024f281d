/**
 * Which library runs the CPU backend's GEMMs. `auto` (the default): oneDNN (`onednn.ts`) when it
 * loads, else OpenBLAS (`blas.ts`) with a note: on the 2-core machine the `cpu` preset's step ran
 * 1.0–1.33× (median 1.2×, 13 runs) faster on oneDNN (`experiments/bench_cpu.ts
 * --engines=cpu-openblas,cpu-onednn`, same run); sending its weak products (the head's `Aᵀ·B`,
 * attention's small ones) to OpenBLAS instead measured slower than oneDNN alone. `TWOFOUR_GEMM`
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
  return { blas, note: `GEMMs through OpenBLAS (${dnnl.message}; about 1.2× slower steps)` };
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
