/**
 * The `virtus` command: dispatches to a subcommand. Every error a user can cause ends in one
 * line on stderr and a non-zero exit; a stack trace appears only with VIRTUS_DEBUG=1.
 */
import { reportError } from './report-error.ts';
import type { Command } from './command.ts';
import { runCommand } from './commands/run.ts';
import { execCommand } from './commands/exec.ts';
import { guestCommand } from './commands/guest.ts';
import { imageCommand } from './commands/image.ts';
import { webCommand } from './commands/web.ts';
import { switchCommand } from './commands/switch.ts';
import { daemonCommand } from './commands/daemon.ts';
import { consoleCommand } from './commands/console.ts';
import { createCommand, logsCommand, pauseCommand, resumeCommand, rmCommand, snapshotCommand, startCommand, stopCommand } from './commands/machines.ts';
import { migrateCommand } from './commands/migrate.ts';
import { psCommand } from './commands/ps.ts';
import { clusterCommand } from './commands/cluster.ts';
import { tuneV8ForTranslator } from './v8-tuning.ts';

const COMMANDS: Command[] = [
  runCommand, execCommand, guestCommand, imageCommand, webCommand, switchCommand, daemonCommand,
  psCommand, createCommand, startCommand, stopCommand, pauseCommand, resumeCommand, rmCommand, consoleCommand, logsCommand, snapshotCommand, migrateCommand,
  clusterCommand,
];

/** A daemon machine's worker thread loads this module (the CLI's bundle) and runs this. */
export { vmWorkerMain } from './daemon/worker.ts';
export { postcopyWorkerMain } from './postcopy-worker.ts';
export { hartWorkerMain } from './hart-worker.ts';

function usage(): string {
  const lines = [
    'usage: virtus <command> [options]',
    '',
    'virtus is a RISC-V (RV64GC) virtual machine monitor written in TypeScript.',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    "Run 'virtus <command> --help' for a command's options.",
  ];
  return lines.join('\n');
}

/** Runs the CLI with `argv` (without node and script); returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  // `virtus --cluster URL create ...` is `virtus create --cluster URL ...`.
  if (argv[0] === '--cluster' && argv.length > 2) argv = [argv[2]!, '--cluster', argv[1]!, ...argv.slice(3)];
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    console.log('virtus 0.1.0');
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`virtus: unknown command '${name}' (try 'virtus --help')`);
    return 2;
  }
  tuneV8ForTranslator();
  try {
    return await cmd.run(rest);
  } catch (e) {
    return reportError(e);
  }
}

export { reportError } from './report-error.ts';
