/**
 * The console's output buffer on the Node host (runner-host.ts OutputBuffer): when it has handed
 * its bytes to the stream and the stream holds none, the machine is told there is room again.
 * A file or /dev/null as stdout (Node's SyncWriteStream) takes the bytes at once and never emits
 * 'drain': a guest waiting in WFI for its console to go on was woken only by its next timer, and
 * moved a megabyte per wakeup (test/virtio/hostile sent 192 MiB in 190 s). Small writes (a UART's
 * bytes) are gathered until the event loop turns; a large one goes to the stream at once, so a
 * guest writing to a file does not wait for the machine's next yield (a megabyte per 10 ms).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const SCRIPT = `
import { OutputBuffer } from ${JSON.stringify(new URL('../../src/host/node/runner-host.ts', import.meta.url).href)};
let drained = 0;
const out = new OutputBuffer(process.stdout, () => drained++);
out.write(new Uint8Array(1 << 10));
const small = out.room();
const drainedSmall = drained;
setTimeout(() => {
  const later = out.room();
  const drainedLater = drained;
  out.write(new Uint8Array(1 << 20));
  const big = out.room();
  process.stderr.write(JSON.stringify({ stream: process.stdout.constructor.name, small, drainedSmall, later, drainedLater, big, drained }) + '\\n');
}, 50);
`;

describe('the console output buffer', () => {
  it('says it has room again once a stream that never emits drain (a file) took its bytes, and hands a large write on at once', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stderr.trim().split('\n').pop()!) as Record<string, number | string>;
    assert.equal(got.stream, 'SyncWriteStream', 'stdout is a file here');
    assert.equal(got.small, (1 << 20) - (1 << 10), 'a kilobyte waits in the buffer');
    assert.equal(got.drainedSmall, 0);
    assert.equal(got.later, 1 << 20, 'the stream took it when the event loop turned');
    assert.equal(got.drainedLater, 1, 'the machine was told');
    assert.equal(got.big, 1 << 20, 'a megabyte went to the file at once');
    assert.equal(got.drained, 2, 'the machine was told again');
  });
});
