/**
 * oneDNN's `dnnl_sgemm` (Debian's `libdnnl2`, OpenMP runtime) through Deno's FFI, as a
 * {@linkcode Blas}, the CPU backend's default GEMM engine (`gemm.ts`): faster than OpenBLAS 0.3.21
 * over the `cpu` preset's products (`experiments/cpu_zoo.ts`), slower on the head's `Aᵀ·B`.
 * Batches (attention's heads) run as one call of oneDNN's matmul primitive (`_onednn_matmul.ts`,
 * `Blas.sgemmBatched`), or one `dnnl_sgemm` each where oneDNN has no primitive for the shape.
 * Needs `--allow-ffi` (and `--allow-env` to set the OpenMP variables).
 *
 * libgomp reads `OMP_NUM_THREADS` and its wait policy once, when it loads, so the loader sets them
 * first unless the user has: the thread count, and `OMP_WAIT_POLICY=PASSIVE` because the backend's
 * element-wise work runs on a helper thread between GEMMs and spinning OpenMP threads would take
 * its core.
 *
 * @module
 */

import { type BatchedProduct, batchedSgemm, type Blas, type BlasUnavailable } from "./blas.ts";
import { OnednnMatmul } from "./_onednn_matmul.ts";
import { envGet, setDefaultEnv } from "./_env.ts";
import { openFirst } from "./_dlopen.ts";

/** The library file names tried in order. */
export const ONEDNN_CANDIDATES: readonly string[] = [
  "libdnnl.so.2",
  "/usr/lib/x86_64-linux-gnu/libdnnl.so.2",
  "/usr/lib/aarch64-linux-gnu/libdnnl.so.2",
];

const SYMBOLS = {
  // transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc → dnnl_status_t
  dnnl_sgemm: {
    parameters: [
      "u8",
      "u8",
      "i64",
      "i64",
      "i64",
      "f32",
      "buffer",
      "i64",
      "buffer",
      "i64",
      "f32",
      "buffer",
      "i64",
    ],
    result: "i32",
  },
  dnnl_version: { parameters: [], result: "pointer" },
  omp_get_max_threads: { parameters: [], result: "i32", optional: true },
} as const;

const CHAR_N = 78, CHAR_T = 84;

/** Options of {@linkcode loadOnednn}. */
export interface LoadOnednnOptions {
  /** Library files to try, in order (default: {@linkcode ONEDNN_CANDIDATES}). */
  paths?: readonly string[];
  /** OpenMP threads, set as `OMP_NUM_THREADS` unless already set (default: the CPU count). */
  threads?: number;
}

/**
 * Opens oneDNN and wraps `dnnl_sgemm` as a {@linkcode Blas}.
 *
 * @param options Paths to try and the thread count.
 * @returns The library, or why none loaded.
 * @example
 * ```ts ignore
 * import { loadOnednn } from "./onednn.ts";
 * const dnnl = loadOnednn({ threads: 2 });
 * console.log("sgemm" in dnnl ? dnnl.version : dnnl.message);
 * ```
 */
export function loadOnednn(options: LoadOnednnOptions = {}): Blas | BlasUnavailable {
  const threads = Math.max(1, Math.floor(options.threads ?? navigator.hardwareConcurrency));
  const forced = setOpenmpEnv(threads); // once: a second call would find them set
  const opened = openFirst(
    options.paths ?? ONEDNN_CANDIDATES,
    SYMBOLS,
    "oneDNN library",
    "on Debian/Ubuntu: apt-get install libdnnl2",
    "no FFI permission (run with --allow-ffi)",
  );
  return "lib" in opened ? openedOnednn(opened.lib, opened.path, forced) : opened;
}

/** Sets the OpenMP variables the user left unset (module header); returns those it set. */
function setOpenmpEnv(threads: number): string {
  const set = [setDefaultEnv("OMP_NUM_THREADS", `${threads}`)];
  // A user's GOMP_SPINCOUNT is a wait policy of its own.
  if (envGet("GOMP_SPINCOUNT") === undefined) set.push(setDefaultEnv("OMP_WAIT_POLICY", "PASSIVE"));
  return set.filter((x) => x).join(" ");
}

function openedOnednn(
  lib: Deno.DynamicLibrary<typeof SYMBOLS>,
  path: string,
  forced: string,
): Blas {
  const s = lib.symbols;
  // dnnl_version_t: int major, minor, patch; const char* hash; unsigned cpu_runtime, gpu_runtime.
  const v = new Deno.UnsafePointerView(s.dnnl_version()!);
  const hashPointer = Deno.UnsafePointer.create(v.getBigUint64(16));
  const hash = hashPointer ? new Deno.UnsafePointerView(hashPointer).getCString().slice(0, 12) : "";
  const version = `oneDNN ${v.getInt32(0)}.${v.getInt32(4)}.${v.getInt32(8)}` +
    (hash && hash !== "N/A" ? ` (${hash})` : "") +
    `, OpenMP${forced ? `, ${forced} set by twofour` : ""}`;
  const dnnlSgemm = s.dnnl_sgemm;
  const sgemm: Blas["sgemm"] = (transA, transB, M, N, K, alpha, A, B, beta, C) => {
    // int64 dimensions: the FFI takes them as bigint.
    const status = dnnlSgemm(
      transA ? CHAR_T : CHAR_N,
      transB ? CHAR_T : CHAR_N,
      BigInt(M),
      BigInt(N),
      BigInt(K),
      alpha,
      A,
      BigInt(transA ? M : K),
      B,
      BigInt(transB ? K : N),
      beta,
      C,
      BigInt(N),
    );
    if (status !== 0) {
      throw new RangeError(
        `Cannot run dnnl_sgemm on ${M}×${N}×${K} (transA ${transA}, transB ${transB}): ` +
          `oneDNN status ${status}`,
      );
    }
  };
  const threads = s.omp_get_max_threads ? s.omp_get_max_threads() : 0;
  const matmul = OnednnMatmul.open(path);
  const close = () => {
    matmul?.close();
    lib.close();
  };
  if (!matmul) return { path, version, threads, sgemm, close };
  const sgemmBatched = (...product: BatchedProduct) => {
    const [, , batch, M, N, K, , , C] = product;
    if (batch === 0 || M === 0 || N === 0) return;
    if (K === 0) C.subarray(0, batch * M * N).fill(0);
    else if (!matmul.run(...product)) batchedSgemm({ sgemm }, ...product);
  };
  return { path, version, threads, sgemm, sgemmBatched, close };
}
