/**
 * A system BLAS (`cblas_sgemm`) through Deno's FFI: OpenBLAS on Linux (Debian's
 * `libopenblas0-pthread`), Accelerate on macOS. {@linkcode loadBlas} finds the library, or returns
 * why it could not, so callers fall back instead of failing. Needs `--allow-ffi` (and
 * `--allow-env` for `TWOFOUR_BLAS`, which names a library file to use instead of the search).
 *
 * OpenBLAS built with `DYNAMIC_ARCH` picks its kernels by CPU model and falls back to SSE3
 * ("Prescott", 5–10× slower) on models newer than its release (Debian 12's 0.3.21 on Sapphire and
 * Emerald Rapids); unless `OPENBLAS_CORETYPE` is set, the loader sets it from the CPU's features
 * (glibc's CPUID table) before opening the library (`SKYLAKEX` for AVX-512, `HASWELL` for AVX2 +
 * FMA). Its idle threads spin for 2^28 cycles (about 0.1 s) after each GEMM by default, taking the
 * core the backend's helper thread needs for the element-wise work between GEMMs; unless
 * `OPENBLAS_THREAD_TIMEOUT` is set, the loader sets it to 4 (they sleep at once; the preset's step
 * measured 1.2–1.3× faster on 2 cores, and GEMMs small enough for one thread wake none).
 *
 * @module
 */

import { envGet, setDefaultEnv } from "./_env.ts";
import { openFirst } from "./_dlopen.ts";

/** The library file names tried in order when `TWOFOUR_BLAS` is not set. */
export const BLAS_CANDIDATES: readonly string[] = Deno.build.os === "darwin"
  ? ["/System/Library/Frameworks/Accelerate.framework/Accelerate", "libopenblas.dylib"]
  : [
    "libopenblas.so.0",
    "libopenblas.so",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  ];

