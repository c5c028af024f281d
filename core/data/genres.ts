/**
 * The 15 Brown genres and the label sets of the genre classification task (15-way, 4 groups,
 * informative/imaginative).
 *
 * @module
 */

/** One of the 15 Brown genre categories. */
export interface BrownGenre {
  /** The corpus letter (file names are `c<letter><nn>`). */
  code: string;
  /** The category name used by the corpus (`cats.txt`). */
  name: string;
  /** Index in the 4-way grouping (see {@linkcode LabelSet}). */
  group: number;
  /** 0 for informative prose (A–J), 1 for imaginative prose (K–R). */
  binary: number;
}

/** The 15 Brown genres in corpus letter order; a genre's index is its 15-way label. */
export const BROWN_GENRES: readonly BrownGenre[] = [
  { code: "a", name: "news", group: 0, binary: 0 },
  { code: "b", name: "editorial", group: 0, binary: 0 },
  { code: "c", name: "reviews", group: 0, binary: 0 },
  { code: "d", name: "religion", group: 1, binary: 0 },
  { code: "e", name: "hobbies", group: 1, binary: 0 },
  { code: "f", name: "lore", group: 1, binary: 0 },
  { code: "g", name: "belles_lettres", group: 1, binary: 0 },
  { code: "h", name: "government", group: 2, binary: 0 },
  { code: "j", name: "learned", group: 2, binary: 0 },
  { code: "k", name: "fiction", group: 3, binary: 1 },
  { code: "l", name: "mystery", group: 3, binary: 1 },
  { code: "m", name: "science_fiction", group: 3, binary: 1 },
  { code: "n", name: "adventure", group: 3, binary: 1 },
  { code: "p", name: "romance", group: 3, binary: 1 },
  { code: "r", name: "humor", group: 3, binary: 1 },
];

/**
 * The label sets of the genre classification task:
 * - `"genre"`: the 15 Brown categories ({@linkcode BROWN_GENRES} order);
 * - `"group"`: 4 groups — press (A–C: reportage, editorial, reviews), general prose (D–G:
 *   religion, skills and hobbies, popular lore, belles-lettres), learned and official (H, J:
 *   government documents and reports, learned), fiction (K–R: the six fiction and humour genres);
 * - `"binary"`: the corpus manual's own division, informative prose (A–J) vs imaginative (K–R).
 */
export type LabelSet = "genre" | "group" | "binary";

const LABEL_NAMES: Record<LabelSet, readonly string[]> = {
  genre: BROWN_GENRES.map((g) => g.name),
  group: ["press", "general_prose", "learned_official", "fiction"],
  binary: ["informative", "imaginative"],
};

/**
 * The class names of a label set, in label order.
 *
 * @param labels The label set.
 * @returns The names; label `i` is `names[i]`.
 * @throws {RangeError} If `labels` is not a known label set.
 * @example
 * ```ts
 * import { labelNames } from "./genres.ts";
 * if (labelNames("binary").join() !== "informative,imaginative") throw new Error("unexpected");
 * ```
 */
export function labelNames(labels: LabelSet): string[] {
  if (!Object.hasOwn(LABEL_NAMES, labels)) {
    throw new RangeError(
      `Cannot name labels: the label set must be "genre", "group" or "binary", got ${labels}`,
    );
  }
  return [...LABEL_NAMES[labels]];
}

/**
 * The label of a Brown genre in a label set.
 *
 * @param genre A genre name from {@linkcode BROWN_GENRES} (e.g. `"news"`).
 * @param labels The label set (default `"genre"`).
 * @returns The label index.
 * @throws {RangeError} If the genre or the label set is unknown.
 * @example
 * ```ts
 * import { genreLabel } from "./genres.ts";
 * if (genreLabel("mystery", "binary") !== 1 || genreLabel("news") !== 0) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function genreLabel(genre: string, labels: LabelSet = "genre"): number {
  labelNames(labels);
  const index = BROWN_GENRES.findIndex((g) => g.name === genre);
  if (index < 0) {
    throw new RangeError(`Cannot label a passage: unknown Brown genre ${JSON.stringify(genre)}`);
  }
  const g = BROWN_GENRES[index];
  return labels === "genre" ? index : labels === "group" ? g.group : g.binary;
}
