/**
 * Test support for the web console: Debian's Chromium, headless, driven by playwright-core
 * (no browser download), and `virtus web` on a free localhost port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { VIRTUS } from '../support/toolchain.ts';

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = process.env.VIRTUS_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags for a headless Chromium on a machine without a network or a display: no sandbox
 * (tests run as root), and none of the background services that would keep dialing out.
 */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Fails with the package to install when Chromium is missing (tests never skip silently). */
export function requireChromium(): void {
  const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${CHROMIUM} is not installed (Debian package chromium); .ci/run installs it`);
}

/**
 * A headless Chromium. playwright-core gives every launch a fresh profile directory of its
 * own (and removes it on close), so one test's cache never leaks into another's.
 */
export async function launchChromium(): Promise<Browser> {
  requireChromium();
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/** A running `virtus web`: its URL, what it printed, and a way to stop it. */
export interface WebServer {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `virtus web --port 0 ARGS` and waits for the line with its URL. */
export function startServer(args: string[] = []): Promise<WebServer> {
  const child: ChildProcess = spawn(process.execPath, [VIRTUS, 'web', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const stopped = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await stopped;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`virtus web did not start in 120 s:\n${text}`));
    }, 120_000);
    const onData = (b: Buffer) => {
      text += b.toString();
      const m = /on (http:\/\/localhost:\d+\/)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, output: () => text, stop });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`virtus web exited (${code}) before serving:\n${text}`));
    });
  });
}
