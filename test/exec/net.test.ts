/**
 * `virtus exec` sockets against qemu-riscv64: a C program using UDP on loopback, and Debian's
 * riscv64 busybox: wget fetching from an HTTP server on the host's loopback, and nc listening on
 * a loopback port for a client on the host. Output and exit status must be the same. Ports are chosen free at run time.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cacheRoot, ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { runQemuUser, runVirtusExec } from '../support/exec.ts';
import { buildLinuxProgram, requireTool, ROOT, VIRTUS } from '../support/toolchain.ts';

let scratch = '';
let busybox = '';

before(async () => {
  if (!existsSync(join(ROOT, 'build/native/sockets.node'))) {
    throw new Error('build/native/sockets.node is missing: run npm install (it runs scripts/build-native.mjs)');
  }
  const guest = await ensureDefaultGuest({ progress: stderrProgress() });
  scratch = mkdtempSync(join(tmpdir(), 'virtus-net-'));
  const r = spawnSync('dpkg-deb', ['-x', join(cacheRoot(), 'debs', guest.manifest.packages.busybox.file), scratch], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  busybox = join(scratch, 'usr/bin/busybox');
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs busybox under virtus exec or qemu-riscv64 without blocking this process's event loop. */
function run(under: 'virtus' | 'qemu', args: string[], input = ''): Promise<Ran> {
  requireTool('qemu-riscv64');
  const [cmd, pre] = under === 'virtus' ? [process.execPath, [VIRTUS, 'exec']] : ['qemu-riscv64', []];
  const child = spawn(cmd, [...pre, busybox, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    }));
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('virtus exec sockets, against qemu-riscv64', () => {
  it('UDP to itself on loopback: sendto, recvfrom, sendmsg and recvmsg with iovecs; a refused connection', () => {
    const elf = buildLinuxProgram('udp', ['udp.c']);
    const want = runQemuUser(elf);
    const got = runVirtusExec(elf);
    assert.deepEqual(got, want);
    assert.match(got.stdout, /got 'tw' \+ 'o parts', name length 16, from myself 1/);
  });

  it('wget fetches from an HTTP server on loopback, and reports a refused connection', async () => {
    const server = createHttpServer((q, r) => r.end(`hello from the host, you asked for ${q.url}\n`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const closed = await freePort();
    try {
      for (const args of [['wget', '-q', '-O', '-', `http://127.0.0.1:${port}/a/b?c=d`], ['wget', '-q', '-O', '-', `http://127.0.0.1:${closed}/`]]) {
        const want = await run('qemu', args);
        const got = await run('virtus', args);
        assert.deepEqual(got, want, args.join(' '));
      }
    } finally {
      server.close();
    }
  });

  it('nc listens on loopback: a host client sends, and gets the guest\'s stdin back', async () => {
    const results: Ran[] = [];
    const replies: string[] = [];
    for (const under of ['qemu', 'virtus'] as const) {
      const port = await freePort();
      const server = run(under, ['nc', '-l', '-p', String(port)], 'pong from the guest\n');
      let reply = '';
      for (let tries = 0; ; tries++) {
        try {
          reply = await new Promise<string>((resolve, reject) => {
            const sock = connect(port, '127.0.0.1');
            let got = '';
            sock.on('data', (d: Buffer) => (got += d));
            sock.on('error', reject);
            sock.on('connect', () => sock.end('ping from the host\n'));
            sock.on('close', () => resolve(got));
          });
          break;
        } catch (e) {
          if (tries > 200) throw e;
          await new Promise((r) => setTimeout(r, 50)); // the server is not listening yet
        }
      }
      results.push(await server);
      replies.push(reply);
    }
    assert.equal(results[0]!.stdout, 'ping from the host\n');
    assert.equal(replies[0], 'pong from the guest\n');
    assert.deepEqual(results[1], results[0]);
    assert.deepEqual(replies[1], replies[0]);
  });
});

