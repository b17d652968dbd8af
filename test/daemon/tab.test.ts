/**
 * A daemon machine moves into a browser tab and back, live (Debian's Chromium through
 * playwright-core, the daemon's web console at /ui): the default guest, made from the image
 * without its disk so it runs from its initramfs, counts in a background loop; in the tab its
 * shell still has a variable set in the daemon and answers a command typed there, and back in
 * the daemon it answers through the console WebSocket. The terminal of the tab holds the
 * counter from the first line to the last, each once and in order: the guest ran on across
 * both moves. Around that, the refusals: a machine with a disk does not move (TAB_MOVE, before
 * anything moves), hostile streams into from-tab — garbage, and the whole valid stream of
 * another machine that has a disk — are answered ERR and change nothing (the side that receives
 * binds no disk), a client of to-tab that refuses the machine or goes away mid-stream leaves it
 * running in the daemon, and neither endpoint opens without the token.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { ensureDefaultGuest } from '../../src/host/node/guest/fetch.ts';
import { launchChromium } from '../web/browser.ts';
import { attach, curl, scratch, startDaemon, until, writerElf, type Console, type Daemon } from './support.ts';

/** The messages of one WebSocket to the daemon until it closes: JSON texts, and how it closed. */
async function exchange(url: string, send: Array<Buffer | string>): Promise<{ texts: Array<Record<string, any>>; code: number }> {
  const ws = new WebSocket(url);
  const texts: Array<Record<string, any>> = [];
  ws.on('message', (d: Buffer, binary: boolean) => {
    if (!binary) texts.push(JSON.parse(d.toString('utf8')) as Record<string, any>);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  for (const m of send) ws.send(m, { binary: typeof m !== 'string' });
  const code = await new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c)));
  return { texts, code };
}

/**
 * A hostile tab: relays the migration stream a daemon machine sends to a TCP port of the test's
 * (`migrate` is told that port) into the from-tab WebSocket at `url`, and the answer back.
 */
