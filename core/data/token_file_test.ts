/**
 * The `.bin` token file: its header layout and every corruption it must reject.
 *
 * @module
 */

import { DataCacheError, GPT2_VOCAB_SIZE } from "./cache.ts";
import { decodeTokenFile, encodeTokenFile, loadTokens } from "./token_file.ts";
import { assert, assertRejects, assertThrows } from "../../reference/testing.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("token file header codec: hand-checked layout and every corruption", () => {
  const tokens = new Uint16Array([0, 1, 258, 50256]);
  const bytes = encodeTokenFile(tokens, GPT2_VOCAB_SIZE);
  assert(bytes.length === 32 + 8, `length ${bytes.length}`);
  assertEquals(new TextDecoder().decode(bytes.subarray(0, 8)), "TOKENS24", "magic");
  const view = new DataView(bytes.buffer);
  assertEquals(view.getUint32(8, true), 1, "version");
  assertEquals(view.getUint32(12, true), 50257, "vocab size");
  assertEquals(Number(view.getBigUint64(16, true)), 4, "token count");
  assertEquals(view.getUint32(28, true), 2, "bytes per token");
  // Little-endian tokens: 258 = 0x0102, 50256 = 0xC450.
  assertEquals([...bytes.subarray(32)], [0, 0, 1, 0, 2, 1, 0x50, 0xc4], "token bytes");
  // FNV-1a of those 8 bytes, computed independently here.
  let h = 0x811c9dc5;
  for (const x of bytes.subarray(32)) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  assertEquals(view.getUint32(24, true), h, "checksum");
  const back = decodeTokenFile(bytes);
  assertEquals([...back.tokens], [...tokens], "round trip");
  assertEquals(back.vocabSize, 50257, "vocab size back");
  assertEquals([...decodeTokenFile(encodeTokenFile(new Uint16Array(0), 7)).tokens], [], "empty");

  for (const cut of [0, 7, 31, 32, 33, 39]) {
    assertThrows(() => decodeTokenFile(bytes.slice(0, cut)), DataCacheError, "Cannot load");
  }
  assertThrows(() => decodeTokenFile(bytes.slice(0, 20)), DataCacheError, "too short");
  assertThrows(() => decodeTokenFile(bytes.slice(0, 38)), DataCacheError, "truncated");
  const longer = new Uint8Array(bytes.length + 2);
  longer.set(bytes);
  assertThrows(() => decodeTokenFile(longer), DataCacheError, "trailing bytes");
  const corrupt = (at: number, value: number) => {
    const copy = bytes.slice();
    copy[at] = value;
    return copy;
  };
  assertThrows(() => decodeTokenFile(corrupt(0, 0x58)), DataCacheError, "bad magic");
  assertThrows(() => decodeTokenFile(corrupt(8, 2)), DataCacheError, "unsupported version 2");
  assertThrows(() => decodeTokenFile(corrupt(28, 4)), DataCacheError, "token width 4");
  assertThrows(() => decodeTokenFile(corrupt(16, 9)), DataCacheError, "header says 9 tokens");
  assertThrows(() => decodeTokenFile(corrupt(35, 7)), DataCacheError, "checksum mismatch");
  // A header vocabulary smaller than a (checksum-valid) token.
  const small = bytes.slice();
  new DataView(small.buffer).setUint32(12, 300, true);
  assertThrows(() => decodeTokenFile(small), DataCacheError, "token 3 is 50256, not below");
  assertThrows(() => encodeTokenFile(tokens, 50000), RangeError, "not below the vocabulary");
  assertThrows(() => encodeTokenFile(tokens, 70000), RangeError, "[1, 65536]");
});

Deno.test("loadTokens reads a file and names a missing one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/a.bin`, encodeTokenFile(new Uint16Array([3, 1, 2]), 4));
    assertEquals([...(await loadTokens(`${dir}/a.bin`)).tokens], [3, 1, 2], "tokens");
    await assertRejects(() => loadTokens(`${dir}/b.bin`), DataCacheError, "does not exist");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
