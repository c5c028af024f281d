/**
 * Checkpoints in the safetensors format (the format PyTorch's `safetensors` package reads), and an
 * atomic file write.
 *
 * Layout: an 8-byte little-endian unsigned length `N`, then `N` bytes of UTF-8 JSON
 * `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "value"}}`, then the raw little-endian tensor data. Offsets are relative
 * to the start of the data section. The JSON is padded with spaces so that `N` is a multiple of 8.
 *
 * The reader is at least as strict as the reference implementation: the tensors must tile the
 * data section with no gap, no overlap and nothing after the last one, and each byte range must
 * match its shape times its dtype size; an entry may hold only `dtype`, `shape` and
 * `data_offsets`, and metadata values must be strings. Anything else is a
 * {@linkcode CheckpointError}; a damaged file is rejected whole, never half loaded.
 *
 * Optional cross-check with the reference implementation, wherever Python has the `safetensors`
 * package (the tests do not need it; they decode a file Python wrote, and safetensors 0.8.0 with
 * torch 2.11 loaded this writer's output exactly):
 *
 * ```sh
 * python3 -c "from safetensors.torch import load_file; from safetensors import safe_open; \
 *   import sys; p = sys.argv[1]; print(load_file(p)); print(safe_open(p, 'pt').metadata())" \
 *   checkpoint.safetensors
 * ```
 *
 * Over 600 lines: the strict reader needs its own bounded JSON parser (duplicate keys, integer
 * literals), which lives here beside the format it guards.
 *
 * @module
 */

import { parseStrictJson, preview, previewJson, type StrictJson } from "./_strict_json.ts";

/** The element types a checkpoint may hold. */
export type SafetensorsDType = "F32" | "F64" | "I32" | "U8" | "U32";

/** One tensor of a checkpoint; `data` is the typed array matching `dtype`, row-major. */
export type SafetensorsTensor =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "F64"; shape: number[]; data: Float64Array }
  | { dtype: "I32"; shape: number[]; data: Int32Array }
  | { dtype: "U8"; shape: number[]; data: Uint8Array }
  | { dtype: "U32"; shape: number[]; data: Uint32Array };

/** What {@linkcode decodeSafetensors} returns. */
export interface SafetensorsContents {
  /** The tensors by name, each with a freshly allocated typed array. */
  tensors: Record<string, SafetensorsTensor>;
  /** The `__metadata__` string map (empty when the file has none). */
  metadata: Record<string, string>;
}

/** Thrown when a checkpoint file is malformed, truncated or inconsistent. */
export class CheckpointError extends Error {
  /** Creates the error; `message` names the problem. */
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int32ArrayConstructor
  | Uint8ArrayConstructor
  | Uint32ArrayConstructor;

const DTYPES: Record<SafetensorsDType, TypedArrayCtor> = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  U8: Uint8Array,
  U32: Uint32Array,
};

/** The reference reader refuses headers above 100 MB; so do we (and we never write one). */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDType(value: unknown): value is SafetensorsDType {
  return typeof value === "string" && Object.hasOwn(DTYPES, value);
}

function assertLittleEndianHost(action: string): void {
  if (!LITTLE_ENDIAN) {
    throw new RangeError(`Cannot ${action}: big-endian hosts are not supported`);
  }
}

function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const d of shape) count *= d;
  return count;
}

