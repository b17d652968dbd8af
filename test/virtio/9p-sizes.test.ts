/**
 * virtio-9p with files and directories of every size, at the protocol level: for msizes from
 * the smallest the server takes to the largest, files of 0 bytes to several MiB (sizes on
 * both sides of the reply header, the page and msize boundaries) read back with their host
 * SHA-256 and written through Twrite, and directories of 0 to 5000 entries with long and
 * multibyte names listed whole, in small and large Treaddir counts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MAX_MSIZE } from '../../src/devices/virtio/9p/server.ts';
import { IO_HEADER, O_CREAT, O_DIRECTORY, O_RDONLY, O_RDWR, share as shareIn } from './p9-client.ts';

const scratch = mkdtempSync(join(tmpdir(), 'virtus-9p-sizes-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** Twrite: size[4] type[1] tag[2] fid[4] offset[8] count[4]. */
const TWRITE_HEADER = 23;

/** File sizes around every boundary that matters for `msize`. */
function sizes(msize: number): number[] {
  const data = msize - IO_HEADER;
  const around = (x: number) => [x - 1, x, x + 1];
  const list = [0, 1, 244, 245, 246, 1300, ...around(4096), ...around(data), ...around(2 * data), ...around(65536), ...around(msize), 1 << 20, 3 * (1 << 20) + 7];
  return [...new Set(list)].filter((n) => n >= 0).sort((a, b) => a - b);
}

describe('virtio-9p: files and directories of every size', () => {
  for (const msize of [4096, 8192, 65536, MAX_MSIZE]) {
    it(`msize ${msize}: reads files of 0 bytes to 3 MiB as the host has them, and writes them back`, () => {
      const { root, c } = shareIn(scratch, { msize });
      const files = sizes(msize).map((n) => ({ n, data: new Uint8Array(randomBytes(n)) }));
      for (const f of files) writeFileSync(join(root, `f${f.n}`), f.data);
      let fid = 1;
      for (const f of files) {
        // Read in msize-sized chunks, as Linux does.
        c.walk(0, fid, `f${f.n}`);
        c.lopen(fid, O_RDONLY);
        const got = new Uint8Array(f.n);
        let at = 0;
        for (;;) {
          const part = c.read(fid, at, msize - IO_HEADER);
          assert.ok(c.lastReplySize <= msize);
          if (part.length === 0) break;
          got.set(part, at);
          at += part.length;
        }
        assert.equal(at, f.n, `read ${f.n} bytes`);
        assert.equal(sha(got), sha(readFileSync(join(root, `f${f.n}`))), `f${f.n} as the host has it`);
        assert.equal(c.getattr(fid).size, BigInt(f.n));
        c.clunk(fid++);

        // Write a copy in the largest pieces msize allows.
        c.walk(0, fid);
        c.lcreate(fid, `copy${f.n}`, O_RDWR | O_CREAT, 0o644);
        for (let w = 0; w < f.n; ) {
          const piece = f.data.subarray(w, w + msize - TWRITE_HEADER);
          assert.equal(c.write(fid, w, piece), piece.length);
          w += piece.length;
        }
        c.clunk(fid++);
        assert.equal(sha(readFileSync(join(root, `copy${f.n}`))), sha(f.data), `copy${f.n} on the host`);
      }
    });
  }

  for (const count of [0, 1, 40, 500, 5000]) {
    it(`lists a directory of ${count} entries with long names whole`, () => {
      const { root, c } = shareIn(scratch, { msize: 65536 });
      const dir = join(root, 'd');
      mkdirSync(dir);
      const names: string[] = [];
      for (let i = 0; i < count; i++) {
        // Names up to NAME_MAX bytes; some multibyte (é is 2 bytes in UTF-8).
        const name = i % 7 === 3 ? `${i}-${'é'.repeat(120)}` : `${i}-${'long-name-'.repeat(24)}`.slice(0, 200 + (i % 56));
        names.push(name);
        if (i % 10 === 0) mkdirSync(join(dir, name));
        else writeFileSync(join(dir, name), '');
      }
      assert.equal(readdirSync(dir).length, count);
      c.walk(0, 1, 'd');
      c.lopen(1, O_RDONLY | O_DIRECTORY);
      for (const bytes of [300, 4096, 65536 - IO_HEADER]) {
        const got = c.readdirAll(1, bytes);
        assert.deepEqual(got.map((e) => e.name).sort(), ['.', '..', ...names].sort(), `Treaddir count ${bytes}`);
        assert.ok(c.lastReplySize <= 65536);
        const sub = got.find((e) => e.name === names[0]);
        if (sub) assert.equal(sub.qid.type, 0x80, 'a subdirectory has a directory qid');
      }
    });
  }
});
