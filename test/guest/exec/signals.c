// Signals: SIGSEGV on a guard page caught by a handler that reads the faulting address from
// siginfo and the pc from the ucontext, opens the page and returns (the store runs again);
// a handler that skips the faulting instruction by moving the ucontext's pc; raise() of a
// caught signal; the mask; and last, abort(), which kills the process with SIGABRT.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static volatile char *page;
static volatile int hits;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
  ucontext_t *uc = ctx;
  hits++;
  long off = (char *)si->si_addr - (char *)page;
  printf("caught %d code %d at %s%ld, pc set %d\n", sig, si->si_code, off >= 0 && off < 4096 ? "page+" : "", off >= 0 && off < 4096 ? off : (long)si->si_addr,
         uc->uc_mcontext.__gregs[REG_PC] != 0);
  if (hits == 1) mprotect(page, 4096, PROT_READ | PROT_WRITE);
  else uc->uc_mcontext.__gregs[REG_PC] += 4; // skip the 4-byte load below
}

static void on_usr1(int sig) {
  printf("usr1 %d\n", sig);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  page[123] = 42;
  printf("after store: %d, hits %d\n", page[123], hits);
  volatile long *bad = (long *)8;
  long v = 5;
  __asm__ volatile(".option push\n.option norvc\nld %0, 0(%1)\n.option pop" : "+r"(v) : "r"(bad)); // a 4-byte instruction
  printf("skipped load: %ld, hits %d\n", v, hits);
  signal(SIGUSR1, on_usr1);
  raise(SIGUSR1);
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, &old);
  sigprocmask(SIG_SETMASK, &old, &old);
  printf("usr1 was blocked: %d\n", sigismember(&old, SIGUSR1));
  signal(SIGUSR2, SIG_IGN);
  raise(SIGUSR2);
  printf("ignored usr2\n");
  abort();
}
