/**
 * The daemon's web console in Debian's Chromium: /ui over TCP with the token in its address
 * lists the daemon's machines with their state, pauses and resumes one with its buttons (the
 * API sees it), attaches an xterm.js terminal to its console, types a command and sees the
 * guest's answer there.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../web/browser.ts';
import { attach, curl, scratch, startDaemon, until, writerElf, type Daemon } from './support.ts';

describe('daemon: the web console', () => {
  const s = scratch();
  let d: Daemon;
  let browser: Browser;
  before(async () => {
    writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
    d = await startDaemon(s.path('state'), { tcp: true });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
    s.cleanup();
  });

  it('lists machines, pauses and resumes one, and attaches a terminal to its console', async () => {
    const r = curl(d.sock, 'POST', '/vms', { name: 'webby', spec: { memory: 16 << 20, boot: { mode: 'bare', kernel: writerElf() }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay: s.path('webby.qcow2') }] } }, start: true });
    assert.equal(r.status, 201, r.text);
    const con = await attach(d.sock, 'webby');
    await con.waitFor(/writer ready/);
    const token = readFileSync(`${d.state}/token`, 'utf8').trim();
    const [, host, port] = /^tcp:(.*):(\d+)$/.exec(d.tcp!)!;
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://${host}:${port}/ui#token=${token}`);
    const row = page.locator('tr[data-name="webby"]');
    await row.locator('td.state', { hasText: 'running' }).waitFor({ timeout: 30_000 });

    await row.locator('button[data-action="pause"]').click();
    await until('the API to see the pause', () => curl(d.sock, 'GET', '/vms/webby').body.state === 'paused');
    await page.locator('tr[data-name="webby"][data-state="paused"]').waitFor({ timeout: 10_000 });
    await page.locator('tr[data-name="webby"] button[data-action="resume"]').click();
    await until('the API to see the resume', () => curl(d.sock, 'GET', '/vms/webby').body.state === 'running');

    await page.locator('tr[data-name="webby"] button[data-action="console"]').click();
    const screen = page.locator('#terminal .xterm-rows');
    await screen.getByText('writer ready').waitFor({ timeout: 10_000 });
    await page.locator('#terminal').click();
    await page.keyboard.type('W web 2');
    await page.keyboard.press('Enter');
    await screen.getByText('done web').waitFor({ timeout: 10_000 });
    await con.waitFor(/done web/);
    assert.deepEqual(errors, []);
    con.close();
  });
});
