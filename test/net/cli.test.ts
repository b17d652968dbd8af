/**
 * `virtus run`'s network flags fail at start with one line and exit code 2: a hostfwd port
 * already in use, a backend QEMU's syntax does not have, a stream peer that is not there,
 * a switch socket nobody serves.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { VIRTUS } from '../support/toolchain.ts';
import { freePort } from './support.ts';

before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
});

function run(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [VIRTUS, 'run', ...args], { encoding: 'utf8', timeout: 60_000, input: '' });
  return { status: r.status, stderr: r.stderr };
}

function oneLine(stderr: string, re: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, re);
}

test('a hostfwd port in use is one line at start', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    const r = run(['--nic', `user,hostfwd=tcp:127.0.0.1:${port}-:80`]);
    assert.equal(r.status, 2);
    oneLine(r.stderr, new RegExp(`^virtus: --nic hostfwd=tcp:127\\.0\\.0\\.1:${port}-:80: cannot listen: the port is in use$`));
  } finally {
    srv.close();
  }
});

test('bad NIC flags and absent peers are one line each', async () => {
  let r = run(['--nic', 'tap,ifname=x']);
  assert.equal(r.status, 2);
  oneLine(r.stderr, /unknown backend 'tap'/);
  const port = await freePort();
  r = run(['--nic', `stream,addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`]);
  assert.equal(r.status, 2);
  oneLine(r.stderr, /stream client tcp:127\.0\.0\.1:\d+: cannot connect: ECONNREFUSED/);
  r = run(['--nic', `switch=unix:${join(tmpdir(), `virtus-no-switch-${process.pid}.sock`)}`]);
  assert.equal(r.status, 2);
  oneLine(r.stderr, /cannot connect: ENOENT/);
});
