/**
 * The file encoding of the reference test vectors (`reference/vectors.ts` builds them as plain
 * data): one safetensors file per function family, read by ports in other ecosystems.
 *
 * @module
 */

import { type TestVectorFamily, testVectorIndex } from "../reference/vectors.ts";
import { encodeSafetensors, type SafetensorsTensor } from "./safetensors.ts";

/**
 * Encodes one family as a safetensors file: tensors `<case>/input/<name>` and
 * `<case>/output/<name>`, and `__metadata__` with `format`, `version`, `family`, `description`,
 * `seed`, `conventions` and `cases` (the JSON of the family's case list, as in `index.json`,
 * including the parameters).
 *
 * @param family A family of a set from `buildTestVectors`.
 * @param seed The set's seed, recorded in the metadata.
 * @returns The file's bytes.
 * @throws {RangeError} If two cases of the family share a name.
 * @example
 * ```ts
 * import { buildTestVectors } from "../reference/vectors.ts";
 * import { decodeSafetensors } from "./safetensors.ts";
 * import { encodeTestVectorFamily } from "./test_vectors.ts";
 * const set = buildTestVectors();
 * const bytes = encodeTestVectorFamily(set.families[0], set.seed);
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * if (metadata.family !== "prune24" || !tensors["spec9/output/mask"]) throw new Error("unexpected");
 * ```
 */
export function encodeTestVectorFamily(family: TestVectorFamily, seed: number): Uint8Array {
  const tensors: Record<string, SafetensorsTensor> = {};
  const seen = new Set<string>();
  for (const c of family.cases) {
    if (seen.has(c.name)) {
      throw new RangeError(
        `Cannot encode test vectors: family ${family.name} has two cases named "${c.name}"`,
      );
    }
    seen.add(c.name);
    for (const [name, t] of Object.entries(c.inputs)) tensors[`${c.name}/input/${name}`] = t;
    for (const [name, o] of Object.entries(c.outputs)) {
      tensors[`${c.name}/output/${name}`] = o.tensor;
    }
  }
  const index = testVectorIndex({ seed, large: false, families: [family] });
  return encodeSafetensors(tensors, {
    format: index.format,
    version: String(index.version),
    family: family.name,
    description: family.description,
    seed: String(seed),
    conventions: JSON.stringify(index.conventions),
    cases: JSON.stringify(index.families[0].cases),
  });
}
