// File system calls on one file: openat, write, read, lseek, pread/pwrite, readv/writev,
// fstat/newfstatat, ftruncate, dup/dup3, fcntl, O_APPEND, and the errors of bad arguments.
// Run in an empty directory; prints what each call returned.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SHOW(what, expr) do { long r_ = (long)(expr); printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)

int main(void) {
  int fd = openat(AT_FDCWD, "data.txt", O_CREAT | O_RDWR | O_TRUNC, 0640);
  SHOW("open", fd >= 3);
  SHOW("write", write(fd, "hello, world\n", 13));
  SHOW("lseek cur", lseek(fd, 0, SEEK_CUR));
  SHOW("lseek set", lseek(fd, 7, SEEK_SET));
  char buf[64] = {0};
  SHOW("read", read(fd, buf, sizeof buf));
  printf("read text: %s", buf);
  SHOW("read at eof", read(fd, buf, sizeof buf));
  SHOW("pwrite", pwrite(fd, "HELLO", 5, 0));
  memset(buf, 0, sizeof buf);
  SHOW("pread", pread(fd, buf, 8, 0));
  printf("pread text: %s\n", buf);
  SHOW("lseek end", lseek(fd, 0, SEEK_END));
  SHOW("lseek neg", lseek(fd, -100, SEEK_SET));
  struct iovec iov[3] = {{"a", 1}, {"bc", 2}, {"def\n", 4}};
  SHOW("writev", writev(fd, iov, 3));
  lseek(fd, 0, SEEK_SET);
  char x[5] = {0}, y[64] = {0};
  struct iovec in[2] = {{x, 4}, {y, sizeof y - 1}};
  SHOW("readv", readv(fd, in, 2));
  printf("readv: [%s] [%s]", x, y);
  struct stat st;
  SHOW("fstat", fstat(fd, &st));
  printf("size %ld mode %o regular %d nlink %ld\n", (long)st.st_size, st.st_mode & 0777, S_ISREG(st.st_mode), (long)st.st_nlink);
  SHOW("ftruncate", ftruncate(fd, 5));
  SHOW("stat", stat("data.txt", &st));
  printf("size after truncate %ld\n", (long)st.st_size);
  int d = dup(fd);
  SHOW("dup", d > fd);
  SHOW("dup shares offset", lseek(d, 2, SEEK_SET) == lseek(fd, 0, SEEK_CUR));
  SHOW("dup3", dup3(fd, 20, O_CLOEXEC));
  SHOW("fcntl getfd", fcntl(20, F_GETFD));
  SHOW("fcntl getfl", fcntl(fd, F_GETFL) & O_ACCMODE);
  SHOW("fcntl dupfd", fcntl(fd, F_DUPFD, 30));
  SHOW("close", close(d));
  SHOW("close again", close(d));
  SHOW("read bad fd", read(99, buf, 1));
  SHOW("close", close(fd));
  fd = open("data.txt", O_WRONLY | O_APPEND);
  SHOW("append", write(fd, "!!", 2));
  close(fd);
  fd = open("data.txt", O_RDONLY);
  memset(buf, 0, sizeof buf);
  SHOW("read appended", read(fd, buf, sizeof buf));
  printf("text: %s\n", buf);
  SHOW("write to read-only", write(fd, "x", 1));
  close(fd);
  SHOW("open missing", open("missing/file", O_RDONLY));
  SHOW("open excl", open("data.txt", O_CREAT | O_EXCL | O_WRONLY, 0600));
  SHOW("open dir for write", open(".", O_WRONLY));
  SHOW("read a directory", read(open(".", O_RDONLY | O_DIRECTORY), buf, 1));
  SHOW("bad pointer", write(1, (void *)16, 1));
  SHOW("lseek on a pipe-like stdout", isatty(1));
  fprintf(stderr, "this goes to stderr\n");
  return 7;
}