const SYMBOLS = {
  cblas_sgemm: {
    // order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
} as const;

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/**
 * The arguments of a batched product `C[q] = op(A[q])·op(B[q])`, `q < batch`
 * ({@linkcode Blas.sgemmBatched}).
 */
export type BatchedProduct = [
  transA: boolean,
  transB: boolean,
  batch: number,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
];

/** A loaded BLAS: single-precision GEMM on row-major `Float32Array`s. */
export interface Blas {
  /** The library file that was opened. */
  readonly path: string;
  /** The library's own description (`openblas_get_config()` and core), or the path. */
  readonly version: string;
  /** Threads the library uses (`openblas_get_num_threads()`, or 0 when it cannot say). */
  readonly threads: number;
  /**
   * `C[M,N] = alpha·op(A)·op(B) + beta·C`, row-major, where `op(A)` is `[M,K]` (`A` stored
   * `[K,M]` when `transA`) and `op(B)` is `[K,N]` (`B` stored `[N,K]` when `transB`); the arrays
   * are views starting at the first element of each operand.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    B: Float32Array,
    beta: number,
    C: Float32Array,
  ): void;
  /**
   * Optional: `C[q] = op(A[q])·op(B[q])` for `q < batch` in one call, the operands packed one
   * after another (`A[q]` at `q·M·K`, `B[q]` at `q·K·N`, `C[q]` at `q·M·N`), each as in
   * {@linkcode Blas.sgemm} with `alpha = 1`, `beta = 0`. Libraries without it run
   * {@linkcode batchedSgemm}'s loop.
   */
  sgemmBatched?(...product: BatchedProduct): void;
  /** Closes the library. */
  close(): void;
}

/**
 * `C[q] = op(A[q])·op(B[q])` for `q < batch` ({@linkcode Blas.sgemmBatched}'s layout): the
 * library's batched call when it has one and `batch > 1`, else one `sgemm` per matrix.
 *
 * @param blas The library.
 * @param product The operands and their shapes.
 * @example
 * ```ts ignore
 * import { batchedSgemm, loadBlas } from "./blas.ts";
 * const blas = loadBlas();
 * const a = new Float32Array(2 * 6).fill(1), c = new Float32Array(2 * 4);
 * if ("sgemm" in blas) batchedSgemm(blas, false, true, 2, 2, 2, 3, a, a, c); // c is all 3s
 * ```
 */
export function batchedSgemm(
  blas: Pick<Blas, "sgemm" | "sgemmBatched">,
  ...product: BatchedProduct
): void {
  const [transA, transB, batch, M, N, K, A, B, C] = product;
  if (blas.sgemmBatched && batch > 1) {
    blas.sgemmBatched(...product);
    return;
  }
  for (let q = 0; q < batch; q++) {
    const [a, b, c] = [A.subarray(q * M * K), B.subarray(q * K * N), C.subarray(q * M * N)];
    blas.sgemm(transA, transB, M, N, K, 1, a, b, 0, c);
  }
}

/** Why {@linkcode loadBlas} found no library: every path tried and its error. */
export interface BlasUnavailable {
  /** `"missing"` (no candidate opened) or `"no-ffi"` (FFI permission denied). */
  reason: "missing" | "no-ffi";
  /** One line for the user. */
  message: string;
}

/** Options of {@linkcode loadBlas}. */
export interface LoadBlasOptions {
  /** Library files to try, in order (default: `TWOFOUR_BLAS` if set, else {@linkcode BLAS_CANDIDATES}). */
  paths?: readonly string[];
  /** Threads for OpenBLAS (default: `navigator.hardwareConcurrency`). */
  threads?: number;
  /**
   * `OPENBLAS_CORETYPE` to set before opening (default: chosen from the CPU flags when the
   * variable is unset); `false` leaves the library's own detection.
   */
  coreType?: string | false;
}

/**
 * Opens the first BLAS library that loads and exports `cblas_sgemm`.
 *
 * @param options Paths to try and the thread count.
 * @returns The library, or why none loaded (so the caller can fall back with a message).
 * @example
 * ```ts ignore
 * import { loadBlas } from "./blas.ts";
 * const blas = loadBlas();
 * if ("sgemm" in blas) console.log(blas.version); else console.log(blas.message);
 * ```
 */
export function loadBlas(options: LoadBlasOptions = {}): Blas | BlasUnavailable {
  let paths = options.paths;
  if (!paths) {
    const fromEnv = envGet("TWOFOUR_BLAS"); // without --allow-env: the default search
    paths = fromEnv ? [fromEnv] : BLAS_CANDIDATES;
  }
  const coreType = options.coreType === false ? "" : chooseCoreType(options.coreType);
  const timeout = setDefaultEnv("OPENBLAS_THREAD_TIMEOUT", "4");
  const opened = openFirst(
    paths,
    SYMBOLS,
    "BLAS library",
    "on Debian/Ubuntu: apt-get install libopenblas0-pthread",
    "no FFI permission (run with --allow-ffi to use the system BLAS)",
  );
  if (!("lib" in opened)) return opened;
  const threads = options.threads ?? navigator.hardwareConcurrency;
  const env = [coreType && `OPENBLAS_CORETYPE=${coreType}`, timeout];
  return openedBlas(opened.lib, opened.path, threads, env);
}

/**
 * Sets `OPENBLAS_CORETYPE` from the CPU's usable features when it is unset (see the module
 * header); returns the value set, or `""` when it was set already or the features are unknown.
 */
function chooseCoreType(forced?: string): string {
  try {
    if (forced) {
      Deno.env.set("OPENBLAS_CORETYPE", forced);
      return forced;
    }
    if (Deno.env.get("OPENBLAS_CORETYPE")) return "";
    const f = x86Features();
    const core = !f ? "" : f.avx512 ? "SKYLAKEX" : f.avx2 && f.fma ? "HASWELL" : "";
    if (core) Deno.env.set("OPENBLAS_CORETYPE", core);
    return core;
  } catch {
    return ""; // no --allow-env: OpenBLAS detects the core itself
  }
}

/**
 * The x86 features the CPU has and the OS enabled, from glibc's public
 * `__x86_get_cpuid_feature_leaf` (`<sys/platform/x86.h>`, glibc ≥ 2.33; Deno keeps
 * `/proc/cpuinfo` behind `--allow-all`); `null` elsewhere.
 */
function x86Features(): { avx512: boolean; avx2: boolean; fma: boolean } | null {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return null;
  let libc: Deno.DynamicLibrary<typeof LIBC> | undefined;
  try {
    libc = Deno.dlopen("libc.so.6", LIBC);
    // struct cpuid_feature { cpuid_array cpuid, active; }, each {eax, ebx, ecx, edx}: `active` at
    // byte 16. Leaf index 0 is CPUID 1, index 1 is CPUID 7 (subleaf 0).
    const active = (index: number, register: number) => {
      const p = libc!.symbols.__x86_get_cpuid_feature_leaf(index);
      return p ? new Deno.UnsafePointerView(p).getUint32(16 + 4 * register) : 0;
    };
    const ecx1 = active(0, 2), ebx7 = active(1, 1);
    const bit = (word: number, b: number) => ((word >>> b) & 1) === 1;
    return {
      // AVX512F (16), DQ (17), CD (28), BW (30), VL (31): what OpenBLAS's SKYLAKEX kernels use.
      avx512: [16, 17, 28, 30, 31].every((b) => bit(ebx7, b)),
      avx2: bit(ebx7, 5),
      fma: bit(ecx1, 12),
    };
  } catch {
    return null; // not glibc, or glibc before 2.33
  } finally {
    libc?.close();
  }
}

const LIBC = {
  __x86_get_cpuid_feature_leaf: { parameters: ["u32"], result: "pointer" },
} as const;

function openedBlas(
  lib: Deno.DynamicLibrary<typeof SYMBOLS>,
  path: string,
  threads: number,
  setByUs: string[],
): Blas {
  const s = lib.symbols;
  if (s.openblas_set_num_threads) s.openblas_set_num_threads(Math.max(1, threads));
  const text = (p: Deno.PointerValue | null) =>
    p ? new Deno.UnsafePointerView(p).getCString().trim() : "";
  const config = s.openblas_get_config ? text(s.openblas_get_config()) : "";
  const core = s.openblas_get_corename ? text(s.openblas_get_corename()) : "";
  const set = setByUs.filter((v) => v).join(", ");
  const forced = set ? `, ${set} set by twofour` : "";
  const version = config ? `${config}${core ? ` (core ${core}${forced})` : ""}` : path;
  const sgemm = s.cblas_sgemm;
  return {
    path,
    version,
    threads: s.openblas_get_num_threads ? s.openblas_get_num_threads() : 0,
    sgemm(transA, transB, M, N, K, alpha, A, B, beta, C) {
      sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        M,
        N,
        K,
        alpha,
        A,
        transA ? M : K,
        B,
        transB ? K : N,
        beta,
        C,
        N,
      );
    },
    close: () => lib.close(),
  };
}
