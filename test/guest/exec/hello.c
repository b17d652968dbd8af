// The smallest useful program: start-up time of `virtus exec` (bench) and a smoke test.
#include <stdio.h>

int main(void) {
  puts("hello from riscv64");
  return 0;
}
