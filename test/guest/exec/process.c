// Process system calls: argv, envp and the auxiliary vector, identity, uname, clocks and
// sleep, resource limits, randomness, terminals, and the exit status.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SHOW(what, expr) do { long r_ = (long)(expr); printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)

int main(int argc, char **argv, char **envp) {
  printf("argc %d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d] = %s\n", i, argv[i]);
  printf("VIRTUS_TEST=%s\n", getenv("VIRTUS_TEST") ? getenv("VIRTUS_TEST") : "(unset)");
  SHOW("argv then envp", envp == argv + argc + 1);
  SHOW("AT_PAGESZ", getauxval(AT_PAGESZ));
  SHOW("AT_HWCAP", getauxval(AT_HWCAP));
  SHOW("AT_PHENT", getauxval(AT_PHENT));
  SHOW("AT_PHNUM", getauxval(AT_PHNUM) > 0);
  SHOW("AT_ENTRY", getauxval(AT_ENTRY) != 0);
  SHOW("AT_RANDOM", getauxval(AT_RANDOM) != 0);
  SHOW("AT_UID is getuid", getauxval(AT_UID) == getuid());
  SHOW("AT_SECURE", getauxval(AT_SECURE));
  SHOW("AT_EXECFN", strcmp((char *)getauxval(AT_EXECFN), argv[0]) == 0);
  SHOW("stack aligned", ((unsigned long)__builtin_frame_address(0) & 15) == 0);
  SHOW("getpid", getpid() > 0 && getpid() == getpid());
  SHOW("getppid", getppid() > 0);
  SHOW("uid", getuid() == geteuid() && getgid() == getegid());
  struct utsname u;
  SHOW("uname", uname(&u));
  printf("sysname %s machine %s\n", u.sysname, u.machine);
  struct timespec a, b, r;
  SHOW("clock monotonic", clock_gettime(CLOCK_MONOTONIC, &a));
  struct timespec nap = {0, 20 * 1000 * 1000};
  SHOW("nanosleep", nanosleep(&nap, NULL));
  clock_gettime(CLOCK_MONOTONIC, &b);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  SHOW("slept at least 20 ms", ms >= 20);
  SHOW("clock realtime after 2020", (clock_gettime(CLOCK_REALTIME, &a), a.tv_sec > 1577836800));
  SHOW("clock bad id", clock_gettime(12345, &a));
  SHOW("clock_getres", clock_getres(CLOCK_MONOTONIC, &r));
  struct timeval tv;
  SHOW("gettimeofday", gettimeofday(&tv, NULL) == 0 && tv.tv_sec > 1577836800);
  SHOW("time", time(NULL) > 1577836800);
  struct rlimit rl;
  SHOW("getrlimit stack", getrlimit(RLIMIT_STACK, &rl));
  printf("stack soft %ld\n", (long)rl.rlim_cur);
  unsigned char rnd[64];
  SHOW("getrandom", getrandom(rnd, sizeof rnd, 0));
  struct termios t;
  SHOW("tcgetattr on a pipe", tcgetattr(1, &t));
  SHOW("isatty", isatty(0));
  SHOW("umask", umask(077));
  SHOW("umask again", umask(022));
  printf("%.3f %g %e\n", 3.14159, 1e-300 * 1e-10, 12345.678);
  fflush(stdout);
  exit(argc > 1 ? atoi(argv[1]) : 0);
}
