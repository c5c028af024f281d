/**
 * The binary token file (`.bin`) of the cache, like nanoGPT's. Layout, all little-endian: bytes
 * 0–7 the ASCII magic `TOKENS24`; 8–11 format version (1); 12–15 the vocabulary size; 16–23 the
 * token count (unsigned 64-bit, at most 2^53); 24–27 the FNV-1a 32-bit hash of the token bytes;
 * 28–31 bytes per token (2); then the tokens as `uint16`.
 *
 * @module
 */

import { DataCacheError } from "./cache.ts";
import { fnv1a, hex } from "./_hash.ts";

const TOKEN_MAGIC = "TOKENS24";
const TOKEN_VERSION = 1;
const TOKEN_HEADER_BYTES = 32;

/** The contents of a `.bin` token file. */
export interface TokenFile {
  /** The tokens. */
  tokens: Uint16Array;
  /** The vocabulary size recorded in the header; every token is below it. */
  vocabSize: number;
  /** FNV-1a 32-bit hash of the token bytes (as stored in the header). */
  checksum: number;
}

/**
 * Encodes tokens as a `.bin` token file (header layout in the module documentation).
 *
 * @param tokens The tokens.
 * @param vocabSize The vocabulary size, an integer in `[1, 65536]`; every token must be below it.
 * @returns The file's bytes.
 * @throws {RangeError} If `vocabSize` is out of range or a token is not below it.
 * @example
 * ```ts
 * import { decodeTokenFile, encodeTokenFile } from "./token_file.ts";
 * const bytes = encodeTokenFile(new Uint16Array([5, 50256]), 50257);
 * if (bytes.length !== 32 + 4 || decodeTokenFile(bytes).tokens[1] !== 50256) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function encodeTokenFile(tokens: Uint16Array, vocabSize: number): Uint8Array {
  const action = "encode a token file";
  if (!(tokens instanceof Uint16Array)) {
    throw new TypeError(`Cannot ${action}: tokens must be a Uint16Array, got ${tokens}`);
  }
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 65536) {
    throw new RangeError(
      `Cannot ${action}: vocabSize must be an integer in [1, 65536], got ${vocabSize}`,
    );
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] >= vocabSize) {
      throw new RangeError(
        `Cannot ${action}: token ${i} is ${tokens[i]}, not below the vocabulary size ${vocabSize}`,
      );
    }
  }
  const out = new Uint8Array(TOKEN_HEADER_BYTES + tokens.byteLength);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(TOKEN_MAGIC), 0);
  view.setUint32(8, TOKEN_VERSION, true);
  view.setUint32(12, vocabSize, true);
  view.setBigUint64(16, BigInt(tokens.length), true);
  const body = new Uint8Array(out.buffer, TOKEN_HEADER_BYTES);
  for (let i = 0; i < tokens.length; i++) {
    body[2 * i] = tokens[i] & 0xff;
    body[2 * i + 1] = tokens[i] >>> 8;
  }
  view.setUint32(24, fnv1a(body), true);
  view.setUint32(28, 2, true);
  return out;
}

/**
 * Decodes and validates a `.bin` token file.
 *
 * @param bytes The whole file.
 * @param source Where the bytes came from, for error messages (default `"token file"`).
 * @returns The tokens (a fresh array), the vocabulary size and the checksum.
 * @throws {DataCacheError} If the file is shorter than the header, the magic, version or token
 * width is wrong, the length disagrees with the token count (truncated or trailing bytes), the
 * checksum does not match, or a token is not below the vocabulary size.
 * @example
 * ```ts
 * import { DataCacheError, decodeTokenFile, encodeTokenFile } from "./mod.ts";
 * const bytes = encodeTokenFile(new Uint16Array([1, 2, 3]), 4);
 * try {
 *   decodeTokenFile(bytes.subarray(0, bytes.length - 2));
 *   throw new Error("accepted a truncated file");
 * } catch (e) {
 *   if (!(e instanceof DataCacheError)) throw e;
 * }
 * ```
 */
export function decodeTokenFile(bytes: Uint8Array, source = "token file"): TokenFile {
  const fail = (problem: string): never => {
    throw new DataCacheError(`Cannot load ${source}: ${problem}`);
  };
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Cannot load ${source}: expected a Uint8Array, got ${bytes}`);
  }
  if (bytes.length < TOKEN_HEADER_BYTES) {
    fail(`file is too short (${bytes.length} bytes; the header takes ${TOKEN_HEADER_BYTES})`);
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== TOKEN_MAGIC) {
    fail(`bad magic ${JSON.stringify(magic)}, expected ${JSON.stringify(TOKEN_MAGIC)}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== TOKEN_VERSION) fail(`unsupported version ${version}, expected ${TOKEN_VERSION}`);
  const vocabSize = view.getUint32(12, true);
  if (vocabSize < 1 || vocabSize > 65536) {
    fail(`vocabulary size ${vocabSize} is not in [1, 65536]`);
  }
  const width = view.getUint32(28, true);
  if (width !== 2) fail(`token width ${width} bytes is not supported (expected 2)`);
  const count = view.getBigUint64(16, true);
  const expectedLength = BigInt(TOKEN_HEADER_BYTES) + 2n * count;
  if (expectedLength !== BigInt(bytes.length)) {
    fail(
      `header says ${count} tokens (${expectedLength} bytes) but the file has ${bytes.length} ` +
        `bytes (${bytes.length < expectedLength ? "truncated" : "trailing bytes"})`,
    );
  }
  const body = bytes.subarray(TOKEN_HEADER_BYTES);
  const checksum = view.getUint32(24, true);
  const actual = fnv1a(body);
  if (actual !== checksum) {
    fail(`checksum mismatch (header ${hex(checksum)}, data ${hex(actual)}): the data is corrupt`);
  }
  const tokens = new Uint16Array(Number(count));
  for (let i = 0; i < tokens.length; i++) {
    const t = body[2 * i] | (body[2 * i + 1] << 8);
    if (t >= vocabSize) fail(`token ${i} is ${t}, not below the vocabulary size ${vocabSize}`);
    tokens[i] = t;
  }
  return { tokens, vocabSize, checksum };
}

/**
 * Reads and validates a `.bin` token file.
 *
 * @param path The file.
 * @returns Its tokens, vocabulary size and checksum.
 * @throws {DataCacheError} If the file is missing or corrupt (see {@linkcode decodeTokenFile}).
 * @example
 * ```ts
 * import { encodeTokenFile, loadTokens } from "./token_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/t.bin`, encodeTokenFile(new Uint16Array([7, 8]), 10));
 * const { tokens, vocabSize } = await loadTokens(`${dir}/t.bin`);
 * if (tokens[1] !== 8 || vocabSize !== 10) throw new Error("unexpected");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadTokens(path: string): Promise<TokenFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataCacheError(
        `Cannot load token file ${path}: it does not exist (run prepareBrown, or ` +
          `\`deno task prepare\`, on a machine with network access first)`,
      );
    }
    throw e;
  }
  return decodeTokenFile(bytes, `token file ${path}`);
}
