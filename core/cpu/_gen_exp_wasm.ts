/**
 * Regenerates `core/cpu/_exp_wasm_bytes.ts` from `core/cpu/_exp_wasm_source.ts` (wabt from npm, a
 * generation-time tool only; the backend loads the committed bytes). `core/cpu/exp_wasm_test.ts`
 * checks the committed bytes match the source.
 *
 * Usage: deno run --allow-read --allow-write --allow-env --allow-net=registry.npmjs.org core/cpu/_gen_exp_wasm.ts
 *
 * @module
 */

import { compileExpWat } from "./_exp_wasm_compile.ts";

const bytes = await compileExpWat();
const b64 = btoa(String.fromCharCode(...bytes));
const lines = b64.match(/.{1,96}/g)!.map((l) => `  "${l}",`).join("\n");
const path = new URL("./_exp_wasm_bytes.ts", import.meta.url);
await Deno.writeTextFile(
  path,
  `/**
 * The compiled bytes of \`_exp_wasm_source.ts\` (base64), written by \`core/cpu/_gen_exp_wasm.ts\`: do not
 * edit. Private to \`core/cpu/\`.
 *
 * @module
 */

/** The SIMD \`exp\` module (${bytes.length} bytes), base64. */
export const EXP_WASM_BASE64 = [
${lines}
].join("");
`,
);
console.log(`wrote ${path.pathname} (${bytes.length} bytes)`);
