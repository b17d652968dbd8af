/**
 * SMP with Debian's kernel: the default guest boots with `--smp 4`, under the built-in SBI
 * (the kernel starts its secondary harts with SBI HSM hart_start, sends IPIs and remote
 * fences through the monitor) and under OpenSBI (every hart enters the firmware at reset,
 * as on QEMU; OpenSBI holds the secondaries and starts them for the kernel over the CLINT's
 * msip). Over the console, as a user would: nproc, /proc/cpuinfo, and CPU hotplug of cpu3
 * (offline: hart_stop, which the kernel watches through hart_get_status; online again:
 * hart_start), then a CPU-bound job on every hart. One boot per firmware checks everything.
 * Harts 1-3 run in threads of their own (test/board/smp-threads.test.ts has more of that).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';

before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
});
after(() => Guest.killAll());

for (const firmware of ['builtin', 'opensbi'] as const) {
  test(`linux runs on 4 harts with ${firmware === 'builtin' ? 'the built-in SBI' : 'OpenSBI'}: nproc, cpuinfo, hotplug`, { timeout: 20 * 60_000 }, async () => {
    const m = Guest.virtus(['--smp', '4', '--stats', ...(firmware === 'opensbi' ? ['--bios', 'opensbi'] : [])]);
    await m.shell();
    assert.match(m.output, /smp: Brought up 1 node, 4 CPUs/);
    assert.equal((await m.run('nproc')).trim(), '4');
    const cpuinfo = await m.run('cat /proc/cpuinfo');
    assert.deepEqual(
      [...cpuinfo.matchAll(/^hart\s*: (\d+)$/gm)].map((x) => Number(x[1])).sort(),
      [0, 1, 2, 3],
      `/proc/cpuinfo lists harts 0-3:\n${cpuinfo}`,
    );

    // Hotplug: cpu3 goes offline (SBI HSM hart_stop) and comes back (hart_start).
    await m.run('echo 0 > /sys/devices/system/cpu/cpu3/online');
    assert.equal((await m.run('cat /sys/devices/system/cpu/online')).trim(), '0-2');
    assert.equal((await m.run('nproc')).trim(), '3');
    await m.run('echo 1 > /sys/devices/system/cpu/cpu3/online');
    assert.equal((await m.run('cat /sys/devices/system/cpu/online')).trim(), '0-3');
    assert.equal((await m.run('nproc')).trim(), '4');

    // Work on every hart: 4 shell loops, each pinned to one CPU, report the CPU they ran on
    // (field 39 of /proc/self/stat, read by a child that inherits the pinning).
    const out = await m.run(
      'for c in 0 1 2 3; do taskset -c $c sh -c \'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo ran=$(cut -d" " -f39 /proc/self/stat):$i\' & done; wait',
    );
    assert.deepEqual([...out.matchAll(/^ran=(\d):3000$/gm)].map((x) => x[1]).sort(), ['0', '1', '2', '3'], out);

    assert.equal(await m.powerOff(), 0, 'poweroff ends virtus with exit code 0');
    await m.waitForStderr(/^traps: \d+$/m);
    for (let h = 0; h < 4; h++) assert.match(m.stderr, new RegExp(`^ {2}hart${h} instructions +[1-9]\\d*$`, 'm'), `--stats counts hart ${h}`);
    assert.match(m.stderr, /^ {2}threads of their own +3$/m, 'harts 1-3 ran in threads of their own');
    if (firmware === 'builtin') {
      assert.match(m.stderr, /^ {2}hsm\.hart_start +4$/m, 'three secondaries at boot, cpu3 again');
      assert.match(m.stderr, /^ {2}hsm\.hart_stop +1$/m);
      assert.match(m.stderr, /^ {2}ipi\.send_ipi +[1-9]\d*$/m);
      assert.match(m.stderr, /^ {2}rfence\.remote_sfence_vma +[1-9]\d*$/m);
    }
  });
}
