/**
 * oneDNN's matmul primitive through Deno's FFI: a contiguous strided batch of products in one call
 * (attention's 64 heads ran about 2× faster than one `dnnl_sgemm` per head in C on the 2-core
 * machine, issue #14). One primitive per shape, created on first use and cached. Private to
 * `core/cpu/`; `onednn.ts` offers it as `Blas.sgemmBatched`.
 *
 * @module
 */

import type { BatchedProduct } from "./blas.ts";

// The oneDNN 2.6 C API, declared by hand: no headers are installed here. Handles travel as
// pointers; out-parameters are 8-byte buffers the library writes.
const SYMBOLS = {
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_engine_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  // md, ndims, dims, data type, strides
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  // desc, src, weights, bias (null), dst
  dnnl_matmul_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "pointer", "buffer"],
    result: "i32",
  },
  // pd, op desc, attr (null), engine, hint (null)
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
  // memory, md, engine, handle (null: set per call)
  dnnl_memory_create: { parameters: ["buffer", "buffer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "buffer"], result: "i32" },
  // primitive, stream, nargs, dnnl_exec_arg_t[] ({ int arg; dnnl_memory_t memory; }, 16 bytes)
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
} as const;

const ENGINE_CPU = 1, STREAM_IN_ORDER = 1, F32 = 3;
const ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33;
// dnnl_memory_desc_t and dnnl_matmul_desc_t are filled by the library; their exact sizes in 2.6
// are in no header here, so the buffers are generous (a memory descriptor is under 1 KiB, the
// matmul descriptor holds four of them).
const MEMORY_DESC_BYTES = 8192, MATMUL_DESC_BYTES = 4 * 8192;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A cached primitive: its descriptor, the three memory objects and the execute arguments. */
interface Primitive {
  pd: Deno.PointerValue;
  primitive: Deno.PointerValue;
  memories: Deno.PointerValue[];
  args: Uint8Array;
}

/** oneDNN's matmul primitive on one CPU engine and stream, with a primitive cache per shape. */
export class OnednnMatmul {
  #lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
  #engine: Deno.PointerValue;
  #stream: Deno.PointerValue;
  /** Primitives by shape key; `null` where creation failed (the caller loops instead). */
  #cache = new Map<string, Primitive | null>();

  private constructor(
    lib: Deno.DynamicLibrary<typeof SYMBOLS>,
    engine: Deno.PointerValue,
    stream: Deno.PointerValue,
  ) {
    this.#lib = lib;
    this.#engine = engine;
    this.#stream = stream;
  }

  /**
   * Opens the matmul API of the oneDNN library at `path` (already loaded by `onednn.ts`).
   *
   * @returns The runner, or `null` when the symbols, the engine or the stream are missing.
   */
  static open(path: string): OnednnMatmul | null {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch {
      return null;
    }
    const s = lib.symbols;
    const engine = handle((out) => s.dnnl_engine_create(out, ENGINE_CPU, 0n));
    const stream = engine && handle((out) => s.dnnl_stream_create(out, engine, STREAM_IN_ORDER));
    if (stream) return new OnednnMatmul(lib, engine, stream);
    if (engine) s.dnnl_engine_destroy(engine);
    lib.close();
    return null;
  }

  /** Primitives created so far (failed shapes included), for tests. */
  get cached(): number {
    return this.#cache.size;
  }

  /**
   * `C[q] = op(A[q])·op(B[q])` for `q < batch`, operands packed one after another, row-major as
   * `Blas.sgemm` (`A[q]` stored `[K,M]` when `transA`, `B[q]` stored `[N,K]` when `transB`).
   * Every dimension must be positive.
   *
   * @returns `false` when oneDNN has no primitive for this shape (nothing was written).
   * @throws {RangeError} If the runner is closed or the primitive fails to run.
   */
  run(...product: BatchedProduct): boolean {
    const [transA, transB, batch, M, N, K, A, B, C] = product;
    const failed = (why: string) =>
      new RangeError(
        `Cannot run oneDNN's matmul on ${batch}×${M}×${N}×${K} (transA ${transA}, ` +
          `transB ${transB}): ${why}`,
      );
    const lib = this.#lib;
    if (!lib) throw failed("the runner is closed");
    const key = `${+transA}${+transB} ${batch} ${M} ${N} ${K}`;
    let p = this.#cache.get(key);
    if (p === undefined) {
      p = this.#create(lib.symbols, product);
      this.#cache.set(key, p);
    }
    if (p === null) return false;
    const s = lib.symbols, [src, weights, dst] = p.memories;
    // The handles live in the memory objects until the next call; the arrays must not move in
    // between: touching `.buffer` moves a small on-heap typed array's data off the V8 heap.
    void A.buffer;
    void B.buffer;
    void C.buffer;
    let status = s.dnnl_memory_set_data_handle(src, A) ||
      s.dnnl_memory_set_data_handle(weights, B) ||
      s.dnnl_memory_set_data_handle(dst, C);
    status ||= s.dnnl_primitive_execute(p.primitive, this.#stream, 3, p.args) ||
      s.dnnl_stream_wait(this.#stream);
    if (status !== 0) {
      throw failed(`oneDNN status ${status}`);
    }
    return true;
  }

  /** Frees every primitive, memory object, the stream and the engine, and closes the library. */
  close(): void {
    const lib = this.#lib;
    if (!lib) return;
    this.#lib = undefined;
    const s = lib.symbols;
    for (const p of this.#cache.values()) {
      if (!p) continue;
      for (const m of p.memories) s.dnnl_memory_destroy(m);
      s.dnnl_primitive_destroy(p.primitive);
      s.dnnl_primitive_desc_destroy(p.pd);
    }
    this.#cache.clear();
    s.dnnl_stream_destroy(this.#stream);
    s.dnnl_engine_destroy(this.#engine);
    lib.close();
  }

  /** The primitive for one shape (strided 3-D descriptors as in the C probe), or `null`. */
  #create(s: Symbols, [transA, transB, batch, M, N, K]: BatchedProduct): Primitive | null {
    const descriptor = (dims: number[], strides: number[]) => {
      const md = new Uint8Array(MEMORY_DESC_BYTES);
      const status = s.dnnl_memory_desc_init_by_strides(
        md,
        3,
        BigInt64Array.from(dims, BigInt),
        F32,
        BigInt64Array.from(strides, BigInt),
      );
      return status === 0 ? md : null;
    };
    const mds = [
      descriptor([batch, M, K], [M * K, transA ? 1 : K, transA ? M : 1]),
      descriptor([batch, K, N], [K * N, transB ? 1 : N, transB ? K : 1]),
      descriptor([batch, M, N], [M * N, N, 1]),
    ];
    const [srcMd, weightsMd, dstMd] = mds;
    if (!srcMd || !weightsMd || !dstMd) return null;
    const desc = new Uint8Array(MATMUL_DESC_BYTES);
    if (s.dnnl_matmul_desc_init(desc, srcMd, weightsMd, null, dstMd) !== 0) return null;
    const pd = handle((out) => s.dnnl_primitive_desc_create(out, desc, null, this.#engine, null));
    if (pd === null) return null;
    const primitive = handle((out) => s.dnnl_primitive_create(out, pd));
    const memories = mds.map((md) =>
      handle((out) => s.dnnl_memory_create(out, md, this.#engine, null))
    );
    if (primitive === null || memories.includes(null)) {
      for (const m of memories) if (m !== null) s.dnnl_memory_destroy(m);
      if (primitive !== null) s.dnnl_primitive_destroy(primitive);
      s.dnnl_primitive_desc_destroy(pd);
      return null;
    }
    const args = new Uint8Array(16 * 3), view = new DataView(args.buffer);
    [ARG_SRC, ARG_WEIGHTS, ARG_DST].forEach((arg, i) => {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(memories[i])), true);
    });
    return { pd, primitive, memories, args };
  }
}

/** Calls `create` with an out-parameter; the handle it wrote, or `null` on a non-zero status. */
function handle(create: (out: BigUint64Array) => number): Deno.PointerValue {
  const out = new BigUint64Array(1);
  if (create(out) !== 0 || out[0] === 0n) return null;
  return Deno.UnsafePointer.create(out[0]);
}
