/**
 * `virtus image <subcommand>`: disk image tools. Each subcommand lives in its own file
 * (image-<name>.ts); adding one is one import and one entry in SUBCOMMANDS.
 */
import { VirtusError } from '../../../util/errors.ts';
import type { Command } from '../command.ts';
import { imageCommitCommand } from './image-commit.ts';
import { imageConvertCommand } from './image-convert.ts';
import { imageCreateCommand } from './image-create.ts';
import { imageInfoCommand } from './image-info.ts';
import { imageLsCommand } from './image-ls.ts';
import { imagePullCommand } from './image-pull.ts';
import { imagePushCommand } from './image-push.ts';
import { imageRmCommand } from './image-rm.ts';
import { imageTagCommand } from './image-tag.ts';

const SUBCOMMANDS: Command[] = [
  imageCreateCommand,
  imageInfoCommand,
  imageConvertCommand,
  imageCommitCommand,
  imageLsCommand,
  imageRmCommand,
  imageTagCommand,
  imagePushCommand,
  imagePullCommand,
];

function usage(): string {
  return [
    'usage: virtus image <subcommand> [options]',
    '',
    'Disk images: raw and qcow2 (versions 2 and 3), compatible with qemu-img.',
    '',
    'subcommands:',
    ...SUBCOMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    "Run 'virtus image <subcommand> --help' for its options.",
  ].join('\n');
}

export const imageCommand: Command = {
  name: 'image',
  summary: 'create, inspect, convert and commit disk images',
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      console.log(usage());
      return name === undefined ? 2 : 0;
    }
    const cmd = SUBCOMMANDS.find((c) => c.name === name);
    if (!cmd) throw new VirtusError('BAD_FLAG', `image: unknown subcommand '${name}' (try 'virtus image --help')`, { exitCode: 2 });
    return cmd.run(rest);
  },
};