/**
 * Encodes tensors (and optional string metadata) as a safetensors file.
 *
 * Tensors are laid out by element size, largest first, then by name (as the reference writer
 * does), so every tensor starts at a multiple of its element size.
 *
 * @param tensors The tensors by name; names must be non-empty and not `"__metadata__"`.
 * @param metadata Optional string-to-string map stored as `__metadata__`.
 * @returns The file's bytes.
 * @throws {TypeError} If a dtype is unknown, `data` is not the typed array of its dtype, or a
 * metadata value is not a string.
 * @throws {RangeError} If a name is empty or reserved, a shape entry is not a non-negative
 * integer, or `data.length` differs from the product of the shape.
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors(
 *   { w: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   { step: "10" },
 * );
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * if (tensors.w.data[3] !== 4 || metadata.step !== "10") throw new Error("unexpected");
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const action = "encode safetensors";
  assertLittleEndianHost(action);
  if (tensors === null || typeof tensors !== "object") {
    throw new TypeError(`Cannot ${action}: tensors must be an object, got ${tensors}`);
  }
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) checkTensorInput(name, t, action);
  entries.sort(([nameA, a], [nameB, b]) => {
    const sizeDiff = DTYPES[b.dtype].BYTES_PER_ELEMENT - DTYPES[a.dtype].BYTES_PER_ELEMENT;
    if (sizeDiff !== 0) return sizeDiff;
    return nameA < nameB ? -1 : nameA > nameB ? 1 : 0;
  });

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object") {
      throw new TypeError(`Cannot ${action}: metadata must be an object, got ${metadata}`);
    }
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") {
        throw new TypeError(
          `Cannot ${action}: metadata value of "${key}" must be a string, got ${typeof value}`,
        );
      }
    }
    header[METADATA_KEY] = { ...metadata };
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const end = offset + t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

function checkTensorInput(name: string, t: SafetensorsTensor, action: string): void {
  if (name === "" || name === METADATA_KEY) {
    throw new RangeError(`Cannot ${action}: invalid tensor name "${name}"`);
  }
  if (t === null || typeof t !== "object") {
    throw new TypeError(`Cannot ${action}: tensor "${name}" must be an object, got ${t}`);
  }
  if (!isDType(t.dtype)) {
    throw new TypeError(
      `Cannot ${action}: tensor "${name}" has unsupported dtype ${JSON.stringify(t.dtype)} ` +
        `(supported: ${Object.keys(DTYPES).join(", ")})`,
    );
  }
  const ctor = DTYPES[t.dtype];
  if (!(t.data instanceof ctor)) {
    throw new TypeError(
      `Cannot ${action}: tensor "${name}" of dtype ${t.dtype} needs a ${ctor.name}, got ${
        (t.data as unknown as object)?.constructor?.name ?? typeof t.data
      }`,
    );
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(
      `Cannot ${action}: tensor "${name}" shape must be non-negative integers, got ${
        JSON.stringify(t.shape)
      }`,
    );
  }
  const count = elementCount(t.shape);
  if (t.data.length !== count) {
    throw new RangeError(
      `Cannot ${action}: tensor "${name}" of shape [${t.shape}] needs ${count} values, ` +
        `got ${t.data.length}`,
    );
  }
}

/**
 * Decodes and validates a safetensors file.
 *
 * @param bytes The whole file.
 * @returns The tensors (each copied into a fresh typed array) and the metadata.
 * @throws {CheckpointError} If the file is too short, the header length points beyond the file,
 * the header is not valid UTF-8 JSON of the expected form, a dtype is unsupported, a shape is
 * invalid, or the data offsets are out of range, overlap, leave a gap, disagree with shape × dtype
 * size, or do not end exactly at the end of the file (truncation or trailing bytes).
 * @example
 * ```ts
 * import { CheckpointError, decodeSafetensors } from "./safetensors.ts";
 * try {
 *   decodeSafetensors(new Uint8Array(5));
 *   throw new Error("accepted a 5-byte file");
 * } catch (e) {
 *   if (!(e instanceof CheckpointError)) throw e;
 * }
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContents {
  assertLittleEndianHost("decode safetensors");
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot decode safetensors: expected a Uint8Array, got ${
        (bytes as unknown as object)?.constructor?.name ?? typeof bytes
      }`,
    );
  }
  const fail = failWith("Cannot load safetensors checkpoint");
  const headerLength = checkHeaderLength(bytes, bytes.length, fail);
  const dataStart = 8 + headerLength;
  const layout = parseHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, fail);
  return assemble(layout, bytes.subarray(dataStart));
}

type Fail = (problem: string) => never;

function failWith(prefix: string): Fail {
  return (problem: string): never => {
    throw new CheckpointError(`${prefix}: ${problem}`);
  };
}

interface TensorRange {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

interface Layout {
  metadata: Record<string, string>;
  ranges: TensorRange[];
}

/** Checks the 8-byte header length (in `prefix`) against the file length; returns it. */
function checkHeaderLength(prefix: Uint8Array, fileLength: number, fail: Fail): number {
  if (fileLength < 8) {
    fail(`file is too short (${fileLength} bytes; the header length alone takes 8)`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const headerLengthBig = view.getBigUint64(0, true);
  if (headerLengthBig > BigInt(fileLength - 8)) {
    fail(
      `header length ${headerLengthBig} goes beyond the end of the file ` +
        `(${fileLength} bytes, so at most ${fileLength - 8} header bytes)`,
    );
  }
  const headerLength = Number(headerLengthBig);
  if (headerLength > MAX_HEADER_BYTES) {
    fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (headerLength < 2) fail(`header length ${headerLength} is too small for a JSON object`);
  return headerLength;
}

/** Parses and validates the JSON header against a data section of `dataLength` bytes. */
function parseHeader(headerBytes: Uint8Array, dataLength: number, fail: Fail): Layout {
  let header: StrictJson;
  try {
    // ignoreBOM keeps a byte-order mark in the text, where the strict parser refuses it.
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
    header = parseStrictJson(text);
  } catch (e) {
    return fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail(`header must be a JSON object, got ${previewJson(header)}`);
  }

  const metadata: Record<string, string> = Object.create(null);
  const ranges: TensorRange[] = [];
  for (const [name, info] of Object.entries(header as Record<string, StrictJson>)) {
    if (name === METADATA_KEY) {
      if (info === null || typeof info !== "object" || Array.isArray(info)) {
        fail(`__metadata__ must be an object of strings, got ${previewJson(info)}`);
      }
      for (const [key, value] of Object.entries(info as Record<string, StrictJson>)) {
        if (typeof value !== "string") {
          fail(
            `__metadata__ value of ${previewJson(key)} must be a string, got ${previewJson(value)}`,
          );
        }
        metadata[key] = value as string;
      }
      continue;
    }
    ranges.push(parseTensorInfo(name, info, dataLength, fail));
  }

  // The tensors must tile [0, dataLength): sorted by offsets, each begins where the previous ends.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const r of ranges) {
    if (r.begin < expected) {
      fail(
        `tensor ${previewJson(r.name)} data [${r.begin}, ${r.end}) overlaps the previous tensor`,
      );
    }
    if (r.begin > expected) {
      fail(`gap in the data section: bytes [${expected}, ${r.begin}) belong to no tensor`);
    }
    expected = r.end;
  }
  if (expected !== dataLength) {
    fail(
      `tensors end at data byte ${expected} but the data section has ${dataLength} bytes ` +
        `(${dataLength - expected} bytes of trailing garbage)`,
    );
  }
  return { metadata, ranges };
}

/** Copies each tensor out of the data section (`data` starts at data byte 0). */
function assemble(layout: Layout, data: Uint8Array): SafetensorsContents {
  const tensors: Record<string, SafetensorsTensor> = Object.create(null);
  for (const r of layout.ranges) {
    const ctor = DTYPES[r.dtype];
    const copy = data.slice(r.begin, r.end);
    const values = new ctor(copy.buffer, 0, (r.end - r.begin) / ctor.BYTES_PER_ELEMENT);
    tensors[r.name] = { dtype: r.dtype, shape: r.shape, data: values } as SafetensorsTensor;
  }
  return { tensors, metadata: layout.metadata };
}

function parseTensorInfo(
  name: string,
  info: unknown,
  dataLength: number,
  fail: Fail,
): TensorRange {
  const label = previewJson(name);
  if (info === null || typeof info !== "object" || Array.isArray(info)) {
    fail(`entry ${label} must be an object, got ${previewJson(info)}`);
  }
  const { dtype, shape, data_offsets: offsets, ...rest } = info as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) fail(`tensor ${label} has unexpected fields ${preview(extra.join(", "))}`);
  if (!isDType(dtype)) {
    fail(
      `tensor ${label} has unsupported dtype ${previewJson(dtype)} (supported: ${
        Object.keys(DTYPES).join(", ")
      })`,
    );
  }
  if (
    !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
  ) {
    fail(`tensor ${label} shape must be non-negative integers, got ${previewJson(shape)}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    fail(
      `tensor ${label} data_offsets must be two non-negative integers, got ${previewJson(offsets)}`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength) {
    fail(
      `tensor ${label} data_offsets [${begin}, ${end}] are out of range for a data section of ` +
        `${dataLength} bytes (the file may be truncated)`,
    );
  }
  const size = elementCount(shape as number[]) *
    DTYPES[dtype as SafetensorsDType].BYTES_PER_ELEMENT;
  if (end - begin !== size) {
    fail(
      `tensor ${label} of dtype ${dtype} and shape [${
        preview(String(shape))
      }] needs ${size} bytes, but its data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape: [...shape as number[]], begin, end };
}

function splitPath(path: string): { dir: string; base: string } {
  const slash = path.lastIndexOf("/");
  const dir = slash >= 0 ? path.slice(0, slash) || "/" : ".";
  return { dir, base: slash >= 0 ? path.slice(slash + 1) : path };
}

/**
 * Removes the temporary files that killed writes of `path` left behind (`.NAME.DIGITS.tmp` beside
 * it, which can be as large as the file). {@linkcode writeFileAtomic} calls it before each write.
 *
 * @param path The target file of the writes.
 * @returns The paths removed (none if the directory does not exist).
 * @example
 * ```ts
 * import { removeStaleTemporaries } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/.m.safetensors.123.tmp`, new Uint8Array(8));
 * const removed = await removeStaleTemporaries(`${dir}/m.safetensors`);
 * if (removed.length !== 1) throw new Error("unexpected");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function removeStaleTemporaries(path: string): Promise<string[]> {
  const { dir, base } = splitPath(path);
  const prefix = `.${base}.`;
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const rest = entry.name.slice(prefix.length);
      if (!entry.isFile || !entry.name.startsWith(prefix) || !/^[0-9]+\.tmp$/.test(rest)) continue;
      const stale = `${dir}/${entry.name}`;
      await Deno.remove(stale).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      removed.push(stale);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return removed;
    throw e;
  }
  return removed;
}

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * Called with the temporary file's path after its data is written and synced, just before the
   * rename. A fault-injection point for tests: if it throws, the write is abandoned exactly as on
   * an I/O failure (temporary file removed, target untouched, error rethrown).
   */
  beforeRename?: (tempPath: string) => void | Promise<void>;
}

/**
 * Writes a file atomically: the bytes go to a temporary file in the same directory, which is
 * synced to disk and then renamed over `path`. Readers see either the old file or the complete
 * new one. On any failure the temporary file is removed and the old file is left intact; a
 * temporary file left by a killed process is removed by the next write (see
 * {@linkcode removeStaleTemporaries}).
 *
 * @param path The target file.
 * @param bytes The new contents.
 * @param options Optional fault-injection hook (see {@linkcode WriteFileAtomicOptions}).
 * @returns Resolves once the new file is in place.
 * @throws {Deno.errors.NotFound} If the directory does not exist; any other I/O error of the
 * write, sync or rename (for example when `path` is a directory), after cleaning up.
 * @example
 * ```ts
 * import { writeFileAtomic } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.bin`, new Uint8Array([1, 2, 3]));
 * if ((await Deno.readFile(`${dir}/a.bin`)).length !== 3) throw new Error("unexpected");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const { dir, base } = splitPath(path);
  await removeStaleTemporaries(path);
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tempPath = `${dir}/.${base}.${suffix}.tmp`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tempPath, { write: true, createNew: true, mode: 0o644 });
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
    file.close();
    file = undefined;
    await options.beforeRename?.(tempPath);
    await Deno.rename(tempPath, path);
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tempPath).catch(() => {});
    throw e;
  }
  // Make the rename itself durable where the platform allows syncing a directory.
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* not supported here (e.g. Windows); the data itself is already synced */ }
}

