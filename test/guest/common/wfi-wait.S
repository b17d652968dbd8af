# WFI_WAIT ticks: hart 0 waits for mtime + `ticks` (the virt board's mtime counts at 10 MHz) in
# WFI, woken by the CLINT timer every 50 ms (mie.MTIE set, mstatus.MIE left 0, so WFI wakes
# without a trap). Uses t0-t3 and s4.
  .macro WFI_WAIT ticks
  li t0, 0x0200bff8        # CLINT mtime
  ld s4, 0(t0)
  li t1, \ticks
  add s4, s4, t1
  li t1, 0x80              # mie.MTIE
  csrs mie, t1
  li t1, 0x02004000        # mtimecmp of hart 0
  li t3, 500000
9:
  ld t2, 0(t0)
  add t2, t2, t3
  sd t2, 0(t1)
  wfi
  ld t2, 0(t0)
  bltu t2, s4, 9b
  .endm
