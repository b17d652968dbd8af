/** `virtus image create`: a new empty image, or an overlay over a backing image (as `qemu-img create`). */
import { resolve } from 'node:path';
import { createImage } from '../../../storage/open.ts';
import { qcow2Defaults } from '../../../storage/qcow2/create.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';
import { parseFlags, type Command } from '../command.ts';
import { nodeFileSystem } from '../host-file.ts';
import { formatFor, parseOptionList, qcow2Options } from './image-util.ts';

const HELP = `usage: virtus image create [-f FMT] [-b BACKING [-F BACKING_FMT]] [-o OPTIONS] [-q] FILE [SIZE]

Creates a disk image FILE of SIZE bytes (suffixes K, M, G, T: binary units).

  -f FMT          qcow2 or raw (default: from the file name, .raw/.img -> raw, else qcow2)
  -b BACKING      create a thin qcow2 overlay over BACKING; SIZE defaults to its size.
                  A relative BACKING is relative to FILE's directory, as in qemu-img.
  -F BACKING_FMT  the backing image's format (default: detected)
  -o OPTIONS      qcow2 options, comma-separated: cluster_size=64K, compat=1.1|0.10,
                  refcount_bits=16, lazy_refcounts=off, compression_type=zlib|zstd
  -q              print nothing
  -h, --help      show this help`;

const OPTIONS = {
  format: { type: 'string', short: 'f' },
  backing: { type: 'string', short: 'b' },
  'backing-format': { type: 'string', short: 'F' },
  options: { type: 'string', short: 'o' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const imageCreateCommand: Command = {
  name: 'create',
  summary: 'create an image or an overlay over a backing image',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image create', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const [file, sizeText, ...extra] = positionals;
    if (!file || extra.length > 0) throw new VirtusError('BAD_FLAG', "image create: expected FILE [SIZE] (try 'virtus image create --help')", { exitCode: 2 });
    const opts = parseOptionList(v.options);
    const backing = v.backing ?? opts.get('backing_file');
    const backingFormat = v['backing-format'] ?? opts.get('backing_fmt');
    const format = formatFor(file, v.format, 'qcow2', 'image create -f');
    const sizeArg = sizeText ?? opts.get('size');
    const size = sizeArg !== undefined ? parseSize(sizeArg, 'image size') : undefined;
    const q = format === 'qcow2' ? qcow2Options(opts) : {};
    if (format === 'raw' && [...opts.keys()].some((k) => k !== 'size')) {
      throw new VirtusError('BAD_OPTION', `-o: raw images take no options but size (got ${[...opts.keys()].join(', ')})`, { exitCode: 2 });
    }
    if (backing !== undefined && resolve(nodeFileSystem.resolveBacking(file, backing)) === resolve(file)) {
      throw new VirtusError('BAD_BACKING', `${file}: an image cannot be its own backing file`);
    }
    const made = createImage(nodeFileSystem, file, {
      format,
      ...q,
      ...(size !== undefined ? { size } : {}),
      ...(backing !== undefined ? { backingFile: backing } : {}),
      ...(backingFormat !== undefined ? { backingFormat } : {}),
    });
    if (!v.quiet) console.log(formattingLine(file, format, size ?? made.size, q, backing, made.backingFormat));
    return 0;
  },
};

/** qemu-img create's "Formatting ..." line, with the options in its order. */
function formattingLine(file: string, format: string, size: number, q: ReturnType<typeof qcow2Options>, backing: string | undefined, backingFormat: string | null): string {
  if (format === 'raw') return `Formatting '${file}', fmt=raw size=${size}`;
  const o = qcow2Defaults({ ...q, size });
  const parts = [
    `fmt=qcow2`,
    `cluster_size=${o.clusterSize}`,
    ...(o.version === 2 ? ['compat=0.10'] : ['extended_l2=off']),
    `compression_type=${o.compressionType}`,
    `size=${size}`,
    ...(backing !== undefined ? [`backing_file=${backing}`, `backing_fmt=${backingFormat}`] : []),
    `lazy_refcounts=${o.lazyRefcounts ? 'on' : 'off'}`,
    `refcount_bits=${o.refcountBits}`,
  ];
  return `Formatting '${file}', ${parts.join(' ')}`;
}
