/**
 * The WebGPU runtime every kernel runs on: device acquisition (with a typed error when there is
 * none), a pipeline cache keyed by each kernel's specialisation, a size-bucketed buffer pool, one
 * command encoder and compute pass shared by many dispatches, uniform parameter blocks packed into
 * arenas (one `writeBuffer` per submit, not per dispatch), and bulk read-back.
 *
 * Buffer lifetime rule: a buffer handed back with {@linkcode GpuRuntime.free} returns to the pool
 * only at the next explicit {@linkcode GpuRuntime.flush} (a read-back, `GpuBackend.release`), after
 * the work recorded so far has been submitted, so a later upload (`writeBuffer`, which the queue
 * runs before the next submit) can never overwrite data an unsubmitted dispatch still reads. The
 * automatic submissions inside a long recording recycle nothing: where they fall depends on the
 * dispatches recorded before a step (parameter fills before the first one), so recycling there
 * made a step's pool hits depend on its history (one buffer created in step 2 on the H100).
 *
 * Over 600 lines: device acquisition, the pipeline cache, the buffer pool and the shared pass are one
 * object whose invariants (the lifetime rule above) tie them together.
 *
 * @module
 */

/** Thrown when WebGPU or a suitable adapter is not available. */
export class WebGpuUnavailableError extends Error {
  /** Creates the error; `reason` says what was missing. */
  constructor(reason: string) {
    super(
      `WebGPU is not available: ${reason}. Run on the pure-TypeScript reference backend instead ` +
        `(\`--backend=reference\`, or \`new ReferenceBackend()\`), or install a WebGPU driver ` +
        `(on Debian: \`apt-get install mesa-vulkan-drivers\` gives a software adapter).`,
    );
    this.name = "WebGpuUnavailableError";
  }
}

/** Thrown when the device reports a validation/out-of-memory error or is lost. */
export class GpuError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}

/** A compiled-once compute kernel: its WGSL and a cache key naming every specialisation. */
export interface KernelSpec {
  /** Unique key: kernel family plus every constant baked into `code`. */
  key: string;
  /** WGSL source with an `@compute` entry point. */
  code: string;
  /** Entry point name (default `"main"`). */
  entryPoint?: string;
}

/** Options of {@linkcode GpuRuntime.create}. */
export interface GpuRuntimeOptions {
  /** Adapter power preference (default `"high-performance"`). */
  powerPreference?: GPUPowerPreference;
}

/** What the device offers, as requested at creation. */
export interface GpuFeatures {
  /** `shader-f16` was available and enabled. */
  f16: boolean;
  /** `timestamp-query` was available and enabled. */
  timestamp: boolean;
}

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const UNIFORM_USAGE = GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
const MIN_BUCKET = 256;
/** Bind groups the runtime caches (a GPT-2 124M step uses about 600). */
const BIND_GROUP_CACHE_SIZE = 8192;
/** Bytes of one uniform arena (256 dispatches at the usual 256-byte offset alignment). */
const UNIFORM_ARENA_BYTES = 1 << 16;

/** Rounds a byte size up to its pool bucket: powers of two up to 1 MiB, then multiples of 1 MiB. */
function bucketSize(bytes: number): number {
  const b = Math.max(MIN_BUCKET, bytes);
  if (b <= 1 << 20) return 1 << Math.ceil(Math.log2(b));
  return Math.ceil(b / (1 << 20)) * (1 << 20);
}

/**
 * Most dispatches recorded between automatic submissions. The runtime submits after
 * {@linkcode FIRST_SUBMIT} dispatches, then after twice as many each time up to this, starting
 * over after every explicit flush or read-back: the GPU starts on a training step while the host
 * still records it, instead of idling until the first read-back, and the submits stay few. Measured
 * on the H100 (GPT-2 124M, batch 8 × 1024): with the tiled kernels a submit every 32 dispatches
 * took the dense step from 432 to 401 ms (results/device/2026-12-06-h100-gemm-zoo.md); with the
 * wide kernels this schedule, one every ≤ 32 and none gave 272, 268 and 271 ms in one run
 * (results/speed/2026-12-06-h100.md): no difference above the noise there.
 */
