/**
 * NIC descriptions from QEMU 7.2's spelling (the keys of qemu-options.hx for -nic/-netdev
 * user, stream and dgram), the stream framing of net/stream.c, and their refusals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeStream, StreamDecoder, STREAM_MAX_FRAME } from '../../src/net/framing.ts';
import { parseNetdevs, parseNic } from '../../src/net/nic.ts';
import { isVirtusError } from '../../src/util/errors.ts';

describe('NIC descriptions', () => {
  it('parses user with hostfwd, restrict and a MAC, as plain data', () => {
    const d = parseNic('user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-10.0.2.15:53,restrict=on,mac=52:54:00:ab:cd:ef');
    assert.deepEqual(d, {
      mac: '52:54:00:ab:cd:ef',
      backend: {
        type: 'user', net: '10.0.2.0', prefix: 24, host: '10.0.2.2', dns: '10.0.2.3', dhcpStart: '10.0.2.15', restrict: true, hostname: '', resolver: '', wisp: '',
        hostfwd: [
          { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestAddr: '', guestPort: 80 },
          { proto: 'udp', hostAddr: '', hostPort: 5353, guestAddr: '10.0.2.15', guestPort: 53 },
        ],
      },
    });
    assert.deepEqual(JSON.parse(JSON.stringify(d)), d);
    assert.equal(parseNic('user').mac, '52:54:00:12:34:56', "QEMU's first NIC address");
  });

  it("parses stream and dgram with QEMU's addr.*, local.* and remote.* keys, and switch=", () => {
    assert.deepEqual(parseNic('stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=1234', { random: () => 1 }), {
      mac: '52:54:00:01:01:01', backend: { type: 'stream', server: true, addr: { type: 'inet', host: '127.0.0.1', port: 1234 } },
    });
    assert.deepEqual(parseNic('stream,addr.type=unix,addr.path=/tmp/s').backend, { type: 'stream', server: false, addr: { type: 'unix', path: '/tmp/s' } });
    assert.deepEqual(parseNic('dgram,remote.type=inet,remote.host=127.0.0.1,remote.port=5,local.type=inet,local.host=127.0.0.1,local.port=6').backend, {
      type: 'dgram', local: { type: 'inet', host: '127.0.0.1', port: 6 }, remote: { type: 'inet', host: '127.0.0.1', port: 5 },
    });
    assert.deepEqual(parseNic('switch=unix:/run/sw').backend, { type: 'stream', server: false, addr: { type: 'unix', path: '/run/sw' } });
    assert.deepEqual(parseNic('switch=tcp:127.0.0.1:99').backend, { type: 'stream', server: false, addr: { type: 'inet', host: '127.0.0.1', port: 99 } });
  });

  it('takes the MAC from -device virtio-net-device,netdev=ID', () => {
    const nics = parseNetdevs(['stream,id=n0,addr.type=unix,addr.path=/x'], ['virtio-net-device,netdev=n0,mac=52:54:00:00:00:02']);
    assert.equal(nics[0]!.mac, '52:54:00:00:00:02');
    assert.throws(() => parseNetdevs(['user,id=n0'], ['virtio-net-device,netdev=n9']), /no --netdev with id=n9/);
  });

  it('refuses bad text with one line naming the key', () => {
    const bad: Array<[string, RegExp]> = [
      ['tap', /unknown backend 'tap'/],
      ['user,hostfwd=tcp:1.2.3:80-:80', /not an IPv4 address/],
      ['user,hostfwd=tcp::99999-:80', /not a port number/],
      ['user,restrict=maybe', /expected on or off/],
      ['user,bogus=1', /unknown key 'bogus'/],
      ['user,mac=01:00:00:00:00:01', /multicast/],
      ['stream,addr.type=inet,addr.host=h', /needs addr.host and addr.port/],
      ['stream', /addr.type=inet\|unix is required/],
      ['dgram', /give remote/],
      ['switch=udp:x', /not unix:PATH or tcp:HOST:PORT/],
      ['stream,hostfwd=tcp::1-:2,addr.type=unix,addr.path=/x', /hostfwd belongs to the user backend/],
    ];
    for (const [text, re] of bad) {
      assert.throws(() => parseNic(text), (e) => isVirtusError(e, 'BAD_NIC') && re.test((e as Error).message) && !(e as Error).message.includes('\n'), text);
    }
  });
});

describe('stream framing', () => {
  it('splits frames however the stream is chunked', () => {
    const frames = [new Uint8Array(60).fill(1), new Uint8Array(1514).fill(2), new Uint8Array(14).fill(3)];
    const bytes = new Uint8Array(frames.reduce((n, f) => n + 4 + f.length, 0));
    let at = 0;
    for (const f of frames) {
      bytes.set(encodeStream(f), at);
      at += 4 + f.length;
    }
    assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 0, 60], 'big-endian length');
    for (const step of [1, 3, 7, 1000, bytes.length]) {
      const d = new StreamDecoder();
      const got: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += step) got.push(...d.push(bytes.subarray(i, i + step)));
      assert.deepEqual(got, frames, `chunks of ${step}`);
    }
  });

  it('refuses a length QEMU would refuse', () => {
    for (const len of [0, STREAM_MAX_FRAME + 1, 0xffffffff]) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, len);
      assert.throws(() => new StreamDecoder().push(b), (e) => isVirtusError(e, 'NET_STREAM'));
    }
  });
});
