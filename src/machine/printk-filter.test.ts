import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrintkFilter } from './printk-filter.ts';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('drops kernel messages and keeps everything else, across any split of the bytes', () => {
  const input = '[    9.184764] Not activating\r\nvirtus-init: ready, root is /dev/vda\r\n[ 12.5] x\r\n[abc] not a stamp\r\n[    1.0]no space\r\nlogin: ';
  const want = 'virtus-init: ready, root is /dev/vda\r\n[abc] not a stamp\r\n[    1.0]no space\r\nlogin: ';
  for (let cut = 0; cut <= input.length; cut++) {
    const f = new PrintkFilter();
    const got = text(f.push(enc(input.slice(0, cut)), true)) + text(f.push(enc(input.slice(cut)), true));
    assert.equal(got, want, `split at ${cut}`);
  }
});

test('shows everything while hvc0 is not in use, and follows lines meanwhile', () => {
  const f = new PrintkFilter();
  assert.equal(text(f.push(enc('[    0.1] early\r\npartial [    0.2] '), false)), '[    0.1] early\r\npartial [    0.2] ');
  // The line that was going on when hvc0 came up is not taken for a message.
  assert.equal(text(f.push(enc('rest\r\n[    0.3] late\r\n'), true)), 'rest\r\n');
});
