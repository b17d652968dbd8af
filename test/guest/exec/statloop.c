// A system-call-heavy loop for `npm run bench -- exec`: stat() of a file N times.
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
  long n = argc > 2 ? atol(argv[2]) : 100000;
  struct stat st;
  long size = 0;
  for (long i = 0; i < n; i++) {
    if (stat(argv[1], &st) != 0) return 1;
    size += st.st_size;
  }
  printf("%ld\n", size);
  return 0;
}
