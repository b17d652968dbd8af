// Directory system calls: mkdirat, getdents64 (through readdir; names sorted here because the
// order is the file system's), renameat2, symlinkat, readlinkat, unlinkat, chdir/getcwd,
// faccessat, lstat of links, fchmod.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHOW(what, expr) do { long r_ = (long)(expr); printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void list(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) { printf("opendir %s: %s\n", dir, strerror(errno)); return; }
  char *names[256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 256) {
    char t = e->d_type == DT_DIR ? 'd' : e->d_type == DT_LNK ? 'l' : e->d_type == DT_REG ? 'f' : '?';
    names[n] = malloc(300);
    snprintf(names[n++], 300, "%s(%c)", e->d_name, t);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp);
  printf("%s:", dir);
  for (int i = 0; i < n; i++) printf(" %s", names[i]);
  printf("\n");
}

int main(void) {
  SHOW("mkdir", mkdir("sub", 0755));
  SHOW("mkdir exists", mkdir("sub", 0755));
  SHOW("mkdir nested missing", mkdir("no/such", 0755));
  for (int i = 0; i < 40; i++) {
    char name[64];
    snprintf(name, sizeof name, "sub/file-with-a-longish-name-%02d", i);
    close(open(name, O_CREAT | O_WRONLY, 0644));
  }
  list("sub");
  SHOW("rename", rename("sub/file-with-a-longish-name-00", "sub/renamed"));
  SHOW("rename missing", rename("sub/nothing", "sub/x"));
  SHOW("symlink", symlink("renamed", "sub/link"));
  SHOW("symlink abs", symlink("/nonexistent/target", "dangling"));
  char buf[256] = {0};
  SHOW("readlink", readlink("sub/link", buf, sizeof buf));
  printf("link -> %s\n", buf);
  SHOW("readlink not a link", readlink("sub", buf, sizeof buf));
  struct stat st;
  SHOW("lstat link", lstat("sub/link", &st));
  printf("is link %d\n", S_ISLNK(st.st_mode));
  SHOW("stat through link", stat("sub/link", &st));
  printf("is regular %d\n", S_ISREG(st.st_mode));
  SHOW("stat dangling", stat("dangling", &st));
  SHOW("access R", access("sub/renamed", R_OK));
  SHOW("access X", access("sub/renamed", X_OK));
  SHOW("access missing", access("nope", F_OK));
  SHOW("chmod", chmod("sub/renamed", 0700));
  SHOW("access X after chmod", access("sub/renamed", X_OK));
  SHOW("chdir", chdir("sub"));
  SHOW("getcwd ends in /sub", strcmp(strrchr(getcwd(buf, sizeof buf), '/'), "/sub") == 0);
  SHOW("chdir file", chdir("renamed"));
  SHOW("chdir ..", chdir(".."));
  SHOW("rmdir nonempty", rmdir("sub"));
  SHOW("unlink", unlink("sub/link"));
  SHOW("unlink dir", unlink("sub"));
  list("sub");
  SHOW("fdopendir dirfd", ({ int dfd = open("sub", O_RDONLY | O_DIRECTORY); int f = openat(dfd, "renamed", O_RDONLY); close(dfd); f >= 0; }));
  list(".");
  return 0;
}
