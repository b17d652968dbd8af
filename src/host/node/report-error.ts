/** How every virtus command ends on an error: one line on stderr and an exit status. */
import { isVirtusError } from '../../util/errors.ts';

/** Prints an error as one line (a stack trace only with VIRTUS_DEBUG=1); returns the exit code. */
export function reportError(e: unknown): number {
  if (process.env.VIRTUS_DEBUG === '1') console.error(e);
  if (isVirtusError(e)) {
    console.error(`virtus: ${e.message}`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  console.error(`virtus: internal error: ${msg} (set VIRTUS_DEBUG=1 for details)`);
  return 70;
}
