/**
 * A hostile guest against `virtus run` (test/guest/virtio/hostile.c): transmit chains of
 * 3 x 512 MiB and 3 x 64 MiB on virtio-console, a 512 MiB disk read, a queue of 16 MiB rng buffers and
 * chains beyond the limits of virtio 1.2 §2.7. The monitor must serve or refuse each one and
 * live on, with its peak resident memory far below what the requests name, under the
 * translator in real time and under the interpreter in deterministic mode (where a guest
 * waiting in WFI for a request that spans many slices must not be taken for a dead one).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildGuest, VIRTUS } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Prints the process's peak resident memory (KiB) on stderr when it exits. */
const PEAK_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('peak-rss-kib='+process.resourceUsage().maxRSS+'\\n'))`;

interface Run {
  status: number | null;
  stderr: string;
  ms: number;
  peakMiB: number;
}

/**
 * Runs virtus on the program with its console (gigabytes) going to /dev/null: the guest's
 * verdict is its exit code, and --stats counts what reached the host. (With a pipe that is
 * read more slowly than the guest writes, the Node host's output buffer has no back-pressure
 * yet and grows; that is the host's to bound, see ConsoleOptions.room.)
 */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const p = spawn(process.execPath, ['--import', PEAK_RSS, VIRTUS, ...args, '--stats'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 240_000);
    p.on('error', reject);
    p.on('close', (status) => {
      clearTimeout(timer);
      const peak = /peak-rss-kib=(\d+)/.exec(stderr);
      resolve({ status, stderr, ms: performance.now() - t, peakMiB: peak ? Number(peak[1]) / 1024 : Infinity });
    });
  });
}

describe('a hostile virtio driver against the monitor', () => {
  const prog = () => buildGuest('virtio-hostile', ['common/crt.S', 'virtio/hostile.c']);
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, '');
  truncateSync(disk, 512 << 20);

  for (const mode of [['--engine', 'jit'], ['--engine', 'interp', '--deterministic']]) {
    it(`serves or refuses every request at bounded memory (${mode.join(' ')})`, async () => {
      const r = await run(['run', '--bios', 'none', '--kernel', prog(), '--memory', '640M', '--console', 'virtio', '--drive', `file=${disk}`, ...mode]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`^ {2}virtio-console0 bytes out +${3 * 576 * 2 ** 20}$`, 'm'), 'every byte of both chains reached the host');
      const warnings = r.stderr.split('\n').filter((l) => l.startsWith('virtus: warning: virtio-blk0:'));
      assert.equal(warnings.length, 3, r.stderr);
      for (const w of ['more than 4 GiB', 'indirect table of 65536 entries is too long', 'a loop?']) assert.ok(warnings.some((l) => l.includes(w)), `a warning about ${w}:\n${r.stderr}`);
      // Guest RAM the requests filled (128 MiB of disk reads, 16 MiB of random bytes) is resident; 1.7 GiB of output is not.
      assert.ok(r.peakMiB < 640, `peak resident memory ${r.peakMiB.toFixed(0)} MiB`);
      console.log(`# ${mode.join(' ')}: ${(r.ms / 1000).toFixed(1)} s, peak RSS ${r.peakMiB.toFixed(0)} MiB`);
    });
  }
});