/**
 * Encodes tensors and metadata as safetensors and writes them atomically to `path`.
 *
 * @param path The target file (conventionally `*.safetensors`).
 * @param tensors The tensors by name.
 * @param metadata Optional string metadata.
 * @returns Resolves once the file is in place.
 * @throws {TypeError | RangeError} On invalid tensors (see {@linkcode encodeSafetensors}).
 * @throws {Deno.errors.NotFound} Or another I/O error if the file cannot be written.
 * @example
 * ```ts
 * import { loadSafetensors, saveSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await saveSafetensors(`${dir}/m.safetensors`, {
 *   b: { dtype: "I32", shape: [3], data: new Int32Array([1, -2, 3]) },
 * });
 * const { tensors } = await loadSafetensors(`${dir}/m.safetensors`);
 * if (tensors.b.data[1] !== -2) throw new Error("unexpected");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Reads and validates a safetensors file.
 *
 * @param path The file to read.
 * @returns Its tensors and metadata.
 * @throws {CheckpointError} If the file is malformed (see {@linkcode decodeSafetensors}).
 * @throws {Deno.errors.NotFound} If the file does not exist.
 * @example
 * ```ts
 * import { loadSafetensors, saveSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await saveSafetensors(`${dir}/m.safetensors`, {}, { note: "empty" });
 * const { metadata } = await loadSafetensors(`${dir}/m.safetensors`);
 * if (metadata.note !== "empty") throw new Error("unexpected");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadSafetensors(path: string): Promise<SafetensorsContents> {
  const fail = failWith(`Cannot load ${path}`);
  // stat follows symlinks: a link to /dev/zero or a FIFO is refused before it is opened (opening
  // a FIFO would block; reading a device would never end).
  assertRegularFile(await Deno.stat(path), fail);
  const file = await Deno.open(path, { read: true });
  try {
    const info = await file.stat();
    assertRegularFile(info, fail);
    const size = info.size;
    const prefix = await readExactly(file, Math.min(8, size), fail);
    const headerLength = checkHeaderLength(prefix, size, fail);
    // The header is read and checked before any of the data is.
    const headerBytes = await readExactly(file, headerLength, fail);
    const dataLength = size - 8 - headerLength;
    const layout = parseHeader(headerBytes, dataLength, fail);
    const data = await readExactly(file, dataLength, fail);
    if ((await file.read(new Uint8Array(1))) !== null) {
      fail(`the file grew while it was read (expected ${size} bytes)`);
    }
    return assemble(layout, data);
  } finally {
    file.close();
  }
}

function assertRegularFile(info: Deno.FileInfo, fail: Fail): void {
  if (info.isFile) return;
  const kind = info.isDirectory
    ? "a directory"
    : info.isFifo
    ? "a FIFO"
    : info.isCharDevice
    ? "a character device"
    : info.isBlockDevice
    ? "a block device"
    : info.isSocket
    ? "a socket"
    : "not a regular file";
  fail(`only regular files are read, this is ${kind}`);
}

async function readExactly(file: Deno.FsFile, length: number, fail: Fail): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(out.subarray(filled));
    if (n === null) fail(`the file ended after ${filled} of ${length} expected bytes`);
    filled += n!;
  }
  return out;
}
