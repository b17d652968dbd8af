/**
 * A daemon machine with several harts: `virtus create --image default --smp 2` boots the
 * default guest on two harts, the second in a thread of its own inside the machine's worker;
 * Linux sees both (nproc), both run code, and the machine resets and stops gracefully as a
 * one-hart machine does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { ensureDefaultGuest } from '../../src/host/node/guest/fetch.ts';
import { PROMPT } from '../support/guest.ts';
import { VIRTUS } from '../support/toolchain.ts';
import { attach, curl, scratch, startDaemon } from './support.ts';

const s = scratch('virtus-daemon-smp-');
after(() => s.cleanup());

/** Hart statistics of a machine (GET /vms/{id}/stats). */
function harts(sock: string, name: string): Record<string, number> {
  const r = curl(sock, 'GET', `/vms/${name}/stats`);
  assert.equal(r.status, 200, r.text);
  return r.body.harts as Record<string, number>;
}

describe('daemon machines with several harts', { timeout: 900_000 }, () => {
  it('boots the default guest on 2 harts in threads, resets and powers off', async () => {
    await ensureDefaultGuest({ progress: () => {} });
    const d = await startDaemon(s.path('state'));
    try {
      const cli = (args: string[]) => spawnSync(process.execPath, [VIRTUS, ...args], { encoding: 'utf8', env: { ...process.env, VIRTUS_HOST: `unix:${d.sock}` }, timeout: 60_000 });
      const bad = cli(['create', '--image', 'default', '--smp', '9']);
      assert.equal(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, /--smp 9: expected a number of harts from 1 to 8/);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      const r = cli(['create', '--image', 'default', '--name', 'duo', '--smp', '2', '--memory', '256M', '--console', 'virtio', '--start']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal((curl(d.sock, 'GET', '/vms/duo').body.spec as { harts: number }).harts, 2);
      const con = await attach(d.sock, 'duo');
      try {
        await con.waitFor(new RegExp(PROMPT), 400_000);
        con.send('echo harts=$(nproc) online=$(cat /sys/devices/system/cpu/online)\n');
        await con.waitFor(/harts=2 online=0-1/, 120_000);
        const h = harts(d.sock, 'duo');
        assert.equal(h['threads of their own'], 1, JSON.stringify(h));
        assert.ok(h['hart0 instructions']! > 0 && h['hart1 instructions']! > 0, JSON.stringify(h));
        // The same per hart in /metrics.
        const metrics = curl(d.sock, 'GET', '/metrics').text;
        for (const hart of ['0', '1']) {
          const m = new RegExp(`^virtus_machine_hart_instructions_total\\{machine="duo",id="[0-9a-f]+",hart="${hart}"\\} (\\d+)$`, 'm').exec(metrics);
          assert.ok(m && Number(m[1]) > 0, `hart ${hart} in /metrics:\n${metrics.split('\n').filter((x) => x.includes('hart')).join('\n')}`);
        }
        // A reset starts both harts again: the second boot sees two harts too.
        assert.equal(curl(d.sock, 'POST', '/vms/duo/reset').status, 200);
        const banner = "Enter 'help' for a list of built-in commands.";
        await con.waitFor(new RegExp(`${banner}[^]*${banner}[^]*${PROMPT}`), 400_000);
        con.send('echo again=$(nproc)\n');
        await con.waitFor(/again=2/, 120_000);
      } finally {
        con.close();
      }
      // A graceful stop: the guest powers itself off (SysRq on hvc0) with a hart in its thread.
      const st = curl(d.sock, 'POST', '/vms/duo/stop', { timeout: 300 });
      assert.equal(st.body.state, 'stopped', st.text);
      assert.equal(st.body.stop.reason, 'poweroff', st.text);
    } finally {
      await d.stop();
    }
  });
});
