import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from `test/` or `dist/test/` (the tests run compiled). */
export const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'layers'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root from ' + fileURLToPath(import.meta.url));
    dir = up;
  }
})();
