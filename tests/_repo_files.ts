/**
 * The repository's own files for the suites that scan it (SPEC citations, import layering): every
 * file under the root whose name matches, skipping hidden folders and generated or downloaded
 * trees (`results/`, `data/`, `node_modules/`).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file's parent folder). */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

const SKIPPED_DIRS = new Set(["results", "data", "node_modules"]);

/**
 * Walks `dir` for files whose name matches `pattern`.
 *
 * @param dir The folder to walk (absolute).
 * @param pattern Tested against each file's name.
 * @returns The absolute paths, in directory order.
 */
export async function* repoFiles(dir: string, pattern: RegExp): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      if (entry.name.startsWith(".") || SKIPPED_DIRS.has(entry.name)) continue;
      yield* repoFiles(path, pattern);
    } else if (entry.isFile && pattern.test(entry.name)) {
      yield path;
    }
  }
}