export const DEFAULT_SUBMIT_EVERY = 256;
/** Dispatches before the first automatic submission after a flush. */
const FIRST_SUBMIT = 16;

/** Largest workgroup count per dispatch dimension guaranteed by WebGPU. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * Splits `count` workgroups into a 2-D grid `[x, y]` within the per-dimension limit. Kernels
 * recover the linear workgroup index as `wid.x + wid.y * x` (and must bound-check, since
 * `x * y >= count`).
 */
export function grid1d(count: number): [number, number] {
  if (count <= MAX_WORKGROUPS_PER_DIM) return [Math.max(1, count), 1];
  const y = Math.ceil(count / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(count / y), y];
}

/**
 * What a run records about the adapter: results of the MVUE methods differ in the last bits
 * between wgpu backends on the same hardware (Mesa's llvmpipe through Vulkan/lavapipe or through
 * OpenGL ES reports the same description), so the backend is part of the record.
 */
export interface GpuAdapterRecord {
  /**
   * The wgpu backend (`vulkan`, `gl`, `metal`, `dx12`): `DENO_WEBGPU_BACKEND` as the user set it,
   * or the one {@linkcode GpuRuntime.create} chose (`vulkan` on Linux, `metal` on macOS), or
   * `"wgpu default"` where neither applies.
   */
  backend: string;
  /** `adapter.info.description`, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** `adapter.info.vendor` (a PCI id or a name). */
  vendor: string;
  /** `adapter.info.architecture`. */
  architecture: string;
  /** `adapter.info.device`. */
  device: string;
  /** Subgroup sizes `[min, max]` (they differ between backends), or `null` if not reported. */
  subgroupSizes: [number, number] | null;
  /** A fallback (software) adapter. */
  isFallbackAdapter: boolean;
}

/** The backend `GpuRuntime.create` asks for when `DENO_WEBGPU_BACKEND` is unset, by OS. */
const PRIMARY_BACKEND: Partial<Record<typeof Deno.build.os, string>> = {
  linux: "vulkan",
  darwin: "metal",
};

const BACKEND_LABELS: Record<string, string> = {
  vulkan: "Vulkan",
  gl: "OpenGL ES",
  metal: "Metal",
  dx12: "DirectX 12",
};

/**
 * Chooses the wgpu backend before the first adapter request (Deno reads `DENO_WEBGPU_BACKEND`
 * once, when it creates its WebGPU instance): the user's choice, or the OS's primary backend so
 * that `auto` never depends on which drivers happen to be installed (wgpu would otherwise fall
 * back from Vulkan to GL silently).
 */
function chooseWgpuBackend(): string {
  try {
    const requested = Deno.env.get("DENO_WEBGPU_BACKEND");
    if (requested) return requested;
    const primary = PRIMARY_BACKEND[Deno.build.os];
    if (primary === undefined) return "wgpu default";
    Deno.env.set("DENO_WEBGPU_BACKEND", primary);
    return primary;
  } catch {
    return "wgpu default"; // no --allow-env
  }
}

/** One line naming the adapter, the wgpu backend and the ids: what every run header records. */
export function describeAdapter(record: GpuAdapterRecord): string {
  const ids = [
    `vendor ${
      /^[0-9]+$/.test(record.vendor) ? `0x${Number(record.vendor).toString(16)}` : record.vendor
    }`,
    record.architecture ? `architecture ${record.architecture}` : "",
    `device ${record.device}`,
    record.subgroupSizes ? `subgroups ${record.subgroupSizes.join("–")}` : "",
  ].filter((x) => x !== "").join(", ");
  const backend = BACKEND_LABELS[record.backend] ?? record.backend;
  return `${record.description || "unknown adapter"} via ${backend} (${ids})`;
}

