// Signals between processes and waits they interrupt: a child blocked reading an empty pipe is
// killed by SIGTERM (default action); a child's read is interrupted by a handled signal
// without SA_RESTART (EINTR) and restarted with it (then reads what arrives); a parent's
// nanosleep lets its children run meanwhile; SIGCHLD reaches a handler; FIONREAD on a pipe.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int got;
static void on_usr1(int sig) { got = sig; }
static volatile int chld;
static void on_chld(int sig) { (void)sig; chld++; }

static void nap(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&t, NULL);
}

static void child_reads(int restart, int fd) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGUSR1, &sa, NULL);
  char buf[16] = {0};
  int n = read(fd, buf, sizeof buf - 1);
  printf("child (%s): read %d%s%s, handler saw %d, data '%s'\n", restart ? "SA_RESTART" : "no restart", n,
         n < 0 ? " " : "", n < 0 ? strerror(errno) : "", got, buf);
  _exit(0);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGCHLD, on_chld);
  signal(SIGPIPE, SIG_IGN); // the child without SA_RESTART is gone when "late" is written
  int p[2];
  pipe(p);
  pid_t c = fork();
  if (c == 0) {
    char b;
    read(p[0], &b, 1); // never gets anything
    _exit(1);
  }
  nap(50);
  kill(c, SIGTERM);
  int st;
  waitpid(c, &st, 0);
  printf("blocked child: signaled %d by %d\n", WIFSIGNALED(st), WTERMSIG(st));
  for (int restart = 0; restart < 2; restart++) {
    int q[2];
    pipe(q);
    c = fork();
    if (c == 0) {
      close(q[1]);
      child_reads(restart, q[0]);
    }
    close(q[0]);
    nap(50);
    kill(c, SIGUSR1);
    nap(50);
    write(q[1], "late", 4);
    close(q[1]);
    waitpid(c, &st, 0);
  }
  int avail = -1;
  write(p[1], "abc", 3);
  ioctl(p[0], FIONREAD, &avail);
  printf("FIONREAD %d\n", avail);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  nap(30);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  printf("slept at least 30 ms: %d; SIGCHLD handled: %d\n", ms >= 30, chld > 0);
  return 0;
}
