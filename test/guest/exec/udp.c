// UDP on loopback to itself: bind to port 0, getsockname, sendto/recvfrom and sendmsg/recvmsg
// with several iovecs and the sender's address, and a TCP connection refused.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define SHOW(what, expr) do { long r_ = (long)(expr); printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)

int main(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  SHOW("bind", bind(s, (struct sockaddr *)&me, sizeof me));
  socklen_t len = sizeof me;
  SHOW("getsockname", getsockname(s, (struct sockaddr *)&me, &len));
  printf("port chosen %d, length %d\n", ntohs(me.sin_port) != 0, (int)len);
  SHOW("sendto", sendto(s, "datagram one", 12, 0, (struct sockaddr *)&me, sizeof me));
  char buf[64] = {0};
  struct sockaddr_in from;
  len = sizeof from;
  SHOW("recvfrom", recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len));
  printf("got '%s' from myself %d\n", buf, from.sin_port == me.sin_port);
  struct iovec out[2] = {{"two ", 4}, {"parts", 5}};
  struct msghdr m = { .msg_name = &me, .msg_namelen = sizeof me, .msg_iov = out, .msg_iovlen = 2 };
  SHOW("sendmsg", sendmsg(s, &m, 0));
  char a[3] = {0}, b[16] = {0};
  struct iovec in[2] = {{a, 2}, {b, sizeof b - 1}};
  memset(&from, 0, sizeof from);
  struct msghdr r = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = in, .msg_iovlen = 2 };
  SHOW("recvmsg", recvmsg(s, &r, 0));
  printf("got '%s' + '%s', name length %d, from myself %d\n", a, b, (int)r.msg_namelen, from.sin_port == me.sin_port);
  SHOW("nothing waiting (MSG_DONTWAIT)", recv(s, buf, sizeof buf, MSG_DONTWAIT));
  close(s);
  int t = socket(AF_INET, SOCK_STREAM, 0);
  SHOW("connect to a closed port", connect(t, (struct sockaddr *)&me, sizeof me));
  return 0;
}