/** The device, its caches and the open command encoder. */
export class GpuRuntime {
  /** The WebGPU device. */
  readonly device: GPUDevice;
  /** Adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  readonly adapterName: string;
  /** The adapter and the wgpu backend, as runs record them (see {@linkcode describeAdapter}). */
  readonly adapter: GpuAdapterRecord;
  /** Optional features that were enabled. */
  readonly features: GpuFeatures;
  /** Limits the device was created with. */
  readonly limits: GPUSupportedLimits;
  /**
   * The adapter is a fallback (software, CPU-emulated) one such as llvmpipe, whose costs differ
   * from a GPU's enough to pick other kernel variants.
   */
  readonly isFallbackAdapter: boolean;

  #pipelines = new Map<string, GPUComputePipeline>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #bufferIds = new WeakMap<GPUBuffer, number>();
  #bufferCount = 0;
  #pool = new Map<number, GPUBuffer[]>();
  #uniformPool = new Map<number, GPUBuffer[]>();
  #stagingPool = new Map<number, GPUBuffer[]>();
  #poolMisses = { storage: 0, uniform: 0, staging: 0 };
  #pendingFree: GPUBuffer[] = [];
  #pendingUniforms: GPUBuffer[] = [];
  #arena:
    | { buffer: GPUBuffer; host: Uint8Array<ArrayBuffer>; used: number; written: number }
    | null = null;
  #arenaHost = new Uint8Array(UNIFORM_ARENA_BYTES);
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #error: string | null = null;
  #dumpWgsl: string | undefined;
  #dispatches = 0;
  #readBacks = 0;
  #sinceSubmit = 0;
  #nextSubmit = FIRST_SUBMIT;
  #submitEvery = DEFAULT_SUBMIT_EVERY;
  #timestampPassOpen = false;

  private constructor(device: GPUDevice, adapter: GpuAdapterRecord, features: GpuFeatures) {
    this.device = device;
    this.adapter = adapter;
    this.adapterName = adapter.description;
    this.features = features;
    this.isFallbackAdapter = adapter.isFallbackAdapter;
    this.limits = device.limits;
    device.addEventListener("uncapturederror", (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.#error ??= `WebGPU error: ${e.message}`;
    });
    device.lost.then((info) => {
      this.#error ??= `WebGPU device lost (${info.reason}): ${info.message}`;
    });
    try {
      this.#dumpWgsl = Deno.env.get("TWOFOUR_DUMP_WGSL");
    } catch {
      this.#dumpWgsl = undefined; // no --allow-env: no dumping
    }
  }

