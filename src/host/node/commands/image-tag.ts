/** `virtus image tag`: give an image in the local store another name. */
import { parseLocalRef } from '../../../repo/reference.ts';
import { ImageStore } from '../../../repo/store.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';

const HELP = `usage: virtus image tag SOURCE TARGET

Names the image SOURCE (NAME[:TAG], NAME@DIGEST or a digest) also TARGET
(NAME[:TAG], tag 'latest' when not given). A TARGET that named another image
now names this one; the other keeps its other names.

  -h, --help  show this help`;

const OPTIONS = { help: { type: 'boolean', short: 'h' } } as const;

export const imageTagCommand: Command = {
  name: 'tag',
  summary: 'give an image in the local store another name',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image tag', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 2) throw new VirtusError('BAD_FLAG', "image tag: expected SOURCE TARGET (try 'virtus image tag --help')", { exitCode: 2 });
    const [src, dst] = positionals as [string, string];
    const target = parseLocalRef(dst, 'image tag TARGET');
    if (target.tag === undefined || target.name === '') throw new VirtusError('BAD_REFERENCE', `image tag: TARGET must be NAME[:TAG], not '${dst}'`, { exitCode: 2 });
    const store = ImageStore.open();
    const { digest } = store.resolve(src);
    await store.tag(target, digest);
    return 0;
  },
};
