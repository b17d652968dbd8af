/** `virtus image convert`: copy an image (through its backing chain) into a new raw or qcow2 image. */
import { resolve } from 'node:path';
import type { BlockBackend } from '../../../storage/backend.ts';
import { convertImage } from '../../../storage/copy.ts';
import { createImage, openImage, parseFormat } from '../../../storage/open.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';
import { nodeFileSystem } from '../host-file.ts';
import { formatFor, parseOptionList, progressPrinter, qcow2Options, wantProgress } from './image-util.ts';

const HELP = `usage: virtus image convert [-f FMT] [-O OUTPUT_FMT] [-o OPTIONS] [-U] [-p] [-q] SOURCE OUTPUT

Copies the virtual disk SOURCE (with everything its backing chain supplies) into a new
image OUTPUT. Zero blocks are not written, so the output is sparse.

  -f FMT          the source's format (default: detected)
  -O OUTPUT_FMT   raw or qcow2 (default: from OUTPUT's name, .qcow2 -> qcow2, else raw)
  -o OPTIONS      qcow2 options for the output (see 'virtus image create --help')
  -c              store the output's clusters compressed (qcow2, zlib)
  -U, --force-share  read SOURCE even while another process writes it
  -p              show progress (the default on a terminal)
  -q              print nothing
  -h, --help      show this help`;

const OPTIONS = {
  format: { type: 'string', short: 'f' },
  'output-format': { type: 'string', short: 'O' },
  options: { type: 'string', short: 'o' },
  compress: { type: 'boolean', short: 'c' },
  'force-share': { type: 'boolean', short: 'U' },
  progress: { type: 'boolean', short: 'p' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const imageConvertCommand: Command = {
  name: 'convert',
  summary: 'copy an image into a new raw or qcow2 image',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image convert', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 2) throw new VirtusError('BAD_FLAG', "image convert: expected SOURCE OUTPUT (try 'virtus image convert --help')", { exitCode: 2 });
    const [srcPath, dstPath] = positionals as [string, string];
    if (resolve(srcPath) === resolve(dstPath)) throw new VirtusError('BAD_FLAG', 'image convert: SOURCE and OUTPUT are the same file', { exitCode: 2 });
    const srcFormat = v.format !== undefined ? parseFormat(v.format, 'image convert -f') : undefined;
    const dstFormat = formatFor(dstPath, v['output-format'], 'raw', 'image convert -O');
    const opts = parseOptionList(v.options);
    const q = dstFormat === 'qcow2' ? qcow2Options(opts) : {};
    if (v.compress && dstFormat !== 'qcow2') throw new VirtusError('BAD_FLAG', 'image convert: -c needs qcow2 output (-O qcow2)', { exitCode: 2 });
    if (v.compress && q.compressionType === 'zstd') throw new VirtusError('NOT_SUPPORTED', 'image convert: virtus compresses with zlib only (compression_type=zstd is read, not written)');
    if (dstFormat === 'raw' && opts.size > 0) throw new VirtusError('BAD_OPTION', '-o: raw output takes no options', { exitCode: 2 });

    const src = openImage(nodeFileSystem, srcPath, { readOnly: true, forceShare: v['force-share'] ?? false, ...(srcFormat ? { format: srcFormat } : {}) });
    let dst: BlockBackend | null = null;
    try {
      createImage(nodeFileSystem, dstPath, { format: dstFormat, size: src.size, ...q });
      dst = openImage(nodeFileSystem, dstPath, { format: dstFormat });
      const progress = progressPrinter(wantProgress(v.progress, v.quiet));
      convertImage(src, dst, { compress: v.compress ?? false, onProgress: (done, total) => progress.update(done, total) });
      progress.end();
    } finally {
      dst?.close();
      src.close();
    }
    return 0;
  },
};