async function relayInto(url: string, migrate: (to: string) => Promise<void>): Promise<string> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let answer = '';
  const server = createServer((sock) => {
    sock.on('data', (b: Buffer) => ws.send(b, { binary: true }));
    sock.on('error', () => {});
    ws.on('message', (d: Buffer) => {
      const n = JSON.parse(d.toString('utf8')) as { answer?: string };
      if (n.answer !== undefined) {
        answer = n.answer;
        sock.end(`${n.answer}\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await migrate(`tcp:127.0.0.1:${(server.address() as AddressInfo).port}`);
    return answer;
  } finally {
    server.close();
    ws.close();
  }
}

/** The numbers of the counter's lines in `text`, in order (the first follows the prompt on its line). */
const ticks = (text: string): number[] => [...text.matchAll(/tick (\d+)\r?$/gm)].map((m) => Number(m[1]));

describe('daemon: a machine moves into a browser tab and back, live', () => {
  const s = scratch();
  let d: Daemon;
  let browser: Browser;
  let page: Page;
  let con: Console;
  let base: string;
  let token: string;
  const errors: string[] = [];
  const statuses = (): Promise<string[]> => page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
  before(async () => {
    await ensureDefaultGuest({ progress: () => {} });
    writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
    d = await startDaemon(s.path('state'), { tcp: true });
    browser = await launchChromium();
    token = readFileSync(`${d.state}/token`, 'utf8').trim();
    const [, host, port] = /^tcp:(.*):(\d+)$/.exec(d.tcp!)!;
    base = `${host}:${port}`;
  });
  after(async () => {
    con?.close();
    await browser?.close();
    await d?.stop();
    s.cleanup();
  });

  it('boots the default guest from its initramfs (the image without its disk) and counts', async () => {
    const some = curl(d.sock, 'POST', '/vms', { name: 'tabby', image: 'default', disks: [{ file: s.path('base.img') }] });
    assert.equal(some.status, 400, some.text);
    assert.match(some.body.error.message, /^disks goes with snapshot \(with image, only \[\]/);
    const r = curl(d.sock, 'POST', '/vms', { name: 'tabby', image: 'default', disks: [], memory: 256 << 20, start: true });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.body.machines[0].spec.devices.disks, [], 'no disk');
    assert.doesNotMatch(r.body.machines[0].spec.boot.append, /root=/);
    const w = curl(d.sock, 'POST', '/vms', { name: 'disky', spec: { memory: 16 << 20, boot: { mode: 'bare', kernel: writerElf() }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay: s.path('disky.qcow2') }] } }, start: true });
    assert.equal(w.status, 201, w.text);
    con = await attach(d.sock, 'tabby');
    await con.waitFor(/virtus-init: running from the initramfs/, 120_000);
    await con.waitFor(/virtus-init: ready/, 120_000);
    con.send('X=14; (i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "tick $i"; sleep 1; done) &\n');
    await con.waitFor(/tick 3\r?$/m);
  });

  it('refuses to move a machine with a disk, before anything moves; neither endpoint opens without the token', async () => {
    const refused = await exchange(`ws://${base}/vms/disky/to-tab?access_token=${token}`, []);
    assert.equal(refused.texts.length, 1, JSON.stringify(refused.texts));
    assert.equal(refused.texts[0]!.error.code, 'TAB_MOVE');
    assert.match(refused.texts[0]!.error.message, /^move to a tab: the machine has a disk \(.*disky\.qcow2\), which a browser tab cannot open/);
    assert.equal(refused.code, 1011);
    assert.equal(curl(d.sock, 'GET', '/vms/disky').body.state, 'running');
    const notInTab = await exchange(`ws://${base}/vms/disky/from-tab?access_token=${token}`, []);
    assert.equal(notInTab.texts.at(-1)!.error.code, 'VMM_STATE');
    await assert.rejects(exchange(`ws://${base}/vms/tabby/to-tab`, []), /HTTP 401/);
    await assert.rejects(exchange(`ws://${base}/vms/tabby/from-tab`, []), /HTTP 401/);
    await assert.rejects(exchange(`ws://${base}/vms/nobody/to-tab?access_token=${token}`, []), /HTTP 404/);
  });

  it('moves into the tab: the shell there has its variable and answers; the daemon shows it in a tab', async (t) => {
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://${base}/ui#token=${token}`);
    await page.locator('tr[data-name="tabby"][data-state="running"]').waitFor({ timeout: 30_000 });
    // Every status line the page shows beside the terminal, as it shows them.
    await page.evaluate(() => {
      const el = document.getElementById('move-status')!;
      const seen: string[] = [];
      (window as unknown as { statuses: string[] }).statuses = seen;
      new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
    });
    // The page says why a machine with a disk does not move; it runs on in the daemon.
    await page.locator('tr[data-name="disky"] button[data-action="to-tab"]').click();
    await page.locator('#error', { hasText: /move to a tab: the machine has a disk \(.*\), which a browser tab cannot open/ }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#move-status').textContent(), 'disky did not move: it runs on in the daemon');
    assert.equal(curl(d.sock, 'GET', '/vms/disky').body.state, 'running');
    const before = ticks(con.text()).at(-1)!;
    await page.locator('tr[data-name="tabby"] button[data-action="to-tab"]').click();
    await page.waitForFunction(() => window.virtusUi.tabMachine() === 'tabby', null, { timeout: 60_000 });
    const shown = await statuses();
    assert.ok(shown.some((t) => /^moving tabby into this tab: (active|stop-and-copy), round \d+, \d+\.\d MiB sent$/.test(t)), `progress shown: ${JSON.stringify(shown)}`);
    assert.equal(shown.at(-1), 'tabby runs in this tab');
    const m = curl(d.sock, 'GET', '/vms/tabby').body;
    assert.equal(m.state, 'stopped');
    assert.equal(m.stop.reason, 'migrated');
    assert.equal(m.migration.status, 'completed');
    assert.equal(m.migration.target, 'a browser tab');
    assert.match(m.stop.message, /^migrated to a browser tab: /);
    t.diagnostic(`into the tab: ${m.stop.message.replace(/^migrated to a browser tab: /, '')}`);
    await page.locator('tr[data-name="tabby"] td.state', { hasText: 'in a tab' }).waitFor({ timeout: 10_000 });
    const start = curl(d.sock, 'POST', '/vms/tabby/start');
    assert.equal(start.status, 409, start.text);
    assert.match(start.body.error.message, /runs in a browser tab now/);

    // The counter goes on in the tab, past what the daemon printed.
    await page.waitForFunction((n) => {
      const seen = [...window.virtusUi.screenText().matchAll(/tick (\d+)$/gm)].map((x) => Number(x[1]));
      return (seen.at(-1) ?? 0) > n;
    }, before + 2, { timeout: 60_000 });
    await page.locator('#terminal').click();
    await page.keyboard.type('echo "got-$((X*3))"; uname -a');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^got-42\r?$/m.test(window.virtusUi.screenText()) && /^Linux .* riscv64 GNU\/Linux/m.test(window.virtusUi.screenText()), null, { timeout: 30_000 });
  });

  it('refuses a hostile stream into from-tab and runs on; the machine stays in the tab', async () => {
    const junk = Buffer.concat([Buffer.from('VIRTMIGR'), Buffer.alloc(200, 0xa5)]);
    const r = await exchange(`ws://${base}/vms/tabby/from-tab?access_token=${token}`, [junk]);
    assert.match(r.texts[0]!.answer, /^ERR /, JSON.stringify(r.texts));
    assert.ok(r.texts.at(-1)!.error, JSON.stringify(r.texts));
    await until('the machine to be in the tab again', () => curl(d.sock, 'GET', '/vms/tabby').body.state === 'stopped');
    // A whole, valid stream of another machine, one with a disk: the receiving side binds no
    // disk, so it refuses the machine, and its source (disky, relayed here by a hostile "tab") runs on.
    const answer = await relayInto(`ws://${base}/vms/tabby/from-tab?access_token=${token}`, async (to) => {
      // Over TCP (fetch does not block this process, which relays the stream meanwhile).
      const r = await fetch(`http://${base}/vms/disky/migrate`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ to }) });
      assert.ok(r.status === 202 || r.status === 502, `${r.status}`);
      await until('the source to hear the refusal', () => curl(d.sock, 'GET', '/vms/disky').body.migration?.status === 'failed', 30_000);
    });
    assert.match(answer, /^ERR the machine has 1 disk\(s\), but the request names 0/);
    const disky = curl(d.sock, 'GET', '/vms/disky').body;
    assert.match(disky.migration.error, /^the target refused the machine: the machine has 1 disk/);
    assert.equal(disky.state, 'running');
    await until('the machine to be in the tab again', () => curl(d.sock, 'GET', '/vms/tabby').body.state === 'stopped');
    const text = await exchange(`ws://${base}/vms/tabby/from-tab?access_token=${token}`, ['OK']);
    assert.equal(text.texts.at(-1)!.error.code, 'TAB_PROTOCOL');
    await until('the machine to be in the tab again', () => curl(d.sock, 'GET', '/vms/tabby').body.state === 'stopped');
    assert.equal(curl(d.sock, 'GET', '/info').status, 200);
    assert.equal(await page.evaluate(() => window.virtusUi.tabMachine()), 'tabby');
  });

  it('moves back into the daemon: it answers on the console WebSocket, and the counter never skipped or repeated', async (t) => {
    await page.locator('#move-back').click();
    await until('the machine to run in the daemon', () => curl(d.sock, 'GET', '/vms/tabby').body.state === 'running', 60_000);
    await page.waitForFunction(() => window.virtusUi.tabMachine() === null, null, { timeout: 10_000 });
    const back = await statuses();
    assert.ok(back.some((t) => /^moving back to the daemon: (active|stop-and-copy), round \d+, \d+\.\d MiB sent$/.test(t)), `progress shown: ${JSON.stringify(back)}`);
    assert.equal(back.at(-1), 'tabby runs in the daemon again');
    t.diagnostic(`back to the daemon: the tab's last progress: ${back.filter((x) => x.startsWith('moving back to the daemon:')).at(-1)}`);
    const m = curl(d.sock, 'GET', '/vms/tabby').body;
    assert.equal(m.stop, null);
    assert.equal(m.migration.target, 'incoming');
    con.send('echo "back-$((X+1))"\n');
    await con.waitFor(/^back-15\r?$/m, 30_000);
    // The counter goes on in the daemon: two more ticks after the first one back here.
    const last = Number((await con.waitFor(/back-15[\s\S]*?tick (\d+)\r?$/m, 30_000))[1]);
    await con.waitFor(new RegExp(`tick ${last + 2}\\r?$`, 'm'), 30_000);
    await page.waitForFunction((n) => new RegExp(`tick ${n}$`, 'm').test(window.virtusUi.screenText()), last + 2, { timeout: 10_000 });
    const all = ticks(await page.evaluate(() => window.virtusUi.screenText()));
    assert.equal(all[0], 1);
    assert.deepEqual(all, all.map((_, i) => i + 1), 'every tick once, in order, in the tab\'s terminal');
    assert.deepEqual(errors, []);
  });

  it('a tab that refuses the machine, or goes away during the move, leaves it running in the daemon', async () => {
    for (const how of ['refuse', 'leave'] as const) {
      const ws = new WebSocket(`ws://${base}/vms/tabby/to-tab?access_token=${token}`);
      const texts: Array<Record<string, any>> = [];
      let answered = false;
      ws.on('message', (data: Buffer, binary: boolean) => {
        if (!binary) return void texts.push(JSON.parse(data.toString('utf8')) as Record<string, any>);
        if (answered) return;
        answered = true;
        if (how === 'refuse') ws.send('ERR no room here');
        else ws.terminate();
      });
      await new Promise<void>((resolve) => ws.once('close', () => resolve()));
      const m = await until(`the machine to run on (${how})`, () => {
        const b = curl(d.sock, 'GET', '/vms/tabby').body;
        return b.state === 'running' && b.migration?.status === 'failed' && b;
      }, 30_000);
      if (how === 'refuse') {
        assert.match(m.migration.error, /the target refused the machine: no room here/);
        assert.match(texts.at(-1)!.error.message, /^migration to .* failed: .*no room here; the machine runs on here$|^the move to the tab failed: .*no room here/);
      }
      con.send(`echo "still-${how}-$((X*2))"\n`);
      await con.waitFor(new RegExp(`^still-${how}-28\\r?$`, 'm'), 30_000);
    }
  });
});
