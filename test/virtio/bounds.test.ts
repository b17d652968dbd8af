/**
 * What one guest request may cost the monitor: descriptor chains of gigabytes (3 x 512 MiB
 * on the console's transmitq, a 512 MiB disk read, write-zeroes over 1 GiB, rng buffers of
 * 16 MiB) are served in pieces of bounded size, a bounded amount per turn (a notification or
 * a slice boundary), and carried on at the next slice boundary. Each test drives the
 * transport as a guest kernel would (driver.ts), times every turn and watches the process's
 * resident memory, then checks that the request completes with the right bytes.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { S_OK, T_IN, T_WRITE_ZEROES, VirtioBlk } from '../../src/devices/virtio/blk/blk.ts';
import { VirtioConsole } from '../../src/devices/virtio/console/console.ts';
import { REG } from '../../src/devices/virtio/mmio.ts';
import { TURN_BYTES } from '../../src/devices/virtio/types.ts';
import { VirtioRng } from '../../src/devices/virtio/rng/rng.ts';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { RawBackend } from '../../src/storage/raw.ts';
import { Driver, NEXT, WRITE } from './driver.ts';

const MiB = 1 << 20;
/**
 * A turn may take this long at most: it moves a few MiB, which takes milliseconds; the margin
 * is for a loaded 2-core machine (an unbounded turn here takes seconds).
 */
const TURN_MS = 500;
/** Resident memory a request may add, beyond guest RAM it writes. */
const RSS_SLACK = 96 * MiB;

