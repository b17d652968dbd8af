/**
 * The `user` NAT with the default guest on virtus, against real references: the guest's own
 * busybox tools (udhcpc, ping, wget, nslookup, httpd, nc) talking to servers this test starts
 * on the host's loopback (HTTP, DNS, raw TCP) and Node's fetch talking to the guest's httpd
 * through hostfwd. Contents are compared by SHA-256 on both sides.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { NET_MARKERS } from '../../src/host/node/guest/network.ts';
import { Guest } from '../support/guest.ts';
import { dnsServer, freePort, httpServer, pattern, sha256 } from './support.ts';

const closers: Array<() => void> = [];
before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
});
after(() => {
  Guest.killAll();
  for (const c of closers) c();
});

/** A TCP server that takes exactly `n` bytes from the first client, then closes; resolves with their hash. */
async function sink(n: number): Promise<{ port: number; done: Promise<string> }> {
  let resolve!: (h: string) => void;
  const done = new Promise<string>((r) => (resolve = r));
  const srv: Server = createServer((s) => {
    const chunks: Buffer[] = [];
    let got = 0;
    s.on('data', (b: Buffer) => {
      chunks.push(b);
      got += b.length;
      if (got >= n) {
        resolve(sha256(Buffer.concat(chunks)));
        s.end();
      }
    });
    s.on('end', () => resolve(sha256(Buffer.concat(chunks))));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => srv.close());
  return { port: (srv.address() as AddressInfo).port, done };
}

/** A TCP server that sends `data` to each client and closes. */
async function source(data: Uint8Array): Promise<number> {
  const srv = createServer((s) => s.end(data));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => srv.close());
  return (srv.address() as AddressInfo).port;
}

test('user NAT: DHCP, ping, wget, nslookup, hostfwd to httpd, nc both ways', { timeout: 30 * 60_000 }, async () => {
  const files = { '/empty': new Uint8Array(0), '/1k': pattern(1024, 7), '/4m': pattern(4 << 20, 9) };
  const http = await httpServer(files);
  closers.push(() => http.server.close());
  const dns = await dnsServer({ 'test.virtus': '192.0.2.7' });
  closers.push(() => dns.close());
  const fwdPort = await freePort();

  const m = Guest.virtus(['--nic', `user,hostfwd=tcp:127.0.0.1:${fwdPort}-:8080,resolver=127.0.0.1:${dns.port}`, '--stats']);
  const boot = await m.shell();
  assert.match(boot, new RegExp(`${NET_MARKERS.up}eth0 up, address 10\\.0\\.2\\.15/24`));
  assert.match(await m.run('ip route'), /default via 10\.0\.2\.2 dev eth0/);
  assert.equal((await m.run('cat /etc/resolv.conf')).trim(), 'nameserver 10.0.2.3');
  assert.match(await m.run('cat /sys/class/net/eth0/address'), /52:54:00:12:34:56/);
  // The features Debian's driver took: checksum offload and TSO both ways, mergeable buffers,
  // status, the control queue and GUEST_ANNOUNCE (virtio 1.2 §5.1.3 bit numbers).
  const features = (await m.run('cat /sys/class/net/eth0/device/features')).trim();
  for (const bit of [0, 1, 5, 7, 11, 15, 16, 17, 21]) assert.equal(features[bit], '1', `feature bit ${bit} in ${features}`);

  // ICMP echo to the router.
  assert.match(await m.run('ping -c 3 10.0.2.2'), /3 packets transmitted, 3 packets received, 0% packet loss/);

  // wget from the host's loopback through the router address.
  for (const [path, data] of Object.entries(files)) {
    const r = await m.status(`wget -q -O /tmp/f http://10.0.2.2:${http.port}${path} && sha256sum /tmp/f`);
    assert.equal(r.status, 0, `wget ${path}: ${r.out}`);
    assert.equal(r.out.split(' ')[0], sha256(data), `wget ${path}`);
  }

  // DNS through the relay to the test's DNS server.
  const ns = await m.run('nslookup test.virtus');
  assert.match(ns, /192\.0\.2\.7/);
  assert.ok(dns.queries.includes('test.virtus'), `the DNS server saw ${dns.queries.join(', ')}`);

  // hostfwd: busybox httpd in the guest, fetched by the host.
  await m.run('mkdir -p /www && dd if=/dev/urandom of=/www/page.bin bs=1024 count=300 2>/dev/null && echo hello > /www/index.html && httpd -p 8080 -h /www');
  const guestHash = (await m.run('sha256sum /www/page.bin')).split(' ')[0];
  const page = new Uint8Array(await (await fetch(`http://127.0.0.1:${fwdPort}/page.bin`)).arrayBuffer());
  assert.equal(page.length, 300 * 1024);
  assert.equal(sha256(page), guestHash, 'the page fetched through hostfwd');
  assert.equal(await (await fetch(`http://127.0.0.1:${fwdPort}/index.html`)).text(), 'hello\n');

  // Large transfers with nc: guest → host, then host → guest.
  const size = 16 << 20;
  await m.run(`dd if=/dev/urandom of=/tmp/out bs=1M count=${size >> 20} 2>/dev/null`);
  const outHash = (await m.run('sha256sum /tmp/out')).split(' ')[0];
  const s = await sink(size);
  await m.status(`nc 10.0.2.2 ${s.port} < /tmp/out`, 10 * 60_000);
  assert.equal(await s.done, outHash, 'guest → host');
  const incoming = pattern(size, 3);
  const port = await source(incoming);
  const r = await m.status(`nc 10.0.2.2 ${port} > /tmp/in; sha256sum /tmp/in`, 10 * 60_000);
  assert.equal(r.out.trim().split(' ')[0], sha256(incoming), 'host → guest');
  assert.equal(await m.powerOff(), 0);
  assert.match(m.stderr, /virtio-net0/);
});
