/**
 * virtio-blk over a block backend (virtio 1.2 §5.2): configuration space, read, write,
 * flush reaching the host file, get-ID, discard and write-zeroes, read-only drives, I/O
 * errors for bad sectors and failing backends, and protocol violations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BLK_F_DISCARD, BLK_F_FLUSH, BLK_F_RO, BLK_F_WRITE_ZEROES, S_IOERR, S_OK, S_UNSUPP, T_DISCARD, T_FLUSH, T_GET_ID, T_IN, T_OUT,
  T_WRITE_ZEROES, VirtioBlk,
} from '../../src/devices/virtio/blk/blk.ts';
import { REG } from '../../src/devices/virtio/mmio.ts';
import { STATUS_DEVICE_NEEDS_RESET } from '../../src/devices/virtio/types.ts';
import { diskIdentity } from '../../src/storage/identity.ts';
import { MemoryHostFile } from '../../src/storage/host-file.ts';
import { RawBackend } from '../../src/storage/raw.ts';
import { VirtusError } from '../../src/util/errors.ts';
import { Driver } from './driver.ts';

const SECTOR = 512;

function header(type: number, sector: number): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setBigUint64(8, BigInt(sector), true);
  return h;
}

function segment(sector: number, count: number, flags = 0): Uint8Array {
  const s = new Uint8Array(16);
  const v = new DataView(s.buffer);
  v.setBigUint64(0, BigInt(sector), true);
  v.setUint32(8, count, true);
  v.setUint32(12, flags, true);
  return s;
}

function setup(o: { readOnly?: boolean; sectors?: number; serial?: string } = {}) {
  const image = new Uint8Array((o.sectors ?? 64) * SECTOR + 100); // a partial last sector is not addressable
  for (let i = 0; i < image.length; i++) image[i] = (i * 7 + (i >> 9)) & 0xff;
  const file = new MemoryHostFile('disk.img', image, o.readOnly);
  const backend = new RawBackend(file, { readOnly: o.readOnly ?? false });
  const ioErrors: string[] = [];
  const blk = new VirtioBlk(backend, { name: 'virtio-blk0', serial: o.serial ?? 'SERIAL-1', onIoError: (_d, m) => ioErrors.push(m) });
  const d = new Driver(blk);
  d.init({ features: BLK_F_FLUSH | BLK_F_DISCARD | BLK_F_WRITE_ZEROES | BLK_F_RO });
  /** Submits a request; returns its status, the data read and the used length. */
  const req = (type: number, sector: number, o2: { out?: Uint8Array; inLen?: number; indirect?: boolean } = {}) => {
    const bufs = [{ data: header(type, sector) }, ...(o2.out ? [{ data: o2.out }] : []), ...(o2.inLen ? [{ room: o2.inLen }] : []), { room: 1 }];
    const r = d.submit(0, bufs, { indirect: o2.indirect ?? false });
    const used = d.used(0);
    assert.equal(used.length, 1);
    const st = r.bufs[r.bufs.length - 1]!;
    const data = o2.inLen ? d.read(r.bufs[r.bufs.length - 2]!.addr, o2.inLen) : new Uint8Array(0);
    return { status: d.read(st.addr, 1)[0]!, data, len: used[0]!.len };
  };
  return { d, blk, file, image, req, ioErrors };
}