const dir = mkdtempSync(join(tmpdir(), 'virtus-bounds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs one turn `f` and checks what it cost: its time, and how far the device's byte counter
 * `counter` moved (at most a turn's worth, plus one rng request).
 */
function turn(d: Driver, counter: string, what: string, f: () => void): void {
  const before = d.mmio.counters()[counter]!;
  const t = performance.now();
  f();
  const ms = performance.now() - t;
  const moved = d.mmio.counters()[counter]! - before;
  assert.ok(moved <= TURN_BYTES + 64 * 1024, `${what} moved ${moved} bytes`);
  assert.ok(ms < TURN_MS, `${what} took ${ms.toFixed(0)} ms`);
}

/** Slice boundaries until `done()` (each one a turn, checked); returns how many it took. */
function pump(d: Driver, counter: string, done: () => boolean, max = 100_000): number {
  let n = 0;
  while (!done()) {
    assert.ok(++n <= max, `not done after ${max} slice boundaries`);
    turn(d, counter, 'a slice boundary', () => d.mmio.poll());
  }
  return n;
}

/** Writes one descriptor chain of (addr, len, flags) at the start of the descriptor table and publishes it. */
function chain(d: Driver, q: number, descs: Array<[number, number, number]>): void {
  const ring = d.rings[q]!;
  descs.forEach(([addr, len, flags], i) => d.putDesc(ring.desc, i, addr, len, flags | (i < descs.length - 1 ? NEXT : 0), i + 1));
  d.publish(q, 0);
}

describe('a request is served in bounded pieces and turns', () => {
  it('console: a transmit chain of 3 x 512 MiB streams out in chunks, at bounded memory', () => {
    let bytes = 0;
    let largest = 0;
    let peak = 0;
    const con = new VirtioConsole({
      output: (b) => {
        bytes += b.length;
        largest = Math.max(largest, b.length);
        if ((bytes & (64 * MiB - 1)) < b.length) peak = Math.max(peak, process.memoryUsage().rss);
      },
    });
    const d = new Driver(con, 513 * MiB);
    d.init();
    const buf = d.alloc(512 * MiB, 4096);
    // The three descriptors name the same 512 MiB: the guest needs no more RAM than that.
    chain(d, 1, [[buf, 512 * MiB, 0], [buf, 512 * MiB, 0], [buf, 512 * MiB, 0]]);
    const base = process.memoryUsage().rss;
    turn(d, 'bytes out', 'the notification', () => d.kick(1));
    const turns = pump(d, 'bytes out', () => d.used(1).length > 0);
    assert.equal(bytes, 3 * 512 * MiB);
    assert.ok(largest <= MiB, `a chunk of ${largest} bytes`);
    assert.ok(turns > 1, 'the chain took more than one turn');
    assert.ok(peak - base < RSS_SLACK, `resident memory grew by ${((peak - base) / MiB).toFixed(0)} MiB`);
  });

  it('blk: a 512 MiB read goes from the backend straight into guest RAM, a bounded amount per turn', () => {
    const path = join(dir, 'sparse.img');
    writeFileSync(path, '');
    truncateSync(path, 512 * MiB);
    const fd = openSync(path, 'r+');
    writeSync(fd, 'VIRTUS', 384 * MiB);
    closeSync(fd);
    const blk = new VirtioBlk(new RawBackend(nodeFileSystem.open(path, { writable: true })), { name: 'virtio-blk0' });
    const d = new Driver(blk, 136 * MiB);
    d.init();
    const hdr = d.alloc(16);
    d.ram.load(hdr, Uint8Array.of(T_IN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    const buf = d.alloc(128 * MiB, 4096);
    const status = d.alloc(1);
    d.ram.load(status, Uint8Array.of(0xee));
    // 4 descriptors over the same 128 MiB: 512 MiB from sector 0.
    chain(d, 0, [[hdr, 16, 0], ...Array.from({ length: 4 }, (): [number, number, number] => [buf, 128 * MiB, WRITE]), [status, 1, WRITE]]);
    const base = process.memoryUsage().rss;
    turn(d, 'bytes read', 'the notification', () => d.kick(0));
    const turns = pump(d, 'bytes read', () => d.ram.read(status, 1)[0] !== 0xee);
    assert.equal(d.ram.read(status, 1)[0], S_OK);
    assert.deepEqual(d.used(0), [{ id: 0, len: 512 * MiB + 1 }]);
    assert.equal(new TextDecoder().decode(d.ram.read(buf, 6)), 'VIRTUS', 'the last 128 MiB went to the last descriptor');
    assert.ok(turns > 1);
    // Guest RAM the read filled is resident now; nothing else may be.
    assert.ok(process.memoryUsage().rss - base < 128 * MiB + RSS_SLACK);
    blk.backend.close();
  });

  it('blk: write-zeroes of 32 segments over 1 GiB in all is done a bounded amount per turn', () => {
    const path = join(dir, 'zeroes.img');
    writeFileSync(path, new Uint8Array(32 * MiB).fill(0x5a));
    const blk = new VirtioBlk(new RawBackend(nodeFileSystem.open(path, { writable: true })), { name: 'virtio-blk0' });
    const d = new Driver(blk);
    d.init();
    const req = new Uint8Array(16 + 32 * 16);
    const v = new DataView(req.buffer);
    v.setUint32(0, T_WRITE_ZEROES, true);
    for (let i = 0; i < 32; i++) v.setUint32(16 + 16 * i + 8, (32 * MiB) / 512, true);
    const r = d.alloc(req.length);
    d.ram.load(r, req);
    const status = d.alloc(1);
    d.ram.load(status, Uint8Array.of(0xee));
    chain(d, 0, [[r, req.length, 0], [status, 1, WRITE]]);
    turn(d, 'bytes zeroed', 'the notification', () => d.kick(0));
    assert.ok(pump(d, 'bytes zeroed', () => d.ram.read(status, 1)[0] !== 0xee) > 1);
    assert.equal(d.ram.read(status, 1)[0], S_OK);
    const back = new Uint8Array(32 * MiB);
    blk.backend.read(0, back);
    assert.ok(back.every((b) => b === 0));
    blk.backend.close();
  });

  it('rng: a full queue of 16 MiB buffers is served a bounded amount per turn', () => {
    const d = new Driver(new VirtioRng({ seed: 7 }), 20 * MiB);
    d.init();
    const buf = d.alloc(16 * MiB, 4096);
    const ring = d.rings[0]!;
    d.putDesc(ring.desc, 0, buf, 16 * MiB, WRITE);
    for (let i = 0; i < ring.size; i++) d.publish(0, 0);
    turn(d, 'bytes served', 'the notification', () => d.kick(0));
    let used = d.used(0);
    pump(d, 'bytes served', () => (used = [...used, ...d.used(0)]).length === ring.size);
    assert.ok(used.every((u) => u.len > 0 && u.len <= 16 * MiB));
  });

  it('console: output goes no faster than the host takes it', () => {
    let room = 0;
    let bytes = 0;
    const con = new VirtioConsole({
      output: (b) => {
        assert.ok(b.length <= room, `${b.length} bytes given, ${room} taken`);
        room -= b.length;
        bytes += b.length;
      },
      room: () => room,
    });
    const d = new Driver(con, 5 * MiB);
    d.init();
    const buf = d.alloc(4 * MiB, 4096);
    d.ram.load(buf + 4 * MiB - 3, new TextEncoder().encode('end'));
    chain(d, 1, [[buf, 4 * MiB, 0]]);
    d.kick(1);
    assert.equal(bytes, 0, 'the host took nothing yet');
    let turns = 0;
    while (d.used(1).length === 0) {
      room = 64 * 1024; // what the host's output drained since the last slice boundary
      d.mmio.poll();
      assert.ok(++turns <= 64, `not done after ${turns} turns`);
    }
    assert.equal(bytes, 4 * MiB);
    assert.equal(turns, 64);
  });

  it('a driver that notifies again and again gets no more than a turn of work between slice boundaries', () => {
    let bytes = 0;
    const d = new Driver(new VirtioConsole({ output: (b) => (bytes += b.length) }), 65 * MiB);
    d.init();
    const buf = d.alloc(64 * MiB, 4096);
    chain(d, 1, [[buf, 64 * MiB, 0]]);
    d.kick(1);
    const first = bytes;
    for (let i = 0; i < 1000; i++) d.w(REG.QUEUE_NOTIFY, 1);
    assert.equal(bytes, first, 'notifications after the turn was spent do nothing until the slice ends');
    d.mmio.poll();
    assert.ok(bytes > first);
  });
});
