/**
 * virtus' native helpers (build/native/NAME.node, built from src/host/node/native/NAME.c by
 * `npm install`, scripts/build-native.mjs). Each is optional: without a C compiler the helper is
 * missing and its callers do without, saying so where it matters.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const loaded = new Map<string, unknown>();

/**
 * The helper `name`, found in build/native/ above this module (src/host/node/ run from source,
 * build/cli/ bundled), or null when it was not built.
 */
export function nativeHelper<T>(name: string): T | null {
  if (loaded.has(name)) return loaded.get(name) as T | null;
  let found: T | null = null;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const path = join(dir, 'build', 'native', `${name}.node`);
    if (existsSync(path)) {
      found = createRequire(import.meta.url)(path) as T;
      break;
    }
    dir = dirname(dir);
  }
  loaded.set(name, found);
  return found;
}

/**
 * Returns the memory the C library's allocator holds free to the system (malloc_trim): true when
 * some was returned. Without the helper (or glibc) it does nothing.
 */
export function trimMemory(): boolean {
  return (nativeHelper<{ trim(): number }>('memory')?.trim() ?? 0) > 0;
}
