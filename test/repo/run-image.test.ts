/**
 * `virtus run --image`: a machine image pulled from a registry boots from the store (a
 * bare-metal HTIF program as its kernel, so the exit code proves it ran), with its
 * command line, memory and disks (a bare-metal virtio-blk driver reads and writes the disk;
 * the store's copy stays as it was), and the default guest is packed into the store once.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeDefaultGuest } from '../../src/repo/default-guest.ts';
import { ImageStore } from '../../src/repo/store.ts';
import { DEFAULT_CMDLINE } from '../../src/vmm/spec.ts';
import { buildGuest } from '../support/toolchain.ts';
import { scratch, startRegistry, virtus, type Registry } from './support.ts';

describe('repo: virtus run --image', () => {
  const s = scratch();
  let reg: Registry;
  let elf = '';
  const env = (store: string) => ({ VIRTUS_IMAGE_STORE: store, DOCKER_CONFIG: s.path('none') });

  before(async () => {
    elf = buildGuest('cli-exitcode', ['cli/exitcode.S']);
    reg = await startRegistry(s.path('registry'));
    writeFileSync(s.path('initrd'), Buffer.alloc(4096, 0x5a));
    writeFileSync(s.path('disk.img'), Buffer.alloc(1 << 20));
  });
  after(async () => {
    await reg?.stop();
    s.cleanup();
  });

  it('boots the kernel of an image pulled from a registry', async () => {
    const ref = `${reg.host}/run/exit:1`;
    const push = await virtus(['image', 'push', '-q', '--kernel', elf, '--initrd', s.path('initrd'), '--append', 'console=ttyS0 from=image', '-m', '64M', ref], env(s.path('a')));
    assert.equal(push.status, 0, push.stderr);
    const store = s.path('b');
    assert.equal((await virtus(['image', 'pull', '-q', ref], env(store))).status, 0);
    const r = await virtus(['run', '--image', ref, '--bios', 'none'], env(store));
    assert.equal(r.status, 42, r.stderr);
    // The device tree carries the image's command line and its initrd; --append wins over it.
    const dtb = s.path('image.dtb');
    assert.equal((await virtus(['run', '--image', ref, '--dtb-dump', dtb], env(store))).status, 0);
    assert.ok(readFileSync(dtb).includes('console=ttyS0 from=image'));
    assert.equal((await virtus(['run', '--image', ref, '--append', 'mine', '--dtb-dump', dtb], env(store))).status, 0);
    assert.ok(readFileSync(dtb).includes('mine') && !readFileSync(dtb).includes('from=image'));
  });

  it('pulls an image it does not have, with progress, then boots it', async () => {
    const ref = `${reg.host}/run/auto:1`;
    const push = await virtus(['image', 'push', '-q', '--kernel', elf, ref], env(s.path('auto-a')));
    assert.equal(push.status, 0, push.stderr);
    const store = s.path('auto-b');
    const r = await virtus(['run', '--image', ref, '--bios', 'none'], env(store));
    assert.equal(r.status, 42, r.stderr);
    assert.match(r.stderr, /pull/i, 'progress of the pull');
    const again = await virtus(['run', '--image', ref, '--bios', 'none'], env(store));
    assert.equal(again.status, 42, again.stderr);
    assert.doesNotMatch(again.stderr, /pull/i, 'the second run finds it in the store');
    const missing = await virtus(['run', '--image', 'nothere:1', '--bios', 'none'], env(store));
    assert.notEqual(missing.status, 0);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  });

  it("attaches the image's disk as /dev/vda over a temporary overlay; the store keeps its copy", async () => {
    const blk = buildGuest('virtio-blk', ['common/crt.S', 'virtio/blk.c']);
    const disk = Buffer.alloc(1 << 20);
    disk.write('VIRTUS-DISK-TEST');
    writeFileSync(s.path('magic.img'), disk);
    const ref = `${reg.host}/run/blk:1`;
    const store = s.path('e');
    assert.equal((await virtus(['image', 'push', '-q', '--kernel', blk, s.path('magic.img'), ref], env(store))).status, 0);
    assert.equal((await virtus(['image', 'pull', '-q', ref], env(store))).status, 0);
    /** Every file in the store that holds the disk's content. */
    const copies = () => {
      const out: Buffer[] = [];
      const walk = (d: string) => {
        for (const n of readdirSync(d)) {
          const p = join(d, n);
          if (statSync(p).isDirectory()) walk(p);
          else if (statSync(p).size === disk.length) out.push(readFileSync(p));
        }
      };
      walk(store);
      return out;
    };
    for (let run = 0; run < 2; run++) {
      const r = await virtus(['run', '--image', ref, '--bios', 'none'], env(store));
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^capacity=0x0+800$/m);
      assert.match(r.stdout, /^write_status=0x0+$/m, 'the machine may write its disk');
      assert.match(r.stdout, /virtio-blk: ok/);
      const kept = copies();
      assert.ok(kept.length >= 1, 'the store holds the disk');
      for (const c of kept) assert.ok(c.equals(disk), 'the write went to the overlay, not to the store');
    }
  });

  it('says what it cannot do: no kernel, --kernel as well', async () => {
    const store = s.path('c');
    const push = await virtus(['image', 'push', '-q', s.path('disk.img'), `${reg.host}/run/diskonly:1`], env(store));
    assert.equal(push.status, 0, push.stderr);
    assert.equal((await virtus(['image', 'pull', '-q', `${reg.host}/run/diskonly:1`], env(store))).status, 0);
    const none = await virtus(['run', '--image', `${reg.host}/run/diskonly:1`], env(store));
    assert.equal(none.status, 1);
    assert.match(none.stderr, /has no kernel layer \(it holds disk\)/);
    const both = await virtus(['run', '--image', 'x', '--kernel', elf], env(store));
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--image gives the kernel/);
    const missing = await virtus(['run', '--image', 'nothing:1'], env(store));
    assert.match(missing.stderr, /^virtus: no image 'nothing:1' in the store/);
  });

  it('the default guest is packed into the store once, as default:latest and default:<release>', async () => {
    const store = ImageStore.open(s.path('d'));
    const guest = (key: string, release: string) => ({ kernel: elf, initrd: s.path('initrd'), rootfs: s.path('disk.img'), release, dir: s.path(`guests/${key}`) });
    const notes: string[] = [];
    const first = await storeDefaultGuest(guest('6.1.0-riscv64-aaaa', '6.1.0+deb1-riscv64'), (m) => notes.push(m), store);
    assert.ok(first);
    assert.deepEqual(store.list().map((i) => i.key), ['default:6.1.0_deb1-riscv64', 'default:latest']);
    assert.equal(await storeDefaultGuest(guest('6.1.0-riscv64-aaaa', '6.1.0+deb1-riscv64'), (m) => notes.push(m), store), first);
    assert.equal(notes.filter((n) => n.startsWith('keeping')).length, 1, 'packed once');
    const second = await storeDefaultGuest(guest('6.2.0-riscv64-bbbb', '6.2.0-riscv64'), (m) => notes.push(m), store);
    assert.notEqual(second, first);
    assert.deepEqual(store.list().map((i) => [i.key, i.digest]), [['default:6.2.0-riscv64', second], ['default:latest', second]]);
    const r = await virtus(['run', '--image', 'default', '--bios', 'none'], env(store.root));
    assert.equal(r.status, 42, r.stderr);
    // The image says its disk is the root file system: the kernel is told so.
    const dtb = s.path('default.dtb');
    assert.equal((await virtus(['run', '--image', 'default', '--dtb-dump', dtb], env(store.root))).status, 0);
    assert.ok(readFileSync(dtb).toString('latin1').includes(`${DEFAULT_CMDLINE} root=/dev/vda\0`), 'the default command line, and the root disk');
  });
});
