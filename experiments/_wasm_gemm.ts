/**
 * The WebAssembly SIMD candidate of the CPU GEMM zoo (`cpu_zoo.ts`): a hand-written 4×8 register
 * tile (8 `v128` accumulators, `f32x4.relaxed_madd`, i.e. FMA where V8 lowers it so) computing
 * `C[M,N] = A[M,K]·B[K,N]` for rows `[r0, r1)` in a shared memory, so a worker can take half the
 * rows. `B` is packed in panels of 8 columns (`[N/8][K][8]`, so the inner loop reads 32 contiguous
 * bytes per `k`, and one panel stays in L1 while the rows stream past it); {@linkcode packB} writes that layout from either storage order. V8's SIMD is 128 bits wide, so even a perfect kernel reaches 1/4 of an AVX-512 FMA peak.
 * Requires `M % 4 == 0` and `N % 8 == 0` (true of every zoo shape). Private to `experiments/`.
 *
 * @module
 */

import wabtInit from "wabt";

const ROWS = 4, COLS = 8;

/** WAT text of the kernel (`gemm(a, b, c, M, N, K, r0, r1)`, byte offsets into the memory). */
export function gemmWat(): string {
  const acc = (r: number, h: number) => `$c${r}${h}`;
  const locals: string[] = [];
  for (let r = 0; r < ROWS; r++) {
    for (let h = 0; h < 2; h++) locals.push(`(local ${acc(r, h)} v128)`);
  }
  const zero = [], fma = [], store = [];
  for (let r = 0; r < ROWS; r++) {
    for (let h = 0; h < 2; h++) zero.push(`(local.set ${acc(r, h)} (v128.const i32x4 0 0 0 0))`);
    fma.push(`(local.set $x (v128.load32_splat (local.get $pa${r})))`);
    for (let h = 0; h < 2; h++) {
      fma.push(
        `(local.set ${acc(r, h)} (f32x4.relaxed_madd (local.get $x) (local.get $b${h}) (local.get ${
          acc(r, h)
        })))`,
      );
    }
    fma.push(`(local.set $pa${r} (i32.add (local.get $pa${r}) (i32.const 4)))`);
    for (let h = 0; h < 2; h++) {
      store.push(
        `(v128.store offset=${
          16 * h
        } (i32.add (local.get $pc) (i32.mul (i32.const ${r}) (local.get $rowC))) (local.get ${
          acc(r, h)
        }))`,
      );
    }
  }
  return `(module
  (import "env" "mem" (memory 1 65536 shared))
  (func (export "gemm") (param $a i32) (param $b i32) (param $c i32) (param $M i32) (param $N i32)
      (param $K i32) (param $r0 i32) (param $r1 i32)
    (local $i i32) (local $j i32) (local $k i32) (local $pb i32) (local $pc i32)
    (local $rowA i32) (local $rowC i32) (local $pa0 i32) (local $pa1 i32) (local $pa2 i32) (local $pa3 i32)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    ${locals.join(" ")}
    (local.set $rowA (i32.shl (local.get $K) (i32.const 2)))
    (local.set $rowC (i32.shl (local.get $N) (i32.const 2)))
    (local.set $j (i32.const 0))
    (block $jDone (loop $jLoop
      (br_if $jDone (i32.ge_u (local.get $j) (local.get $N)))
      (local.set $i (local.get $r0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $r1)))
        ${zero.join("\n        ")}
        (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowA))))
        (local.set $pa1 (i32.add (local.get $pa0) (local.get $rowA)))
        (local.set $pa2 (i32.add (local.get $pa1) (local.get $rowA)))
        (local.set $pa3 (i32.add (local.get $pa2) (local.get $rowA)))
        (local.set $pb (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $rowA))))
        (local.set $k (local.get $K))
        (block $kDone (loop $kLoop
          (br_if $kDone (i32.eqz (local.get $k)))
          (local.set $b0 (v128.load (local.get $pb)))
          (local.set $b1 (v128.load offset=16 (local.get $pb)))
          ${fma.join("\n          ")}
          (local.set $pb (i32.add (local.get $pb) (i32.const 32)))
          (local.set $k (i32.sub (local.get $k) (i32.const 1)))
          (br $kLoop)))
        (local.set $pc (i32.add (local.get $c)
          (i32.shl (i32.add (i32.mul (local.get $i) (local.get $N)) (local.get $j)) (i32.const 2))))
        ${store.join("\n        ")}
        (local.set $i (i32.add (local.get $i) (i32.const ${ROWS})))
        (br $iLoop)))
      (local.set $j (i32.add (local.get $j) (i32.const ${COLS})))
      (br $jLoop)))))`;
}

