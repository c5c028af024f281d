/**
 * The label sets of the genre task.
 *
 * @module
 */

import { BROWN_GENRES, genreLabel, labelNames } from "./genres.ts";
import { assertThrows } from "../../reference/testing.ts";
import { assertEquals } from "./_testing.ts";

Deno.test("label sets: 15 genres, 4 groups, informative/imaginative", () => {
  assertEquals(BROWN_GENRES.map((g) => g.code).join(""), "abcdefghjklmnpr", "letters");
  assertEquals(labelNames("group"), [
    "press",
    "general_prose",
    "learned_official",
    "fiction",
  ], "groups");
  const byGroup = [0, 1, 2, 3].map((k) =>
    BROWN_GENRES.filter((g) => genreLabel(g.name, "group") === k).map((g) => g.code).join("")
  );
  assertEquals(byGroup, ["abc", "defg", "hj", "klmnpr"], "group membership");
  assertEquals(genreLabel("learned", "binary"), 0, "learned is informative");
  assertEquals(genreLabel("humor", "binary"), 1, "humor is imaginative");
  assertEquals(genreLabel("humor"), 14, "humor is the 15th genre");
  assertThrows(() => genreLabel("poetry"), RangeError, '"poetry"');
});
