/** `virtus image commit`: merge an overlay's data into its backing image (as `qemu-img commit`). */
import { resolve } from 'node:path';
import type { BlockBackend } from '../../../storage/backend.ts';
import { commitImage } from '../../../storage/copy.ts';
import { openImage, parseFormat } from '../../../storage/open.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';
import { nodeFileSystem } from '../host-file.ts';
import { progressPrinter, wantProgress } from './image-util.ts';

const HELP = `usage: virtus image commit [-f FMT] [-b BASE] [-d] [-p] [-q] FILE

Writes the data of the qcow2 overlay FILE into its backing image, then empties FILE
(it keeps reading the same, now through its backing image).

  -f FMT      FILE's format (default: detected)
  -b BASE     commit into BASE, an image further down the backing chain (implies -d)
  -d          do not empty FILE afterwards
  -p          show progress (the default on a terminal)
  -q          print nothing
  -h, --help  show this help`;

const OPTIONS = {
  format: { type: 'string', short: 'f' },
  base: { type: 'string', short: 'b' },
  'no-empty': { type: 'boolean', short: 'd' },
  progress: { type: 'boolean', short: 'p' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const imageCommitCommand: Command = {
  name: 'commit',
  summary: "merge an overlay's data into its backing image",
  async run(argv) {
    const { values: v, positionals } = parseFlags('image commit', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 1) throw new VirtusError('BAD_FLAG', "image commit: expected one FILE (try 'virtus image commit --help')", { exitCode: 2 });
    const path = positionals[0]!;
    const format = v.format !== undefined ? parseFormat(v.format, 'image commit -f') : undefined;
    const empty = !v['no-empty'] && v.base === undefined;
    // The chain below is locked letting others write it: the base is written through a second, writable open.
    const top = openImage(nodeFileSystem, path, { readOnly: !empty, shareBacking: true, ...(format ? { format } : {}) });
    let baseWritable: BlockBackend | null = null;
    try {
      if (!top.backing) throw new VirtusError('COMMIT_NO_BACKING', `${path}: image has no backing file to commit into`);
      let base: BlockBackend | null = top.backing;
      if (v.base !== undefined) {
        const want = resolve(v.base);
        while (base && resolve(base.name) !== want) base = base.backing;
        if (!base) throw new VirtusError('COMMIT_BASE', `${v.base} is not in the backing chain of ${path}`);
      }
      baseWritable = openImage(nodeFileSystem, base.name, { format: base.format });
      const progress = progressPrinter(wantProgress(v.progress, v.quiet));
      commitImage(top, { base, baseWritable, empty, onProgress: (d, t) => progress.update(d, t) });
      progress.end();
    } finally {
      baseWritable?.close();
      top.close();
    }
    if (!v.quiet) console.log('Image committed.');
    return 0;
  },
};
