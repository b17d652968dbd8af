/**
 * Post-copy (QEMU's postcopy-ram): the switch from a running pre-copy to a target that runs
 * before all its RAM has arrived. Not built yet: the capability is refused
 * (migrate-params.ts), so nothing reaches postcopyOut; the stream's Postcopy record type is
 * reserved for it and a target refuses it. What it needs: a page flag that gives a missing
 * page no TLB entry of any kind, slow paths that end the slice without retiring the
 * instruction on such a page, and a run loop that asks the source for the page and resumes.
 */
import { VirtusError } from '../util/errors.ts';
import type { MigrationReport, Outgoing } from './migrate-out.ts';

/** The pages still coming to a target in post-copy (the host's channel to the source). */
export interface PageSource {
  /** Blocks until `page` has arrived, asking the source for it first; throws a VirtusError when it never will. */
  wait(page: number): void;
  /** Resolves once every page has arrived; rejects when the source broke off. */
  readonly done: Promise<void>;
  /** Pages asked for so far. */
  requests(): number;
}

/** Switches `out` to post-copy, `pending` the pages not yet sent. */
export async function postcopyOut(_out: Outgoing, _pending: Uint8Array, _machine: unknown, _maxThrottle: number): Promise<MigrationReport> {
  throw new VirtusError('NO_POSTCOPY', 'post-copy is not available yet');
}
