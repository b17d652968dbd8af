/** `virtus image ls`: the machine images in the local store. */
import { shortDigest } from '../../../repo/digest.ts';
import { mb } from '../../../repo/progress.ts';
import { ImageStore } from '../../../repo/store.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';

const HELP = `usage: virtus image ls [--digests] [--json] [-q]

Lists the machine images in the local store: NAME, TAG, DIGEST (of the manifest,
shortened), SIZE (as stored, compressed) and CREATED. The store is an OCI image
layout in $XDG_DATA_HOME/virtus/images (~/.local/share/virtus/images;
VIRTUS_DATA_DIR or VIRTUS_IMAGE_STORE override it).

  --digests   show whole digests
  --json      as JSON
  -q          only the digests, one per image
  -h, --help  show this help`;

const OPTIONS = {
  digests: { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** "2026-01-31 12:34" (UTC) from an RFC 3339 time; as given when it is not one. */
function when(t: string): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t || '-' : d.toISOString().slice(0, 16).replace('T', ' ');
}

export const imageLsCommand: Command = {
  name: 'ls',
  summary: 'list the machine images in the local store',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image ls', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length > 0) throw new VirtusError('BAD_FLAG', `image ls: unexpected argument '${positionals[0]}' (try 'virtus image ls --help')`, { exitCode: 2 });
    const images = ImageStore.open().list();
    if (v.json) {
      console.log(JSON.stringify(images, null, 2));
      return 0;
    }
    if (v.quiet) {
      for (const d of new Set(images.map((i) => i.digest))) console.log(v.digests ? d : shortDigest(d));
      return 0;
    }
    const rows = [['NAME', 'TAG', 'DIGEST', 'SIZE', 'CREATED']];
    for (const i of images) rows.push([i.name, i.tag ?? '<none>', v.digests ? i.digest : shortDigest(i.digest), mb(i.size), when(i.created)]);
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) console.log(r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 2))).join(''));
    return 0;
  },
};
