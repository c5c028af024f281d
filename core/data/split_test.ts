/**
 * The stratified train/validation split on hand-made documents.
 *
 * @module
 */

import { stratifiedSplit } from "./split.ts";
import { assert, assertThrows } from "../../reference/testing.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("stratifiedSplit is by document, stratified, deterministic and seed-dependent", () => {
  const sizes: Record<string, number> = { news: 44, humor: 9, science_fiction: 6, lore: 48 };
  const docs: { id: string; genre: string }[] = [];
  for (const [genre, n] of Object.entries(sizes)) {
    for (let i = 0; i < n; i++) docs.push({ id: `${genre}-${i}`, genre });
  }
  docs.push({ id: "lonely", genre: "romance" }); // a genre with a single document
  const a = stratifiedSplit(docs, { seed: 5, valFraction: 0.1 });
  const b = stratifiedSplit(docs, { seed: 5, valFraction: 0.1 });
  const c = stratifiedSplit(docs, { seed: 6, valFraction: 0.1 });
  assertEquals(a, b, "same seed");
  assert(JSON.stringify(a.val) !== JSON.stringify(c.val), "another seed gave the same split");
  const all = [...a.train, ...a.val].sort();
  assertEquals(all, docs.map((d) => d.id).sort(), "every document in exactly one split");
  assert(new Set(a.val).size + new Set(a.train).size === docs.length, "a document in both");
  // k = clamp(round(n · 0.1), 1, n − 1): 44 → 4, 9 → 1, 6 → 1, 48 → 5, 1 → 0.
  const valCount = (g: string) => a.val.filter((id) => id.startsWith(`${g}-`)).length;
  assertEquals(
    [valCount("news"), valCount("humor"), valCount("science_fiction"), valCount("lore")],
    [4, 1, 1, 5],
    "per-genre validation counts",
  );
  assert(a.train.includes("lonely"), "a single-document genre must stay in train");
  // Input order is kept inside each split.
  const position = new Map(docs.map((d, i) => [d.id, i]));
  for (const ids of [a.train, a.val]) {
    for (let i = 1; i < ids.length; i++) {
      assert(position.get(ids[i - 1])! < position.get(ids[i])!, "split order differs from input");
    }
  }
  // Independent of the input order.
  const reversed = stratifiedSplit([...docs].reverse(), { seed: 5, valFraction: 0.1 });
  assertEquals([...reversed.val].sort(), [...a.val].sort(), "depends on input order");
  // Large fractions still leave a training document.
  const most = stratifiedSplit(docs, { seed: 5, valFraction: 0.99 });
  assert(most.train.filter((id) => id.startsWith("humor-")).length === 1, "train left empty");
  assertThrows(() => stratifiedSplit(docs, { valFraction: 0 }), RangeError, "got 0");
  assertThrows(() => stratifiedSplit(docs, { valFraction: 1 }), RangeError, "got 1");
  assertThrows(() => stratifiedSplit(docs, { valFraction: NaN }), RangeError, "got NaN");
  assertThrows(() => stratifiedSplit(docs, { seed: -1 }), RangeError, "got -1");
  assertThrows(
    () => stratifiedSplit([docs[0], docs[0]]),
    RangeError,
    "duplicate document id news-0",
  );
});
