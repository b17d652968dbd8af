# UART_HEX reg: writes `reg` (64 bits) to the virt board's UART (0x10000000) as sixteen hex
# digits, most significant first, then a newline. Uses t2-t5.
  .macro UART_HEX reg
  li t5, 0x10000000
  li t3, 60
1:
  srl t2, \reg, t3
  andi t2, t2, 15
  addi t2, t2, '0'
  li t4, '9'
  ble t2, t4, 2f
  addi t2, t2, 'a' - '9' - 1
2:
  sb t2, 0(t5)
  addi t3, t3, -4
  bgez t3, 1b
  li t2, '\n'
  sb t2, 0(t5)
  .endm
