/** A CLI subcommand and the shared option parsing that turns bad flags into one-line errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { VirtusError } from '../../util/errors.ts';

export interface Command {
  readonly name: string;
  readonly summary: string;
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `argv` against `options`. Unknown flags, missing values and stray arguments become a
 * VirtusError with exit code 2 (usage error), naming the command.
 */
export function parseFlags<O extends Options>(cmd: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (e) {
    const msg = e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e);
    throw new VirtusError('BAD_FLAG', `${cmd}: ${msg.charAt(0).toLowerCase()}${msg.slice(1)} (try 'virtus ${cmd} --help')`, { exitCode: 2 });
  }
}

/** Parses a non-negative integer flag value (decimal or 0x hex). */
export function parseCount(text: string, flag: string): number {
  const v = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(v)) throw new VirtusError('BAD_FLAG', `${flag}: "${text}" is not a whole number`, { exitCode: 2 });
  return v;
}
