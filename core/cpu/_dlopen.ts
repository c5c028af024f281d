/**
 * The GEMM loaders' library search (`blas.ts`, `onednn.ts`): the first path that opens, or why
 * none did. Private to `core/cpu/`.
 *
 * @module
 */

import type { BlasUnavailable } from "./blas.ts";

/**
 * Opens the first of `paths` that loads with `symbols`.
 *
 * @param what The library's name in the message, e.g. "BLAS library".
 * @param install How to install it, appended to the message of a failed search.
 * @param noFfi The message when FFI is not permitted.
 */
export function openFirst<S extends Deno.ForeignLibraryInterface>(
  paths: readonly string[],
  symbols: S,
  what: string,
  install: string,
  noFfi: string,
): { lib: Deno.DynamicLibrary<S>; path: string } | BlasUnavailable {
  const errors: string[] = [];
  for (const path of paths) {
    try {
      return { lib: Deno.dlopen(path, symbols), path };
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        return { reason: "no-ffi", message: noFfi };
      }
      errors.push(`${path}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return {
    reason: "missing",
    message: `no ${what} found (tried ${errors.join("; ")}); ${install}`,
  };
}
