import { assertProductClose, seededFloats } from "../reference/testing.ts";
import { packA, packB, WasmGemm } from "./_wasm_gemm.ts";

Deno.test("WebAssembly GEMM on two threads: products within the float32 bound, and many short calls never stall", async () => {
  const [M, N, K] = [36, 24, 13];
  const a = seededFloats(K * M, 1), b = seededFloats(N * K, 2); // A stored [K,M], B stored [N,K]
  const g = await WasmGemm.create(1 << 20, 2);
  try {
    const f = new Float32Array(g.memory.buffer);
    const [aOff, bOff, cOff] = [0, M * K, M * K + K * N];
    packA(f, aOff, a, M, K, true);
    packB(f, bOff, b, K, N, true);
    // Thousands of calls of a few microseconds: the hand-off between the threads once slept for
    // ever when the worker finished between the main thread's check and its wait.
    for (let i = 0; i < 20_000; i++) g.run(4 * aOff, 4 * bOff, 4 * cOff, M, N, K);
    const c = f.slice(cOff, cOff + M * N);
    assertProductClose(
      "wasm 2t",
      c,
      { rows: M, cols: N, k: K },
      (i, k) => a[k * M + i],
      (j, k) => b[j * K + k],
    );
  } finally {
    g.close();
  }
});
