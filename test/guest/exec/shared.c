// MAP_SHARED file mappings: stores reach the file at msync and at munmap, never past its end;
// a private mapping's stores never do; the file read back through read() shows which.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *when) {
  char buf[64] = {0};
  int fd = open("data", O_RDONLY);
  int n = read(fd, buf, sizeof buf - 1);
  close(fd);
  printf("%s: %d bytes: %s\n", when, n, buf);
}

int main(void) {
  int fd = open("data", O_CREAT | O_RDWR | O_TRUNC, 0644);
  write(fd, "aaaaaaaaaaaaaaaaaaaa", 20);
  char *s = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  memcpy(p, "PRIVATE", 7);
  memcpy(s, "shared", 6);
  s[100] = 'x'; // past the end of the file: never written to it
  printf("msync %d\n", msync(s, 4096, MS_SYNC));
  show("after msync");
  memcpy(s + 10, "more", 4);
  printf("munmap %d\n", munmap(s, 8192));
  show("after munmap");
  s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  pid_t c = fork();
  if (c == 0) {
    memcpy(s + 16, "kid", 3);
    _exit(0); // the child's stores reach the file as it exits
  }
  waitpid(c, NULL, 0);
  show("after the child exited");
  munmap(s, 4096); // the parent changed nothing: the child's stores stay
  show("after the parent's munmap");
  return 0;
}
