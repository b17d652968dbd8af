// ITIMER_REAL: SIGALRM interrupts a read of an empty pipe (EINTR) and reaches the handler;
// getitimer reports the period; an interval timer fires again and again; alarm() with the
// default action ends the process by SIGALRM while it waits.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile int alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  int p[2];
  pipe(p);
  struct itimerval t = {{0, 0}, {0, 50000}};
  printf("setitimer %d\n", setitimer(ITIMER_REAL, &t, NULL));
  char c;
  int n = read(p[0], &c, 1);
  printf("read %d %s, alarms %d\n", n, n < 0 ? strerror(errno) : "", alarms);
  struct itimerval every = {{0, 20000}, {0, 20000}}, cur;
  setitimer(ITIMER_REAL, &every, NULL);
  getitimer(ITIMER_REAL, &cur);
  printf("interval %ld us, pending %d\n", (long)cur.it_interval.tv_usec, cur.it_value.tv_usec > 0);
  while (alarms < 4) read(p[0], &c, 1); // each SIGALRM interrupts the wait
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("alarms %d, timer off\n", alarms);
  signal(SIGALRM, SIG_DFL);
  alarm(1);
  read(p[0], &c, 1);
  printf("not reached\n");
  return 0;
}
