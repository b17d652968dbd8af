/** `virtus image rm`: untag images in the local store and delete the blobs nothing needs. */
import { shortDigest } from '../../../repo/digest.ts';
import { mb } from '../../../repo/progress.ts';
import { ImageStore } from '../../../repo/store.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';

const HELP = `usage: virtus image rm [-f] [-q] IMAGE...

Removes the names IMAGE (NAME[:TAG], NAME@DIGEST, or a digest: all its names)
from the local store, then deletes every blob that no name reaches any more
(garbage collection).

An image a running 'virtus run --image' booted is not removed unless -f; even
then its blobs stay until that machine stops.

  -f, --force  remove an image in use, or every name of a digest named twice
  -q           print nothing
  -h, --help   show this help`;

const OPTIONS = {
  force: { type: 'boolean', short: 'f' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const imageRmCommand: Command = {
  name: 'rm',
  summary: 'remove images from the local store (and the blobs no image needs)',
  async run(argv) {
    const { values: v, positionals } = parseFlags('image rm', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length === 0) throw new VirtusError('BAD_FLAG', "image rm: expected IMAGE... (try 'virtus image rm --help')", { exitCode: 2 });
    const store = ImageStore.open();
    const say = (s: string) => v.quiet || console.log(s);
    // Resolve everything first: a bad name removes nothing.
    const targets = positionals.map((text) => ({ text, ...store.resolve(text) }));
    const holds = store.holds();
    const remaining = new Map(store.list().map((i) => [i.key, i.digest]));
    for (const t of targets) {
      if (t.byDigest && t.keys.length > 1 && !v.force) {
        throw new VirtusError('IMAGE_TAGGED', `image rm: ${shortDigest(t.digest)} has ${t.keys.length} names (${t.keys.join(', ')}); remove them one by one, or all with -f`);
      }
      for (const k of t.keys) remaining.delete(k);
      const user = holds.get(t.digest);
      if (user && ![...remaining.values()].includes(t.digest) && !v.force) {
        throw new VirtusError('IMAGE_IN_USE', `image rm: ${t.text} is in use by ${user.what} (pid ${user.pid}); stop it first, or use -f (its blobs stay until it stops)`);
      }
    }
    for (const k of await store.untag(targets.flatMap((t) => t.keys))) say(`untagged: ${k}`);
    const { deleted, freed } = await store.collect();
    if (deleted.length) say(`deleted: ${deleted.length} blob(s), ${mb(freed)} freed`);
    return 0;
  },
};
