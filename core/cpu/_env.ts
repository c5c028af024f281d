/**
 * Environment access for the GEMM loaders (`blas.ts`, `onednn.ts`, `gemm.ts`): the libraries read
 * their settings when they open, and without `--allow-env` the defaults apply. Private to
 * `core/cpu/`.
 *
 * @module
 */

/** The variable's value; `undefined` when unset or not allowed. */
export function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults
  }
}

/**
 * Sets an environment variable a library reads when it opens, unless it is set (or not allowed);
 * returns `"NAME=value"` when it set it, else `""`.
 */
export function setDefaultEnv(name: string, value: string): string {
  try {
    if (Deno.env.get(name) !== undefined) return "";
    Deno.env.set(name, value);
    return `${name}=${value}`;
  } catch {
    return ""; // no --allow-env: the library's default
  }
}
