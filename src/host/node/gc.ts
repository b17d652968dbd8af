/** A full garbage collection of the calling thread's V8 heap, on demand. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8's full garbage collection, obtained once without --expose-gc on the command line: the flag
 * is on only while a fresh context is made to hand its `gc` out (null where V8 refuses).
 */
let fullGc: (() => void) | null | undefined;
export function collectGarbage(): void {
  if (fullGc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      fullGc = runInNewContext('gc') as () => void;
    } catch {
      fullGc = null;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  fullGc?.();
}
