# A tiny S-mode guest for the web console's tests: prints a coloured banner and a prompt,
# echoes what is typed on the virt board's NS16550A UART (polled, as a boot loader does), and
# answers each line with "you typed: LINE". It boots in an instant, so the page's terminal
# plumbing (keys → worker → UART → guest → screen) is tested without waiting for Linux.
  .equ UART, 0x10000000
  .equ LSR, 5               # line status: bit 0 data ready, bit 5 transmitter empty
  .section .text.init
  .globl _start
_start:
  la sp, stack_top
  li s2, UART
  li a7, 0x10               # one SBI call (base: get_spec_version), so the guest makes a hypercall
  li a6, 0
  ecall
  la a0, banner
  call puts
prompt:
  la a0, prompt_s
  call puts
  la s0, line
  li s1, 0
next:
  lbu t0, LSR(s2)
  andi t0, t0, 1
  beqz t0, next
  lbu a0, 0(s2)
  li t0, 13               # Enter (a terminal sends carriage return)
  beq a0, t0, enter
  li t0, 127              # Backspace (DEL): forget a byte and rub it out
  beq a0, t0, rubout
  li t0, 120              # room for the byte and the terminating zero
  bgeu s1, t0, next
  add t1, s0, s1
  sb a0, 0(t1)
  addi s1, s1, 1
  call putc
  j next
rubout:
  beqz s1, next
  addi s1, s1, -1
  la a0, rubout_s
  call puts
  j next
enter:
  add t1, s0, s1
  sb zero, 0(t1)
  la a0, answer_s
  call puts
  mv a0, s0
  call puts
  j prompt

# putc(a0): writes one byte once the transmitter has room.
putc:
  lbu t0, LSR(s2)
  andi t0, t0, 0x20
  beqz t0, putc
  sb a0, 0(s2)
  ret

# puts(a0): writes a zero-terminated string.
puts:
  mv t2, a0
  mv t3, ra
1:
  lbu a0, 0(t2)
  beqz a0, 2f
  call putc
  addi t2, t2, 1
  j 1b
2:
  mv ra, t3
  ret

  .section .rodata
banner:   .asciz "\x1b[1;32mvirtus echo guest\x1b[0m: type a line\r\n"
prompt_s: .asciz "\r\necho$ "
answer_s: .asciz "\r\nyou typed: "
rubout_s: .asciz "\b \b"

  .bss
line:     .space 128
  .balign 16
          .space 4096
stack_top:
