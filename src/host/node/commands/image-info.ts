/** `virtus image info`: what an image is, laid out as `qemu-img info` lays it out. */
import type { BlockBackend } from '../../../storage/backend.ts';
import { openImage, parseFormat } from '../../../storage/open.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';
import { nodeFileSystem } from '../host-file.ts';
import { humanSize } from './image-util.ts';

const HELP = `usage: virtus image info [-f FMT] [-U] [--backing-chain] [--output human|json] FILE

Shows an image's format, virtual size, size on disk, backing file and format details.

  -f FMT            insist on a format (qcow2 or raw) instead of detecting it
  --backing-chain   show every image of the backing chain, top first
  --output FORMAT   human (default) or json (qemu-img's JSON field names)
  -U, --force-share read the image even while another process writes it (its lock
                    lets others write; what is read may be changing)
  -h, --help        show this help`;

const OPTIONS = {
  format: { type: 'string', short: 'f' },
  'backing-chain': { type: 'boolean' },
  output: { type: 'string' },
  'force-share': { type: 'boolean', short: 'U' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Json = Record<string, unknown>;

/** One layer's info in qemu-img's JSON shape. */
function layerJson(b: BlockBackend): Json {
  const i = b.info();
  const j: Json = { 'virtual-size': i.virtualSize, filename: b.name, format: i.format };
  if (i.clusterSize !== undefined) j['cluster-size'] = i.clusterSize;
  if (i.actualSize !== undefined) j['actual-size'] = i.actualSize;
  if (i.backingFile !== undefined) {
    j['backing-filename'] = i.backingFile;
    j['full-backing-filename'] = nodeFileSystem.resolveBacking(b.name, i.backingFile);
    if (i.backingFormat !== undefined) j['backing-filename-format'] = i.backingFormat;
  }
  if (i.qcow2) {
    const q = i.qcow2;
    const data: Json = { compat: q.compat, 'compression-type': q.compressionType };
    if (q.compat !== '0.10') Object.assign(data, { 'lazy-refcounts': q.lazyRefcounts });
    data['refcount-bits'] = q.refcountBits;
    if (q.compat !== '0.10') Object.assign(data, { corrupt: q.corrupt, 'extended-l2': q.extendedL2 });
    j['format-specific'] = { type: 'qcow2', data };
  }
  j['dirty-flag'] = i.qcow2?.dirty ?? false;
  return j;
}

/** One layer as qemu-img's human-readable text. */
function layerText(b: BlockBackend): string {
  const i = b.info();
  const lines = [
    `image: ${b.name}`,
    `file format: ${i.format}`,
    `virtual size: ${humanSize(i.virtualSize)} (${i.virtualSize} bytes)`,
    `disk size: ${i.actualSize !== undefined ? humanSize(i.actualSize) : 'unavailable'}`,
  ];
  if (i.clusterSize !== undefined) lines.push(`cluster_size: ${i.clusterSize}`);
  if (i.backingFile !== undefined) {
    const full = nodeFileSystem.resolveBacking(b.name, i.backingFile);
    const actual = full !== i.backingFile ? ` (actual path: ${full})` : '';
    lines.push(`backing file: ${i.backingFile}${actual}`);
    if (i.backingFormat !== undefined) lines.push(`backing file format: ${i.backingFormat}`);
  }
  if (i.qcow2) {
    const q = i.qcow2;
    lines.push('Format specific information:', `    compat: ${q.compat}`, `    compression type: ${q.compressionType}`);
    if (q.compat !== '0.10') lines.push(`    lazy refcounts: ${q.lazyRefcounts}`);
    lines.push(`    refcount bits: ${q.refcountBits}`);
    if (q.compat !== '0.10') lines.push(`    corrupt: ${q.corrupt}`, `    extended l2: ${q.extendedL2}`);
    if (q.dirty) lines.push('    dirty: true');
    if (q.snapshots > 0) lines.splice(lines.indexOf('Format specific information:'), 0, `snapshots: ${q.snapshots} (not shown)`);
  }
  return lines.join('\n');
}

export const imageInfoCommand: Command = {
  name: 'info',
  summary: 'show an image\'s format, sizes and backing chain',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image info', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 1) throw new VirtusError('BAD_FLAG', "image info: expected one FILE (try 'virtus image info --help')", { exitCode: 2 });
    const output = v.output ?? 'human';
    if (output !== 'human' && output !== 'json') throw new VirtusError('BAD_FLAG', `image info: --output must be human or json, not '${output}'`, { exitCode: 2 });
    const format = v.format !== undefined ? parseFormat(v.format, 'image info -f') : undefined;
    const top = openImage(nodeFileSystem, positionals[0]!, { readOnly: true, noBacking: !v['backing-chain'], forceShare: v['force-share'] ?? false, ...(format ? { format } : {}) });
    try {
      const layers: BlockBackend[] = [];
      for (let b: BlockBackend | null = top; b; b = v['backing-chain'] ? b.backing : null) layers.push(b);
      if (output === 'json') {
        const docs = layers.map(layerJson);
        console.log(JSON.stringify(v['backing-chain'] ? docs : docs[0], null, 4));
      } else {
        console.log(layers.map(layerText).join('\n\n'));
      }
    } finally {
      top.close();
    }
    return 0;
  },
};
