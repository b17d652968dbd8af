/**
 * What an instruction handler reports to the engine that ran it. Guest traps are reported as
 * data here (the trap itself has already been taken on the hart), never as host exceptions.
 */
export const enum St {
  /** Retired; the pc moves to the next instruction. */
  Next = 0,
  /** Retired; the handler set the pc. */
  Jump = 1,
  /** Not retired: a trap was taken (the pc is the trap vector). Leave the run loop. */
  Trap = 2,
  /** Retired; the pc moves on; leave the run loop (state the loop caches may have changed). */
  Exit = 3,
  /** Retired; the handler set the pc; leave the run loop. */
  ExitJump = 4,
  /**
   * Retired; the pc moves on; translations may have changed (SFENCE.VMA): the engine looks the
   * next fetch up again, and a translator leaves code translated under the old mapping. Not a
   * reason to leave the run loop, so every engine ends its slices at the same instructions.
   */
  Refetch = 5,
}
