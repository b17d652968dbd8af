/**
 * Images of formats virtus does not read (VMDK, VDI, VHD, VHDX, QED, Parallels, LUKS), made
 * by qemu-img: qemu-img detects each by its magic, and so does virtus, which names the format
 * and refuses in one line (it reported them as raw, and `convert` copied the container's
 * bytes with exit 0). Saying format=raw still uses the bytes as they are, as QEMU does.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { probeDisk } from '../../src/repo/pack.ts';
import { openDrive, parseDriveSpec } from '../../src/storage/drive.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { runVirtus } from '../support/toolchain.ts';
import { qemu, scratch } from './support.ts';

/** qemu-img's format name, how virtus names it, extra qemu-img create arguments. */
const FORMATS: [string, RegExp, string[]][] = [
  ['vmdk', /VMDK/, []],
  ['vdi', /VDI/, []],
  ['vpc', /VHD/, []],
  ['vhdx', /VHDX/, []],
  ['qed', /QED/, []],
  ['parallels', /Parallels/, []],
  ['luks', /LUKS/, ['--object', 'secret,id=sec0,data=test', '-o', 'key-secret=sec0']],
];

describe('foreign image formats', () => {
  const s = scratch();
  before(() => {
    for (const [fmt, , extra] of FORMATS) {
      // LUKS creation times its key derivation and sometimes fails with "Unable to get
      // accurate CPU usage" on a busy machine: try again.
      for (let tries = 1; ; tries++) {
        try {
          qemu('qemu-img', ['create', ...extra, '-f', fmt, s.path(`disk.${fmt}`), '4M']);
          break;
        } catch (e) {
          if (tries === 5 || !/accurate CPU usage/.test((e as Error).message)) throw e;
        }
      }
    }
  });
  after(() => s.cleanup());

  it('qemu-img detects each format; virtus image info and convert refuse it by name, in one line', () => {
    for (const [fmt, name] of FORMATS) {
      const path = s.path(`disk.${fmt}`);
      assert.match(qemu('qemu-img', ['info', path]), new RegExp(`^file format: ${fmt}$`, 'm'));
      const info = runVirtus(['image', 'info', path]);
      assert.equal(info.status, 1, `${fmt}: ${info.stdout}`);
      assert.match(info.stderr, new RegExp(`^virtus: ${path} is an? ${name.source}.* image, which virtus does not read; convert it .*\\n$`));
      const out = s.path(`out-${fmt}.raw`);
      const convert = runVirtus(['image', 'convert', path, out]);
      assert.equal(convert.status, 1, `${fmt}: convert exited ${convert.status}`);
      assert.match(convert.stderr, name);
      assert.equal(convert.stderr.split('\n').length, 2);
      assert.ok(!existsSync(out), 'no output is made');
      // Said to be raw, it is raw: the file's bytes.
      const raw = runVirtus(['image', 'info', '-f', 'raw', path]);
      assert.equal(raw.status, 0, raw.stderr);
      assert.match(raw.stdout, /^file format: raw$/m);
    }
  });

  it('--drive format=raw uses the bytes as they are; without it the drive is refused; image push refuses the disk', () => {
    for (const [fmt, name] of FORMATS) {
      const path = s.path(`disk.${fmt}`);
      const o = { absolute: (p: string) => p, temporaryPath: () => s.path('tmp.qcow2') };
      const drive = openDrive(nodeFileSystem, parseDriveSpec(`file=${path},format=raw,readonly=on`), o);
      const bytes = readFileSync(path);
      const buf = new Uint8Array(Math.min(bytes.length, 65536));
      drive.backend.read(0, buf);
      assert.deepEqual(Buffer.from(buf), bytes.subarray(0, buf.length));
      assert.equal(drive.backend.size, bytes.length);
      drive.close();
      assert.throws(() => openDrive(nodeFileSystem, parseDriveSpec(`file=${path}`), o), (e) => isVirtusError(e, 'FOREIGN_FORMAT') && name.test((e as Error).message));
      assert.throws(() => probeDisk(path), (e) => isVirtusError(e, 'FOREIGN_FORMAT') && name.test((e as Error).message));
    }
  });
});