/** The kernel's compiled module. */
export async function compileGemm(): Promise<WebAssembly.Module> {
  const wabt = await wabtInit();
  const parsed = wabt.parseWat("gemm.wat", gemmWat(), {
    simd: true,
    relaxed_simd: true,
    threads: true,
  });
  const { buffer } = parsed.toBinary({});
  parsed.destroy();
  return await WebAssembly.compile(new Uint8Array(buffer));
}

/**
 * Packs `op(B)` (`[K,N]`, or stored `[N,K]` when `transB`) into 8-column panels at float offset
 * `dst` of `f`.
 */
export function packB(
  f: Float32Array,
  dst: number,
  b: Float32Array,
  K: number,
  N: number,
  transB: boolean,
): void {
  for (let j0 = 0; j0 < N; j0 += COLS) {
    const panel = dst + j0 * K;
    for (let k = 0; k < K; k++) {
      const o = panel + k * COLS;
      for (let jj = 0; jj < COLS; jj++) {
        f[o + jj] = transB ? b[(j0 + jj) * K + k] : b[k * N + j0 + jj];
      }
    }
  }
}

/** Writes `op(A)` (`[M,K]`, or stored `[K,M]` when `transA`) row-major at float offset `dst`. */
export function packA(
  f: Float32Array,
  dst: number,
  a: Float32Array,
  M: number,
  K: number,
  transA: boolean,
): void {
  if (!transA) {
    f.set(a.subarray(0, M * K), dst);
    return;
  }
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < M; i++) f[dst + i * K + k] = a[k * M + i];
  }
}

type GemmFn = (
  a: number,
  b: number,
  c: number,
  M: number,
  N: number,
  K: number,
  r0: number,
  r1: number,
) => void;

/** Worker source: instantiates the module on the shared memory, then runs row ranges on demand. */
const WORKER = `
let gemm;
self.onmessage = async (e) => {
  const { module, memory, control } = e.data;
  const inst = await WebAssembly.instantiate(module, { env: { mem: memory } });
  gemm = inst.exports.gemm;
  const ctl = new Int32Array(control);
  self.postMessage("ready");
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, 0, seen);
    seen = Atomics.load(ctl, 0);
    if (seen < 0) break;
    gemm(ctl[2], ctl[3], ctl[4], ctl[5], ctl[6], ctl[7], ctl[8], ctl[9]);
    Atomics.store(ctl, 1, seen);
    Atomics.notify(ctl, 1);
  }
};`;

/** The WebAssembly GEMM on `threads` threads (this one plus `threads − 1` workers). */
export class WasmGemm {
  readonly memory: WebAssembly.Memory;
  #gemm: GemmFn;
  #workers: Worker[] = [];
  #controls: Int32Array[] = [];
  #seq = 0;

  private constructor(memory: WebAssembly.Memory, gemm: GemmFn) {
    this.memory = memory;
    this.#gemm = gemm;
  }

  /** Compiles the kernel, allocates `bytes` of shared memory and starts the workers. */
  static async create(bytes: number, threads: number): Promise<WasmGemm> {
    const module = await compileGemm();
    const pages = Math.ceil(bytes / 65536);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const inst = await WebAssembly.instantiate(module, { env: { mem: memory } });
    const g = new WasmGemm(memory, inst.exports.gemm as GemmFn);
    const url = URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" }));
    for (let t = 1; t < threads; t++) {
      const control = new SharedArrayBuffer(64);
      const w = new Worker(url, { type: "module" });
      await new Promise<void>((resolve) => {
        w.onmessage = () => resolve();
        w.postMessage({ module, memory, control });
      });
      g.#workers.push(w);
      g.#controls.push(new Int32Array(control));
    }
    return g;
  }

  /** `C = A·B` (NN) at byte offsets `a`, `b`, `c`, rows split evenly (multiples of 4). */
  run(a: number, b: number, c: number, M: number, N: number, K: number): void {
    const parts = this.#workers.length + 1;
    const step = Math.ceil(M / parts / ROWS) * ROWS;
    const seq = ++this.#seq;
    for (const [w, ctl] of this.#controls.entries()) {
      const r0 = Math.min(M, (w + 1) * step), r1 = Math.min(M, (w + 2) * step);
      ctl.set([a, b, c, M, N, K, r0, r1], 2);
      Atomics.store(ctl, 0, seq);
      Atomics.notify(ctl, 0);
    }
    this.#gemm(a, b, c, M, N, K, 0, Math.min(M, step));
    for (const ctl of this.#controls) {
      // Wait on the value just compared: re-reading it for the wait could see the worker's final
      // store, whose notify has already gone, and sleep for ever.
      for (let done = Atomics.load(ctl, 1); done !== seq; done = Atomics.load(ctl, 1)) {
        Atomics.wait(ctl, 1, done);
      }
    }
  }

  /** Stops the workers. */
  close(): void {
    for (const [w, ctl] of this.#controls.entries()) {
      Atomics.store(ctl, 0, -1);
      Atomics.notify(ctl, 0);
      this.#workers[w].terminate();
    }
  }
}
