/** Test support: waiting on a condition in the page, never for a fixed time. */
import type { Page } from 'playwright-core';

/**
 * Waits until `fn` (run in the page, polled) returns something truthy, and returns it. A wait
 * that runs out fails with the terminal's screen, which usually says why.
 */
export async function waitInPage<A, R>(page: Page, what: string, fn: (arg: A) => R, arg: A, timeout = 60_000): Promise<NonNullable<R>> {
  try {
    const h = await page.waitForFunction(fn as (arg: unknown) => R, arg as unknown, { timeout, polling: 250 });
    return (await h.jsonValue()) as NonNullable<R>;
  } catch (e) {
    const screen = await page.evaluate(() => window.virtus?.screenText() ?? '(no window.virtus)').catch(() => '(page gone)');
    throw new Error(`${what}: ${(e as Error).message.split('\n')[0]}\n--- screen ---\n${screen}`);
  }
}
