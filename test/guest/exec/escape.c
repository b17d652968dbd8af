// An attacker inside --root: tries to reach a file outside through "..", absolute and relative
// symbolic links, chains and loops of links (made beforehand and made at run time), and
// prints what each attempt read or the error it got.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void try_read(const char *path) {
  char buf[64] = {0};
  int fd = open(path, O_RDONLY);
  if (fd < 0) { printf("%s: %s\n", path, strerror(errno)); return; }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = 0;
  printf("%s: read \"%s\"\n", path, buf);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) try_read(argv[i]);
  // Links the attacker makes itself.
  symlink("/../../../../../secret", "/made-abs");
  symlink("../../../../../../secret", "/made-rel");
  try_read("/made-abs");
  try_read("/made-rel");
  // Creating through a link that points up and out lands inside the root.
  symlink("/../../new-outside", "/made-create");
  int fd = open("/made-create", O_CREAT | O_WRONLY, 0644);
  printf("create through link: %s\n", fd >= 0 ? "created" : strerror(errno));
  close(fd);
  printf("unlink /../secret: %d\n", unlink("/../secret"));
  for (int i = 0; i < 10; i++) chdir("..");
  char cwd[256];
  printf("cwd after ..: %s\n", getcwd(cwd, sizeof cwd));
  DIR *d = opendir("/../..");
  int entries = 0, saw_root = 0;
  struct dirent *e;
  while ((e = readdir(d))) { entries++; if (!strcmp(e->d_name, "root")) saw_root = 1; }
  printf("listing /../.. shows the host's parent: %d\n", saw_root);
  char link[256] = {0};
  readlink("/proc/self/exe", link, sizeof link);
  printf("/proc/self/exe: %s\n", link);
  return 0;
}
