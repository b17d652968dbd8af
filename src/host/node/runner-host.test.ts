/**
 * The Node run loop's sleeps: an idle machine sleeps until its next timer is due, so a sleep
 * must not end before its time (Node's own timers end up to a millisecond early, which made
 * the run loop wake, find the guest's timer not yet due, and sleep again), and wake() must
 * end it at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeRunnerHost } from './runner-host.ts';

describe('NodeRunnerHost.sleep', () => {
  it('never ends before the time asked, fractions of a millisecond included', async () => {
    const host = new NodeRunnerHost();
    const early: string[] = [];
    for (let i = 0; i < 100; i++) {
      const ms = 0.2 + ((i * 37) % 100) / 25; // 0.2 to 4.16 ms
      const t = performance.now();
      await host.sleep(ms);
      const slept = performance.now() - t;
      if (slept < ms) early.push(`${ms.toFixed(2)} ms asked, ${slept.toFixed(2)} slept`);
    }
    assert.deepEqual(early, []);
  });

  it('ends at wake(), long before its time', async () => {
    const host = new NodeRunnerHost();
    const t = performance.now();
    setTimeout(() => host.wake(), 5);
    await host.sleep(60_000);
    assert.ok(performance.now() - t < 30_000);
  });
});
