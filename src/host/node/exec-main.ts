/**
 * `virtus exec` on its own: bin/virtus.mjs starts this entry (its own, smaller bundle) for the
 * exec command, because loading the whole CLI, every command and the packages they use, took
 * most of the start-up of a static hello world.
 */
import { execCommand } from './commands/exec.ts';
import { reportError } from './report-error.ts';
import { tuneV8ForTranslator } from './v8-tuning.ts';

/** Runs `virtus exec` with `argv` (`exec` first, as the CLI's main takes it); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  tuneV8ForTranslator();
  try {
    return await execCommand.run(argv.slice(1));
  } catch (e) {
    return reportError(e);
  }
}
