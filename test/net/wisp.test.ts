/**
 * The Wisp relay: virtus's client (what a browser machine uses) against virtus's server on
 * a loopback HTTP server, carrying TCP to a real echo server and UDP to a real DNS server;
 * refusals carry Wisp's close reasons; a malformed packet closes the WebSocket. Then a Linux
 * guest whose NAT has no sockets of its own (`--nic user,wisp=ws://...`) fetches a file
 * with wget and resolves a name with nslookup through the relay.
 */
import assert from 'node:assert/strict';
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { after, describe, it, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { attachWisp } from '../../src/host/node/net/wisp-server.ts';
import { wsConnect, type WebSocketConn } from '../../src/host/node/net/websocket.ts';
import { CLOSE_REFUSED, STREAM_TCP, STREAM_UDP, WispClient, parseWisp } from '../../src/net/wisp.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { Guest } from '../support/guest.ts';
import { dnsServer, freePort, httpServer, pattern, sha256 } from './support.ts';

const closers: Array<() => void> = [];
after(() => {
  Guest.killAll();
  for (const c of closers) c();
});

async function relay(): Promise<string> {
  const http: HttpServer = createHttp((_q, r) => r.writeHead(404).end());
  attachWisp(http, { path: '/wisp/' });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  closers.push(() => http.close());
  return `ws://127.0.0.1:${(http.address() as AddressInfo).port}/wisp/`;
}

async function client(url: string): Promise<{ ws: WebSocketConn; c: WispClient }> {
  const ws = await wsConnect(url);
  const c = new WispClient({ send: (m) => ws.send(m), close: () => ws.close() });
  ws.onMessage = (m) => c.receive(m);
  ws.onClose = () => c.down();
  closers.push(() => ws.close());
  return { ws, c };
}

describe('wisp', () => {
  it('refuses packets too short for their type', () => {
    for (const b of [[], [2, 0, 0, 0], [1, 1, 0, 0, 0, 1], [3, 0, 0, 0, 0, 1], [9, 0, 0, 0, 0]]) {
      assert.throws(() => parseWisp(new Uint8Array(b)), (e) => isVirtusError(e, 'WISP_PACKET'));
    }
  });

  it('carries a TCP stream both ways under flow control, and UDP', async () => {
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    closers.push(() => echo.close());
    const { c } = await client(await relay());
    const data = pattern(3 << 20, 5);
    const got: Uint8Array[] = [];
    let n = 0;
    const done = new Promise<void>((resolve) => {
      const s = c.open(STREAM_TCP, '127.0.0.1', (echo.address() as AddressInfo).port, {
        data: (b) => {
          got.push(b.slice());
          n += b.length;
          if (n >= data.length) resolve();
        },
        closed: () => resolve(),
      });
      for (let i = 0; i < data.length; i += 16384) s.send(data.subarray(i, i + 16384));
    });
    await done;
    assert.equal(sha256(Buffer.concat(got)), sha256(data));

    const dns = await dnsServer({ 'wisp.virtus': '192.0.2.9' });
    closers.push(() => dns.close());
    const answer = await new Promise<Uint8Array>((resolve) => {
      const s = c.open(STREAM_UDP, '127.0.0.1', dns.port, { data: resolve, closed: () => {} });
      const q = Buffer.from('1234010000010000000000000477697370067669727475730000010001', 'hex');
      s.send(q);
    });
    assert.deepEqual([...answer.subarray(answer.length - 4)], [192, 0, 2, 9]);
  });

  it('closes a refused stream with reason 0x44 and a connection that breaks the protocol', async () => {
    const url = await relay();
    const { ws, c } = await client(url);
    const port = await freePort();
    const reason = await new Promise<number>((resolve) => c.open(STREAM_TCP, '127.0.0.1', port, { data() {}, closed: resolve }));
    assert.equal(reason, CLOSE_REFUSED);
    const closed = new Promise<void>((r) => (ws.onClose = r));
    ws.send(new Uint8Array([2, 0]));
    await closed;
  });
});

test('a Linux guest reaches the host through the Wisp relay', { timeout: 30 * 60_000 }, async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
  const url = await relay();
  const file = pattern(2 << 20, 11);
  const http = await httpServer({ '/f': file });
  closers.push(() => http.server.close());
  const dns = await dnsServer({ 'relay.virtus': '192.0.2.8' });
  closers.push(() => dns.close());
  const m = Guest.virtus(['--nic', `user,wisp=${url},resolver=127.0.0.1:${dns.port}`]);
  await m.shell();
  const r = await m.status(`wget -q -O /tmp/f http://10.0.2.2:${http.port}/f && sha256sum /tmp/f`);
  assert.equal(r.status, 0, r.out);
  assert.equal(r.out.split(' ')[0], sha256(file));
  assert.match(await m.run('nslookup relay.virtus'), /192\.0\.2\.8/);
  assert.equal(await m.powerOff(), 0);
});