  /**
   * Requests an adapter and a device with `shader-f16` and `timestamp-query` when present and
   * the adapter's buffer/binding/workgroup-storage limits.
   *
   * The wgpu backend is chosen deterministically: `DENO_WEBGPU_BACKEND` if set, else the OS's
   * primary one (`vulkan` on Linux, `metal` on macOS) — never a silent fallback to GL.
   *
   * @throws {WebGpuUnavailableError} If `navigator.gpu` or an adapter is missing.
   */
  static async create(options: GpuRuntimeOptions = {}): Promise<GpuRuntime> {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new WebGpuUnavailableError("navigator.gpu is undefined in this runtime");
    const backend = chooseWgpuBackend();
    const adapter = await gpu.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
    if (!adapter) {
      throw new WebGpuUnavailableError(
        `no WebGPU adapter was found for the ${
          BACKEND_LABELS[backend] ?? backend
        } backend (DENO_WEBGPU_BACKEND=${backend}; set DENO_WEBGPU_BACKEND=gl to use OpenGL ES, ` +
          `whose results differ in the last bits)`,
      );
    }
    const wanted: GPUFeatureName[] = [];
    const f16 = adapter.features.has("shader-f16");
    const timestamp = adapter.features.has("timestamp-query");
    if (f16) wanted.push("shader-f16");
    if (timestamp) wanted.push("timestamp-query");
    const l = adapter.limits;
    // An adapter that cannot run compute (e.g. OpenGL ES on some drivers) fails here: say so.
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({
        requiredFeatures: wanted,
        requiredLimits: {
          maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
          maxBufferSize: l.maxBufferSize,
          maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
          maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
          maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
          maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
          maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
        },
      });
    } catch (e) {
      throw new WebGpuUnavailableError(
        `the adapter found for the ${BACKEND_LABELS[backend] ?? backend} backend could not open ` +
          `a compute device: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const info = adapter.info as GPUAdapterInfo & {
      isFallbackAdapter?: boolean;
      subgroupMinSize?: number;
      subgroupMaxSize?: number;
    };
    const record: GpuAdapterRecord = {
      backend,
      description: info.description ||
        `${info.vendor} ${info.architecture} ${info.device}`.trim() || "unknown adapter",
      vendor: String(info.vendor ?? ""),
      architecture: String(info.architecture ?? ""),
      device: String(info.device ?? ""),
      subgroupSizes: typeof info.subgroupMinSize === "number" &&
          typeof info.subgroupMaxSize === "number"
        ? [info.subgroupMinSize, info.subgroupMaxSize]
        : null,
      isFallbackAdapter: info.isFallbackAdapter === true,
    };
    return new GpuRuntime(device, record, { f16, timestamp });
  }

  /**
   * Most dispatches recorded between automatic submissions (default
   * {@linkcode DEFAULT_SUBMIT_EVERY}); `Infinity`: submit only on `flush` or a read-back.
   */
  get submitEvery(): number {
    return this.#submitEvery;
  }
  set submitEvery(n: number) {
    if (!(n >= 1)) {
      throw new RangeError(`Cannot set submitEvery: expected a count >= 1 or Infinity, got ${n}`);
    }
    this.#submitEvery = n;
    this.#nextSubmit = Math.min(FIRST_SUBMIT, n);
  }

  /** Number of dispatches recorded since creation (for benchmarks and tests). */
  get dispatchCount(): number {
    return this.#dispatches;
  }

  /**
   * Number of blocking read-backs (`readMany`/`read` calls that mapped a buffer) since creation:
   * each waits for the GPU to drain (~11 ms round trip on the H100).
   */
  get readBackCount(): number {
    return this.#readBacks;
  }

  #check(): void {
    if (this.#error) throw new GpuError(this.#error);
  }

  /** The compiled pipeline for `spec`, compiled on first use and cached by `spec.key`. */
  pipeline(spec: KernelSpec): GPUComputePipeline {
    const hit = this.#pipelines.get(spec.key);
    if (hit) return hit;
    if (this.#dumpWgsl) {
      console.error(`// ---- WGSL kernel ${spec.key} ----\n${spec.code}`);
    }
    const module = this.device.createShaderModule({ code: spec.code, label: spec.key });
    const pipeline = this.device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: spec.entryPoint ?? "main" },
      label: spec.key,
    });
    this.#pipelines.set(spec.key, pipeline);
    return pipeline;
  }

  /** Number of distinct pipelines compiled so far. */
  get pipelineCount(): number {
    return this.#pipelines.size;
  }

  /**
   * Compiles `spec` now and reports WGSL or pipeline errors synchronously-ish: resolves once the
   * device has validated it, and rejects with a {@linkcode GpuError} naming the kernel key.
   */
  async compile(spec: KernelSpec): Promise<void> {
    this.device.pushErrorScope("validation");
    this.pipeline(spec);
    const err = await this.device.popErrorScope();
    if (err) {
      this.#pipelines.delete(spec.key);
      throw new GpuError(`Cannot compile kernel ${spec.key}: ${err.message}`);
    }
  }

  /** A storage buffer of at least `bytes` bytes from the pool (contents undefined). */
  alloc(bytes: number): GPUBuffer {
    this.#check();
    const size = bucketSize(bytes);
    if (size > this.limits.maxStorageBufferBindingSize) {
      throw new RangeError(
        `Cannot allocate a GPU buffer of ${bytes} bytes: the device allows at most ${this.limits.maxStorageBufferBindingSize} per binding`,
      );
    }
    const hit = this.#pool.get(size)?.pop();
    if (hit) return hit;
    this.#poolMisses.storage++;
    return this.device.createBuffer({ size, usage: STORAGE_USAGE, label: `pool-${size}` });
  }

  /**
   * Number of buffers (storage, uniform and read-back staging) created from the device because
   * their pool had none free. Constant across a steady-state training step after the first.
   */
  get poolMissCount(): number {
    const { storage, uniform, staging } = this.#poolMisses;
    return storage + uniform + staging;
  }

  /** {@linkcode GpuRuntime.poolMissCount} by pool: storage, uniform and read-back staging. */
  get poolMisses(): { storage: number; uniform: number; staging: number } {
    return { ...this.#poolMisses };
  }

  /** Returns a buffer to the pool once the work recorded so far has been submitted. */
  free(buffer: GPUBuffer): void {
    this.#pendingFree.push(buffer);
  }

  /** Uploads `data` into a pooled storage buffer. */
  upload(data: ArrayBufferView): GPUBuffer {
    const buf = this.alloc(data.byteLength);
    this.write(buf, data);
    return buf;
  }

  /** Writes `data` to the start of `buffer` (ordered before the next submit). */
  write(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    if (data.byteLength === 0) return; // an empty writeBuffer aborts Deno 2.9's WebGPU
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 !== 0) { // writeBuffer needs a multiple of 4 bytes
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    this.device.queue.writeBuffer(buffer, byteOffset, bytes as Uint8Array<ArrayBuffer>);
  }

  /**
   * Binds `params` as a range of the current uniform arena: dispatches append their blocks to one
   * host copy, written to the arena's buffer with one `writeBuffer` per submit instead of one per
   * dispatch (each costs tens of µs of host time). Arenas fill in dispatch order across automatic
   * submits (a submitted dispatch never sees a later write: the queue runs it first) and return to
   * the pool only at a flush, like every other buffer, so a step uses as many as the steps before.
   */
  #uniform(params: ArrayBufferView): GPUBufferBinding {
    const align = this.limits.minUniformBufferOffsetAlignment;
    const size = Math.max(16, Math.ceil(params.byteLength / 16) * 16);
    const span = Math.ceil(size / align) * align;
    if (span > UNIFORM_ARENA_BYTES) {
      throw new RangeError(
        `Cannot bind a uniform block of ${params.byteLength} bytes: at most ${UNIFORM_ARENA_BYTES}`,
      );
    }
    let arena = this.#arena;
    if (arena === null || arena.used + span > UNIFORM_ARENA_BYTES) {
      this.#writeArena();
      let buffer = this.#uniformPool.get(UNIFORM_ARENA_BYTES)?.pop();
      if (!buffer) {
        this.#poolMisses.uniform++;
        buffer = this.device.createBuffer({ size: UNIFORM_ARENA_BYTES, usage: UNIFORM_USAGE });
      }
      this.#pendingUniforms.push(buffer);
      arena = this.#arena = {
        buffer,
        host: this.#arenaHost, // one staging array: an arena is written before it is replaced
        used: 0,
        written: 0,
      };
    }
    const offset = arena.used;
    arena.host.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength), offset);
    arena.used += span;
    return { buffer: arena.buffer, offset, size };
  }

  /** Writes the current arena's blocks appended since its last write (before a submit). */
  #writeArena(): void {
    const arena = this.#arena;
    if (arena === null || arena.used === arena.written) return;
    const bytes = arena.host.subarray(arena.written, arena.used);
    this.device.queue.writeBuffer(arena.buffer, arena.written, bytes);
    arena.written = arena.used;
  }

  /**
   * The bind group of a dispatch, from a cache keyed by the kernel and the identities of its
   * buffers and uniform range: a training step draws the same pooled buffers and arena offsets in
   * the same order every time, so after the first step every dispatch finds its group (creating
   * one costs tens of µs of host time). A group holds buffers, not their contents, so a hit is
   * always valid; the cache starts over when it reaches {@linkcode BIND_GROUP_CACHE_SIZE}.
   */
  #bindGroup(
    kernel: string,
    pipeline: GPUComputePipeline,
    buffers: readonly GPUBuffer[],
    uniform: GPUBufferBinding | undefined,
  ): GPUBindGroup {
    let key = kernel;
    for (const b of buffers) key += `|${this.#bufferId(b)}`;
    if (uniform) key += `|u${this.#bufferId(uniform.buffer)}@${uniform.offset}+${uniform.size}`;
    const hit = this.#bindGroups.get(key);
    if (hit) return hit;
    const entries: GPUBindGroupEntry[] = buffers.map((buffer, i) => ({
      binding: i,
      resource: { buffer },
    }));
    if (uniform) entries.push({ binding: buffers.length, resource: uniform });
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    if (this.#bindGroups.size >= BIND_GROUP_CACHE_SIZE) this.#bindGroups.clear();
    this.#bindGroups.set(key, group);
    return group;
  }

  /** A number naming `buffer` for the bind-group cache's keys. */
  #bufferId(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) {
      id = ++this.#bufferCount;
      this.#bufferIds.set(buffer, id);
    }
    return id;
  }

  /**
   * Records one dispatch of `spec` into the shared compute pass. `buffers` bind to
   * `@group(0) @binding(0..n-1)` in order; `params`, if given, binds as a uniform buffer at
   * `@binding(n)`.
   */
  dispatch(
    spec: KernelSpec,
    buffers: readonly GPUBuffer[],
    workgroups: readonly number[],
    params?: ArrayBufferView,
  ): void {
    this.#check();
    const pipeline = this.pipeline(spec);
    const uniform = params ? this.#uniform(params) : undefined;
    const bindGroup = this.#bindGroup(spec.key, pipeline, buffers, uniform);
    if (!this.#pass) {
      this.#encoder ??= this.device.createCommandEncoder(); // keep copies recorded before
      this.#pass = this.#encoder.beginComputePass();
    }
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = workgroups;
    if (x > 0 && y > 0 && z > 0) this.#pass.dispatchWorkgroups(x, y, z);
    this.#dispatches++;
    // Submit on a doubling schedule, except inside a benchmark's timestamped pass.
    if (++this.#sinceSubmit >= this.#nextSubmit && !this.#timestampPassOpen) {
      const next = Math.min(2 * this.#nextSubmit, this.#submitEvery);
      this.#submit();
      this.#nextSubmit = next;
    }
  }

  /**
   * Ends the open compute pass and opens one that writes GPU timestamps at its beginning and/or
   * end (`timestamp-query`); later dispatches are recorded into it until a copy, a read-back or a
   * flush ends it. Benchmarks bracket work with such passes to time it on the GPU's clock,
   * without the host's submit and synchronisation latency.
   *
   * @param timestampWrites The query set and the indices to write.
   * @throws {TypeError} If the device was created without `timestamp-query`.
   */
  beginTimestampedPass(timestampWrites: GPUComputePassTimestampWrites): void {
    this.#check();
    if (!this.features.timestamp) {
      throw new TypeError(
        `Cannot begin a timestamped compute pass: adapter "${this.adapterName}" has no timestamp-query feature`,
      );
    }
    if (this.#pass) this.#pass.end();
    this.#encoder ??= this.device.createCommandEncoder();
    this.#pass = this.#encoder.beginComputePass({ timestampWrites });
    this.#timestampPassOpen = true;
  }

  /** Records a buffer-to-buffer copy (ends the open compute pass). */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    this.#check();
    const enc = this.#openEncoderForCopy();
    enc.copyBufferToBuffer(src, srcOffset, dst, dstOffset, Math.ceil(bytes / 4) * 4);
  }

  #openEncoderForCopy(): GPUCommandEncoder {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
      this.#timestampPassOpen = false;
    }
    this.#encoder ??= this.device.createCommandEncoder();
    return this.#encoder;
  }

  /** Submits everything recorded so far and recycles buffers freed before this point. */
  flush(): void {
    this.#submit();
    for (const b of this.#pendingFree) {
      const list = this.#pool.get(b.size);
      if (list) list.push(b);
      else this.#pool.set(b.size, [b]);
    }
    this.#pendingFree = [];
    for (const b of this.#pendingUniforms) {
      const list = this.#uniformPool.get(b.size);
      if (list) list.push(b);
      else this.#uniformPool.set(b.size, [b]);
    }
    this.#pendingUniforms = [];
    this.#arena = null; // recycled above: the next dispatch starts a fresh one
  }

  /** Submits everything recorded so far (recycling nothing: see the module notes). */
  #submit(): void {
    this.#check();
    this.#sinceSubmit = 0;
    this.#nextSubmit = Math.min(FIRST_SUBMIT, this.#submitEvery);
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
      this.#timestampPassOpen = false;
    }
    this.#writeArena();
    if (this.#encoder) {
      this.device.queue.submit([this.#encoder.finish()]);
      this.#encoder = null;
    }
  }

  /**
   * Reads back several buffer ranges in one submission and one map.
   *
   * @returns One `ArrayBuffer` per request, in order.
   */
  async readMany(
    requests: readonly { buffer: GPUBuffer; bytes: number; offset?: number }[],
  ): Promise<ArrayBuffer[]> {
    this.#check();
    const aligned = requests.map((r) => Math.ceil(r.bytes / 4) * 4);
    const total = aligned.reduce((s, b) => s + b, 0);
    if (total === 0) return requests.map(() => new ArrayBuffer(0));
    const stagingSize = bucketSize(total);
    const staging = this.#stagingPool.get(stagingSize)?.pop() ?? this.#newStaging(stagingSize);
    const enc = this.#openEncoderForCopy();
    let at = 0;
    requests.forEach((r, i) => {
      if (aligned[i] > 0) enc.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, at, aligned[i]);
      at += aligned[i];
    });
    this.flush();
    this.#readBacks++;
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.#check();
      throw new GpuError(`Cannot read back from the GPU: ${(e as Error).message}`);
    }
    this.#check();
    const mapped = staging.getMappedRange();
    const out: ArrayBuffer[] = [];
    at = 0;
    requests.forEach((r, i) => {
      out.push(mapped.slice(at, at + r.bytes));
      at += aligned[i];
    });
    staging.unmap();
    const list = this.#stagingPool.get(stagingSize);
    if (list) list.push(staging);
    else this.#stagingPool.set(stagingSize, [staging]);
    return out;
  }

  #newStaging(size: number): GPUBuffer {
    this.#poolMisses.staging++;
    return this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** Reads back `bytes` bytes of one buffer. */
  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    return (await this.readMany([{ buffer, bytes }]))[0];
  }

  /** Waits until all submitted work has finished (flushes first). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.#check();
  }

  /** Destroys the pooled buffers and the device. */
  destroy(): void {
    const pools = [this.#pool, this.#uniformPool, this.#stagingPool];
    for (const pool of pools) {
      for (const list of pool.values()) for (const b of list) b.destroy();
      pool.clear();
    }
    this.device.destroy();
  }
}