describe('virtio-blk', () => {
  it('presents capacity, seg_max, blk_size and the discard limits; RO only for a read-only drive', () => {
    const { d, blk } = setup();
    assert.equal(d.r(REG.DEVICE_ID), 2);
    assert.equal(d.r(REG.CONFIG) + d.r(REG.CONFIG + 4) * 2 ** 32, 64);
    assert.equal(d.r(REG.CONFIG + 12), 254, 'seg_max');
    assert.equal(d.r(REG.CONFIG + 20), 512, 'blk_size');
    assert.equal(d.r(REG.CONFIG + 40), 32, 'max_discard_seg');
    assert.equal(blk.features & BLK_F_RO, 0n);
    assert.equal(setup({ readOnly: true }).blk.features & BLK_F_RO, BLK_F_RO);
  });

  it('reads sectors into guest memory, through direct and indirect chains', () => {
    const { req, image } = setup();
    const a = req(T_IN, 3, { inLen: 2 * SECTOR });
    assert.equal(a.status, S_OK);
    assert.equal(a.len, 2 * SECTOR + 1);
    assert.deepEqual(a.data, image.subarray(3 * SECTOR, 5 * SECTOR));
    const b = req(T_IN, 63, { inLen: SECTOR, indirect: true });
    assert.deepEqual(b.data, image.subarray(63 * SECTOR, 64 * SECTOR));
  });

  it('writes sectors to the image, and a flush reaches the host file', () => {
    const { req, file, blk } = setup();
    const data = new Uint8Array(SECTOR * 3).fill(0xab);
    assert.equal(req(T_OUT, 10, { out: data }).status, S_OK);
    assert.deepEqual(file.contents().subarray(10 * SECTOR, 13 * SECTOR), data);
    const before = file.flushes;
    assert.equal(req(T_FLUSH, 0).status, S_OK);
    assert.equal(file.flushes, before + 1, 'the flush is a host flush before the request completes');
    assert.equal(blk.counters()['bytes written'], 3 * SECTOR);
  });

  it('answers GET_ID with the serial, NUL-padded to 20 bytes', () => {
    const { req } = setup({ serial: 'disk-42' });
    const r = req(T_GET_ID, 0, { inLen: 20 });
    assert.equal(r.status, S_OK);
    assert.equal(new TextDecoder().decode(r.data), 'disk-42' + '\0'.repeat(13));
  });

  it('discards and writes zeroes by segments; refuses unmap on discard and unknown flags', () => {
    const { req, file } = setup();
    assert.equal(req(T_WRITE_ZEROES, 0, { out: new Uint8Array([...segment(4, 2), ...segment(8, 1, 1)]) }).status, S_OK);
    const c = file.contents();
    assert.ok(c.subarray(4 * SECTOR, 6 * SECTOR).every((b) => b === 0));
    assert.ok(c.subarray(8 * SECTOR, 9 * SECTOR).every((b) => b === 0));
    assert.notEqual(c[6 * SECTOR], 0);
    assert.equal(req(T_DISCARD, 0, { out: segment(1, 1) }).status, S_OK);
    assert.equal(req(T_DISCARD, 0, { out: segment(1, 1, 1) }).status, S_UNSUPP);
    assert.equal(req(T_WRITE_ZEROES, 0, { out: segment(1, 1, 2) }).status, S_UNSUPP);
    assert.equal(req(T_WRITE_ZEROES, 0, { out: segment(63, 2) }).status, S_IOERR, 'beyond the disk');
  });

  it('gives I/O errors for sectors beyond the disk, partial sectors, and unknown types as UNSUPP', () => {
    const { req } = setup();
    assert.equal(req(T_IN, 64, { inLen: SECTOR }).status, S_IOERR, 'the partial 65th sector is not addressable');
    assert.equal(req(T_IN, 63, { inLen: 2 * SECTOR }).status, S_IOERR);
    assert.equal(req(T_IN, 2 ** 50, { inLen: SECTOR }).status, S_IOERR);
    assert.equal(req(T_OUT, 0, { out: new Uint8Array(100) }).status, S_IOERR);
    assert.equal(req(99, 0).status, S_UNSUPP);
  });

  it('a read-only drive fails writes, discards and write-zeroes with IOERR and leaves the image alone', () => {
    const { req, file, image } = setup({ readOnly: true });
    assert.equal(req(T_OUT, 0, { out: new Uint8Array(SECTOR).fill(1) }).status, S_IOERR);
    assert.equal(req(T_WRITE_ZEROES, 0, { out: segment(0, 1) }).status, S_IOERR);
    assert.equal(req(T_DISCARD, 0, { out: segment(0, 1) }).status, S_IOERR);
    assert.equal(req(T_FLUSH, 0).status, S_OK);
    assert.deepEqual(file.contents(), image);
    assert.equal(req(T_IN, 0, { inLen: SECTOR }).status, S_OK);
  });

  it('a failing backend is an I/O error for the guest and a message for the host', () => {
    const { req, file, ioErrors } = setup();
    file.read = () => {
      throw new VirtusError('IO', 'disk.img: input/output error');
    };
    assert.equal(req(T_IN, 0, { inLen: SECTOR }).status, S_IOERR);
    assert.deepEqual(ioErrors, ['disk.img: input/output error']);
  });

  it('a request without a header or status byte breaks the device (DEVICE_NEEDS_RESET)', () => {
    const { d } = setup();
    d.submit(0, [{ data: new Uint8Array(8) }, { room: 1 }]);
    assert.ok(d.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET);
    assert.match(d.errors[0]!, /no 16-byte header/);
    const e = setup();
    e.d.submit(0, [{ data: header(T_IN, 0) }]);
    assert.ok(e.d.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET);
  });

  it("the disk's identity follows the guest's writes to its first MiB, and older snapshots' identities still match", () => {
    const { blk, req, file } = setup({ sectors: 4096 }); // 2 MiB and a partial sector
    const id = () => blk.storage.identity();
    const fresh = () => diskIdentity(blk.backend);
    const first = id();
    assert.match(first, /^2097252:w[0-9a-f]{16}$/);
    // Reads, flushes and writes beyond the first MiB leave it; each write below changes it.
    req(T_IN, 0, { inLen: SECTOR });
    req(T_FLUSH, 0);
    req(T_OUT, 2048, { out: new Uint8Array(SECTOR).fill(1) });
    assert.equal(id(), first);
    assert.equal(fresh(), first);
    const seen = new Set([first]);
    const changes: Array<[string, () => void]> = [
      ['write', () => req(T_OUT, 2047, { out: new Uint8Array(SECTOR).fill(2) })],
      ['write-zeroes', () => req(T_WRITE_ZEROES, 0, { out: segment(5, 1) })],
    ];
    for (const [what, change] of changes) {
      change();
      assert.equal(id(), fresh(), `after a ${what} in the first MiB: the identity of what the disk holds`);
      assert.ok(!seen.has(id()), `a ${what} in the first MiB changes the identity`);
      seen.add(id());
    }
    // A discard may leave the bytes (a raw file that cannot punch holes): the identity is what they are.
    req(T_DISCARD, 0, { out: segment(9, 1) });
    assert.equal(id(), fresh(), 'after a discard in the first MiB');
    // An identity in the form earlier versions wrote (FNV-1a a byte at a time, two lanes).
    let h1 = 0x811c9dc5;
    const bytes = file.contents();
    let h2 = 0x01000193 ^ bytes.length;
    for (const b of bytes.subarray(0, 1 << 20)) {
      h1 = Math.imul(h1 ^ b, 0x01000193);
      h2 = Math.imul(h2 ^ b, 0x01001193);
    }
    const old = `${bytes.length}:${(h1 >>> 0).toString(16).padStart(8, '0')}${(h2 >>> 0).toString(16).padStart(8, '0')}`;
    assert.ok(blk.storage.hasIdentity(old));
    assert.ok(blk.storage.hasIdentity(id()));
    assert.ok(!blk.storage.hasIdentity(first));
    assert.ok(!blk.storage.hasIdentity(`${bytes.length}:${'0'.repeat(16)}`));
  });
});
