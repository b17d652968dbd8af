/**
 * Test support for `virtus daemon`: the daemon started as a real process on a unix socket
 * (and TCP on a free loopback port when asked) in a temporary state directory, requests through
 * curl or the CLI's own client, consoles through a WebSocket client, and the disk-writer guest.
 * Every response a test makes through `api` is checked against the OpenAPI document's schema
 * for its operation and status.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import WebSocket from 'ws';
import { openApiDoc, standalone } from '../../src/host/node/daemon/openapi.ts';
import { buildGuest, VIRTUS } from '../support/toolchain.ts';

/** The daemon tests' bare-metal guest (test/guest/daemon/writer.c). */
export const writerElf = (): string => buildGuest('daemon-writer', ['common/crt.S', 'daemon/writer.c']);

/** A scratch directory removed by cleanup(). */
export function scratch(prefix = 'virtus-daemon-'): { dir: string; path(p: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (p) => join(dir, p), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Daemon {
  state: string;
  sock: string;
  /** tcp:127.0.0.1:PORT when started with tcp. */
  tcp: string | null;
  child: ChildProcess;
  log(): string;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, and waits for the exit. */
  kill9(): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts `virtus daemon` on a unix socket in `state` (and TCP on a free loopback port with `tcp`). */
export async function startDaemon(state: string, o: { tcp?: boolean; env?: Record<string, string>; args?: string[] } = {}): Promise<Daemon> {
  const sock = join(state, 'daemon.sock');
  const args = [VIRTUS, 'daemon', '--state-dir', state, '--listen', `unix:${sock}`, ...(o.tcp ? ['--listen', 'tcp:127.0.0.1:0'] : []), ...(o.args ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...o.env } });
  let log = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const ready = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: string) => {
      log += d;
      const m = /listening on (.*) \(state/.exec(log);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`the daemon exited (${code}) before listening:\n${log}`)));
  });
  const tcp = ready.split(' ').find((a) => a.startsWith('tcp:')) ?? null;
  return {
    state,
    sock,
    tcp,
    child,
    exited,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface Answer {
  status: number;
  body: any;
  text: string;
}

const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
ajv.addKeyword('x-websocket').addFormat('date-time', true);
const validators = new Map<string, ReturnType<typeof ajv.compile>>();

/** Checks a JSON answer against the document's schema for the operation at `path` (a URL path). */
export function checkAnswer(method: string, path: string, a: Answer): void {
  const doc = openApiDoc();
  const route = Object.keys(doc.paths).find((p) => new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(path.split('?')[0]!));
  assert.ok(route, `${path} is in the document`);
  const op = doc.paths[route]![method.toLowerCase()];
  assert.ok(op, `${method} ${route} is in the document`);
  const resp = op.responses[String(a.status)];
  assert.ok(resp, `${method} ${route} documents status ${a.status} (${a.text.slice(0, 200)})`);
  const schema = resp.content?.['application/json']?.schema;
  if (!schema) return;
  const key = `${method} ${route} ${a.status}`;
  let v = validators.get(key);
  if (!v) validators.set(key, (v = ajv.compile(standalone(schema, doc))));
  assert.ok(v(a.body), `${key}: the answer fits the document: ${ajv.errorsText(v.errors)}\n${a.text.slice(0, 400)}`);
}

/** One request with curl over the daemon's unix socket; the answer is checked against the document. */
export function curl(sock: string, method: string, path: string, body?: unknown, o: { raw?: string; check?: boolean } = {}): Answer {
  const args = ['-s', '--unix-socket', sock, '-X', method, '-w', '\n%{http_code}', `http://localhost${path}`];
  const data = o.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  if (data !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', '@-');
  const r = spawnSync('curl', args, { input: data ?? '', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl failed (${r.status}): ${r.stderr}`);
  const i = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, i);
  const status = Number(r.stdout.slice(i + 1));
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // text answers (logs, metrics)
  }
  const a = { status, body: parsed, text };
  if (o.check !== false) checkAnswer(method, path, a);
  return a;
}

/** A console attached over the WebSocket: everything received, and a way to wait for output. */
export interface Console {
  text(): string;
  send(s: string): void;
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  close(): void;
}

export async function attach(sock: string, ref: string): Promise<Console> {
  const ws = new WebSocket(`ws+unix:${sock}:/vms/${ref}/console`);
  let text = '';
  const waiters = new Set<() => void>();
  ws.on('message', (d: Buffer) => {
    text += d.toString('latin1');
    for (const w of [...waiters]) w();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`console ${ref}: ${res.statusCode}`)));
  });
  return {
    text: () => text,
    send: (s) => ws.send(Buffer.from(s)),
    waitFor(re, ms = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = re.exec(text);
          if (!m) return false;
          waiters.delete(check as () => void);
          clearTimeout(timer);
          resolve(m);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check as () => void);
          reject(new Error(`console ${ref}: no ${re} within ${ms} ms; got:\n${text.slice(-800)}`));
        }, ms);
        if (!check()) waiters.add(check as () => void);
      });
    },
    close: () => ws.close(),
  };
}

/** Polls until `f` returns a value (or fails after `ms`). */
export async function until<T>(what: string, f: () => T | undefined | null | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The text of sector `k` of a disk image (qcow2 or raw), read by qemu-io. */
export function readSector(image: string, k: number, format = 'qcow2'): string {
  const r = spawnSync('qemu-io', ['-f', format, '-r', '-c', `read -v ${k * 512} 80`, image], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-io ${image}: ${r.stderr}`);
  // qemu-io -v prints "OFFSET:  16 HEX BYTES  ASCII" lines.
  const bytes = r.stdout
    .split('\n')
    .filter((l) => /^[0-9a-f]{8}:/.test(l))
    .flatMap((l) => l.slice(10, 10 + 16 * 3).trim().split(/\s+/).map((h) => parseInt(h, 16)));
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.slice(0, end)).toString('latin1');
}

export function fileText(p: string): string {
  return readFileSync(p, 'utf8');
}

/** A daemon's server-sent events as they arrive (GET /events on its unix socket). */
export interface EventLog {
  /** Each event's name and data, in order. */
  events: Array<{ type: string; data: Record<string, unknown> }>;
  /** Resolves once the daemon answered (events from then on are in `events`). */
  ready: Promise<void>;
  /** The answer's content type. */
  contentType(): string | undefined;
  close(): void;
}

/** Subscribes to `path` (default: every event of the daemon). */
export function subscribe(sock: string, path = '/events'): EventLog {
  const events: EventLog['events'] = [];
  let type: string | undefined;
  let subscribed!: () => void;
  const ready = new Promise<void>((r) => (subscribed = r));
  const req = request({ socketPath: sock, path }, (res) => {
    type = res.headers['content-type'];
    subscribed();
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (x: string) => {
      buf += x;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const name = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (name && data) events.push({ type: name, data: JSON.parse(data) as Record<string, unknown> });
      }
    });
  });
  req.on('error', () => {});
  req.end();
  return { events, ready, contentType: () => type, close: () => req.destroy() };
}
