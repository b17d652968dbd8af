/**
 * The network of a machine in a browser tab: `virtus web --nic user` runs the user NAT in the
 * tab's worker and relays its TCP through the server (Wisp on a WebSocket). The default guest
 * in headless Chromium gets its address by DHCP from the NAT and fetches a file from a
 * loopback HTTP server on the host with busybox wget, byte for byte (sha256 on both sides);
 * the relay refuses a handshake from another site's page. With `--nic switch=unix:PATH` the
 * tab's frames go through the server to a `virtus switch` holding the NAT: the tab and a
 * machine run by `virtus run` on the same switch get leases and ping each other.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { NET_MARKERS } from '../../src/host/node/guest/network.ts';
import { Guest } from '../support/guest.ts';
import { VIRTUS } from '../support/toolchain.ts';
import { launchChromium, startServer, type WebServer } from './browser.ts';
import { waitInPage } from './wait.ts';

/** Booting to a shell in a tab takes about a minute; the interpreter may be slower. */
const BOOT_MS = 8 * 60_000;

/** The status line of a WebSocket handshake to the relay of `url` sent with `origin`. */
function handshake(url: string, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/wisp/', url), {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), Origin: origin },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve(0) : reject(e)));
    req.end();
  });
}

describe('virtus web --nic user in Chromium', { timeout: BOOT_MS + 5 * 60_000 }, () => {
  // 1 MiB: many Wisp DATA packets, so the relay's flow control (CONTINUE) is exercised.
  const data = randomBytes(1 << 20);
  const digest = createHash('sha256').update(data).digest('hex');
  let http: Server;
  let port = 0;
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    http = createServer((req, res) => {
      if (req.url === '/file') res.end(data);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    port = (http.address() as AddressInfo).port;
    server = await startServer(['--nic', 'user']);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await new Promise((r) => http?.close(r));
  });

  it('gets its address by DHCP from the NAT in the tab', async () => {
    const screen = await waitInPage(page, 'the network up and a shell prompt', () => {
      const text = window.virtus.screenText();
      return (/network eth0 up/.test(text) && /[#$] $/m.test(text)) || /Kernel panic/.test(text) || window.virtus.state() === 'stopped' ? text : null;
    }, null, BOOT_MS);
    assert.match(screen, /network eth0 up, address 10\.0\.2\.15\/24/, screen);
    assert.deepEqual(errors, []);
  });

  it("fetches a file from the host's loopback through the server's relay, byte for byte", async () => {
    const cmd = `wget -q -O - http://10.0.2.2:${port}/file | sha256sum | sed 's/^/sum: /'`;
    await page.evaluate((c) => window.virtus.type(`${c}\n`), cmd);
    const line = await waitInPage(page, 'the checksum of the fetched file', () => {
      return window.virtus.screenText().split('\n').find((l) => /^sum: [0-9a-f]{64}/.test(l)) ?? null;
    }, null, 180_000);
    assert.equal(line.trim().split(/\s+/)[1], digest);
  });

  it("refuses another site's page at the relay", async () => {
    assert.equal(await handshake(server.url, 'http://evil.example'), 403);
    assert.equal(await handshake(server.url, new URL(server.url).origin), 101);
  });
});

describe('virtus web --nic switch=... in Chromium: the tab on a LAN with a machine in Node', { timeout: BOOT_MS + 5 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtus-web-switch-'));
  const sock = join(dir, 'switch.sock');
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  let node: Guest;

  before(async () => {
    const sw = Guest.command(process.execPath, [VIRTUS, 'switch', '--listen', `unix:${sock}`, '--nat', 'user']);
    await sw.waitForStderr(/listening on unix:/);
    node = Guest.virtus(['--nic', `switch=unix:${sock},mac=52:54:00:00:00:0a`]);
    server = await startServer(['--nic', `switch=unix:${sock},mac=52:54:00:00:00:0b`]);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    Guest.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets a lease from the switch\'s NAT and pings the machine in Node, which pings it back', async () => {
    const boot = await node.shell();
    const ipNode = new RegExp(`${NET_MARKERS.up}eth0 up, address (10\\.0\\.2\\.\\d+)/24`).exec(boot)?.[1];
    assert.ok(ipNode, boot);
    const screen = await waitInPage(page, 'the network up and a shell prompt', () => {
      const text = window.virtus.screenText();
      return (/network eth0 up/.test(text) && /[#$] $/m.test(text)) || /Kernel panic/.test(text) ? text : null;
    }, null, BOOT_MS);
    const ipTab = /network eth0 up, address (10\.0\.2\.\d+)\/24/.exec(screen)?.[1];
    assert.ok(ipTab && ipTab !== ipNode, `leases ${ipTab} and ${ipNode}`);
    await page.evaluate((ip) => window.virtus.type(`ping -c 2 ${ip} | grep -o '[0-9] packets received' | sed 's/^/tab: /'\n`), ipNode);
    const line = await waitInPage(page, 'the ping from the tab', () => window.virtus.screenText().split('\n').find((l) => /^tab: \d packets received/.test(l)) ?? null, null, 60_000);
    assert.equal(line.trim(), 'tab: 2 packets received');
    assert.match(await node.run(`ping -c 2 ${ipTab}`), /2 packets received/);
  });
});
