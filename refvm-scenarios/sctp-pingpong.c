/* sctp-pingpong.c - minimal SCTP endpoint for refvm-scenarios/packets.sh
 * (the reference VM has no socat with SCTP). One-to-one style sockets.
 *   sctp-pingpong server PORT          accept one association, read, answer "pong", close
 *   sctp-pingpong client ADDR PORT LPORT   connect from LPORT, send "ping", print the answer
 * Build (host): gcc -static -O2 -o sctp-pingpong sctp-pingpong.c
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

static int fail(const char *what) { perror(what); return 1; }

int main(int argc, char **argv) {
  char buf[64];
  struct sockaddr_in a;
  int one = 1;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  if (argc == 3 && strcmp(argv[1], "server") == 0) {
    int s = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    if (s < 0) return fail("socket");
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("bind");
    if (listen(s, 4) < 0) return fail("listen");
    for (;;) {
      int c = accept(s, NULL, NULL);
      if (c < 0) return fail("accept");
      ssize_t n = read(c, buf, sizeof buf);
      if (n > 0 && write(c, "pong", 4) != 4) perror("write");
      close(c);
    }
  }
  if (argc == 5 && strcmp(argv[1], "client") == 0) {
    int s = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    if (s < 0) return fail("socket");
    struct sockaddr_in l;
    memset(&l, 0, sizeof l);
    l.sin_family = AF_INET;
    l.sin_port = htons((unsigned short)atoi(argv[4]));
    if (bind(s, (struct sockaddr *)&l, sizeof l) < 0) return fail("bind");
    a.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) return fail("address");
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("connect");
    if (write(s, "ping", 4) != 4) return fail("write");
    ssize_t n = read(s, buf, sizeof buf - 1);
    if (n < 0) return fail("read");
    buf[n] = 0;
    printf("%s\n", buf);
    close(s);
    return 0;
  }
  fprintf(stderr, "usage: %s server PORT | client ADDR PORT LPORT\n", argv[0]);
  return 2;
}
