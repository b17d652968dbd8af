// Threads: pthread_create and join, a mutex-protected counter, a condition variable handing
// work between threads, atomics, thread-local storage, gettid, and a detached thread; then
// fork from a multithreaded process. Prints only what does not depend on scheduling.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static atomic_long atomic_counter;
static __thread long mine = 100;
static int turn;
static long tids[THREADS];

static void *work(void *arg) {
  long id = (long)arg;
  mine += id;
  tids[id] = syscall(SYS_gettid);
  for (int i = 0; i < ROUNDS; i++) {
    pthread_mutex_lock(&lock);
    counter++;
    pthread_mutex_unlock(&lock);
    atomic_fetch_add(&atomic_counter, 2);
  }
  // Take turns in order: each waits on the condition variable for its number.
  pthread_mutex_lock(&lock);
  while (turn != id) pthread_cond_wait(&cond, &lock);
  printf("thread %ld: tls %ld\n", id, mine);
  turn++;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  return (void *)(id * 10);
}

static void *detached(void *arg) {
  (void)arg;
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work, (void *)i);
  long sum = 0;
  for (int i = 0; i < THREADS; i++) {
    void *r;
    pthread_join(t[i], &r);
    sum += (long)r;
  }
  printf("counter %ld, atomic %ld, joined sum %ld, main tls %ld\n", counter, (long)atomic_counter, sum, mine);
  int distinct = 1;
  for (int i = 0; i < THREADS; i++) {
    if (tids[i] == getpid()) distinct = 0;
    for (int j = 0; j < i; j++) if (tids[i] == tids[j]) distinct = 0;
  }
  printf("thread ids distinct from each other and the pid: %d\n", distinct);
  pthread_t d;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  printf("detached: %d\n", pthread_create(&d, &attr, detached, NULL));
  // Many short-lived threads: more than the harts a process has at once.
  for (int round = 0; round < 5; round++) {
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, detached, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  }
  printf("rounds of threads joined\n");
  pid_t c = fork();
  if (c == 0) {
    printf("child of a threaded process: counter %ld\n", counter);
    _exit(3);
  }
  int st;
  waitpid(c, &st, 0);
  printf("child exit %d\n", WEXITSTATUS(st));
  return 0;
}
