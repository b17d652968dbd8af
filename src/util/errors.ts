/**
 * Host-side failures: a stable code and a message a user can act on.
 * Guest exceptions are never thrown; they are trap data (see cpu/trap.ts).
 */
export class VirtusError extends Error {
  /** Stable machine-readable code, e.g. `ELF_BAD_MACHINE`. */
  readonly code: string;
  /** Process exit status the CLI uses when this error ends a command. */
  readonly exitCode: number;

  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VirtusError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** True when `e` is a VirtusError (optionally with the given code). */
export function isVirtusError(e: unknown, code?: string): e is VirtusError {
  return e instanceof VirtusError && (code === undefined || e.code === code);
}
