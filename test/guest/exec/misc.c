// The remaining calls of coreutils-style programs: link, truncate, chown to oneself, statfs,
// sendfile, prctl names, getrusage, times, sysinfo, fadvise, msync, and select through a pipe.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHOW(what, expr) do { long r_ = (long)(expr); printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)

int main(void) {
  int fd = open("f", O_CREAT | O_RDWR, 0644);
  write(fd, "0123456789", 10);
  SHOW("link", link("f", "g"));
  SHOW("link exists", link("f", "g"));
  struct stat st;
  stat("f", &st);
  printf("nlink %ld\n", (long)st.st_nlink);
  SHOW("truncate", truncate("g", 4));
  stat("f", &st);
  printf("size through the other name %ld\n", (long)st.st_size);
  SHOW("truncate missing", truncate("nope", 1));
  SHOW("chown to self", chown("f", getuid(), getgid()));
  SHOW("fchown to self", fchown(fd, -1, -1));
  SHOW("lchown missing", lchown("nope", 0, 0));
  struct statfs a, b;
  SHOW("statfs", statfs(".", &a));
  SHOW("fstatfs", fstatfs(fd, &b));
  printf("same file system type %d, block size %d\n", a.f_type == b.f_type, a.f_bsize == b.f_bsize);
  int out = open("copy", O_CREAT | O_WRONLY, 0644);
  off_t off = 1;
  SHOW("sendfile", sendfile(out, fd, &off, 100));
  printf("offset after %ld\n", (long)off);
  close(out);
  char buf[16] = {0};
  int in = open("copy", O_RDONLY);
  read(in, buf, sizeof buf - 1);
  printf("copied: %s\n", buf);
  SHOW("prctl set name", prctl(PR_SET_NAME, "worker-one-two-three"));
  char name[17] = {0};
  SHOW("prctl get name", prctl(PR_GET_NAME, name));
  printf("name %s\n", name);
  struct rusage ru;
  SHOW("getrusage", getrusage(RUSAGE_SELF, &ru));
  struct tms t;
  SHOW("times", times(&t) != (clock_t)-1);
  struct sysinfo si;
  SHOW("sysinfo", sysinfo(&si));
  printf("mem unit %u, some RAM %d\n", si.mem_unit, si.totalram > 0);
  SHOW("fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
  void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  SHOW("msync", msync(m, 4096, MS_SYNC));
  pid_t c = fork();
  if (c == 0) _exit(5);
  siginfo_t si2;
  memset(&si2, 0, sizeof si2);
  SHOW("waitid nowait", waitid(P_PID, c, &si2, WEXITED | WNOWAIT));
  SHOW("waitid", waitid(P_ALL, 0, &si2, WEXITED));
  printf("signo %d code %d status %d pid matches %d\n", si2.si_signo, si2.si_code, si2.si_status, si2.si_pid == c);
  SHOW("waitid none left", waitid(P_ALL, 0, &si2, WEXITED));
  return 0;
}
