/**
 * Compiles `_exp_wasm_source.ts` with wabt (npm; generation and tests only, never loaded by the
 * backend). Private to `core/cpu/`.
 *
 * @module
 */

import wabtInit from "wabt";
import { expWat } from "./_exp_wasm_source.ts";

/** The module's bytes as wabt writes them (SIMD enabled, no names section). */
export async function compileExpWat(): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const parsed = wabt.parseWat("exp.wat", expWat(), { simd: true });
  parsed.resolveNames();
  parsed.validate();
  const { buffer } = parsed.toBinary({ log: false, write_debug_names: false });
  parsed.destroy();
  return new Uint8Array(buffer);
}
