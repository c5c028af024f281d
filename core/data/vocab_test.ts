/**
 * Vocabulary reduction on hand-made token counts.
 *
 * @module
 */

import { GPT2_VOCAB_SIZE } from "./cache.ts";
import { buildVocab } from "./vocab.ts";
import { assertThrows } from "../../reference/testing.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("buildVocab keeps the most frequent ids, ties by smaller id, unk last", () => {
  //            id: 4 ×3, 7 ×2, 2 ×2, 9 ×1, 0 ×1
  const tokens = [4, 7, 2, 4, 9, 7, 2, 4, 0];
  const v = buildVocab(tokens, 4, { sourceVocabSize: 10 });
  assertEquals([...v.sourceIds], [4, 2, 7, -1], "dense → source ids (2 beats 7 on the tie)");
  assertEquals(v.unkId, 3, "unk id");
  assertEquals([...v.remap([4, 7, 2, 9, 0, 5])], [0, 2, 1, 3, 3, 3], "remap");
  // Ids that never occur fill the table by increasing id once the seen ones run out.
  const wide = buildVocab([5, 5], 4, { sourceVocabSize: 10 });
  assertEquals([...wide.sourceIds], [5, 0, 1, -1], "unseen ids fill in order");
  // Full vocabulary: identity, no unk.
  const full = buildVocab(tokens, 0, { sourceVocabSize: 10 });
  assertEquals(full.size, 10, "full size");
  assertEquals(full.unkId, -1, "full has no unk");
  assertEquals([...full.remap([9, 0, 3])], [9, 0, 3], "identity");
  assertEquals(buildVocab([]).size, GPT2_VOCAB_SIZE, "default full GPT-2 vocabulary");
  assertThrows(() => buildVocab(tokens, 1, { sourceVocabSize: 10 }), RangeError, "got 1");
  assertThrows(() => buildVocab(tokens, 11, { sourceVocabSize: 10 }), RangeError, "got 11");
  assertThrows(() => buildVocab([3, 10], 4, { sourceVocabSize: 10 }), RangeError, "token 1 is 10");
  assertThrows(() => v.remap([1, -1]), RangeError, "token 1 is -1");
  assertThrows(() => v.remap([0.5]), RangeError, "token 0 is 0.5");
});
