import { assertThrows } from "../../reference/testing.ts";
import { loadGemm } from "./gemm.ts";
import { BLAS_CANDIDATES } from "./blas.ts";

Deno.test("loadGemm: an unknown engine is a TypeError naming the choices", () => {
  assertThrows(
    // @ts-expect-error: not an engine
    () => loadGemm({ gemm: "mkl" }),
    TypeError,
    'Cannot load a GEMM engine: expected one of auto, onednn, openblas, got "mkl"',
  );
});

Deno.test("loadGemm: explicit CBLAS paths run every product on that library", () => {
  const gemm = loadGemm({ paths: BLAS_CANDIDATES, threads: 1 });
  if (!("blas" in gemm)) throw new Error(gemm.message);
  if (!gemm.blas.version.includes("OpenBLAS")) throw new Error(`loaded ${gemm.blas.version}`);
  if (gemm.note !== "") throw new Error(`a forced engine has no note, got "${gemm.note}"`);
  gemm.blas.close();
});

Deno.test("loadGemm: a forced oneDNN that is missing says what to install", () => {
  const gemm = loadGemm({ gemm: "onednn", onednnPaths: ["/nonexistent/libdnnl.so.2"] });
  if ("blas" in gemm) throw new Error(`loaded ${gemm.blas.version}`);
  for (const part of ["/nonexistent/libdnnl.so.2", "apt-get install libdnnl2"]) {
    if (!gemm.message.includes(part)) throw new Error(`message lacks "${part}": ${gemm.message}`);
  }
});
