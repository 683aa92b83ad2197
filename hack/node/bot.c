/*
 * bot: the test world's stand-in for a user's bot (tests/harness/node.py runs it in pods).
 *
 * It shows which credential it was given without ever showing the credential: for each
 * environment variable named in BOT_KEYS (comma separated) and each file in BOT_FILES (comma or
 * colon separated) it prints one line
 *
 *     NAME sha256:<first 16 hex digits of sha256(value)>
 *
 * ("NAME absent" when unset or unreadable), after a line "bot: round N". It prints again on
 * SIGHUP, and every BOT_INTERVAL seconds when that is set; otherwise it sleeps. SIGTERM and
 * SIGINT end it at once (as PID 1 in a container it has no default handlers).
 *
 * `bot --check` is a readiness probe that refuses a bad credential: it exits 1 when the variable
 * named by BOT_CHECK_KEY holds a value starting with BOT_REJECT_PREFIX, else 0.
 *
 * Built with `gcc -static` by hack/build-node-images.sh: no libc in the image, no other files.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* SHA-256 (FIPS 180-4), small and self-contained so the binary needs no crypto library. */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

typedef struct {
  uint32_t h[8];
  uint8_t block[64];
  size_t used;
  uint64_t bytes;
} sha256;

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_compress(sha256 *s) {
  uint32_t w[64], a, b, c, d, e, f, g, h;
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)s->block[4 * i] << 24 | (uint32_t)s->block[4 * i + 1] << 16 |
           (uint32_t)s->block[4 * i + 2] << 8 | s->block[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
  s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_init(sha256 *s) {
  static const uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, init, sizeof init);
  s->used = 0;
  s->bytes = 0;
}

static void sha256_update(sha256 *s, const uint8_t *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    s->block[s->used++] = data[i];
    if (s->used == 64) {
      sha256_compress(s);
      s->used = 0;
    }
  }
  s->bytes += n;
}

/* The first 8 bytes of the digest as 16 hex digits: enough to tell values apart, nothing to invert. */
static void sha256_short_hex(sha256 *s, char out[17]) {
  uint64_t bits = s->bytes * 8;
  uint8_t pad = 0x80, zero = 0, len[8];
  sha256_update(s, &pad, 1);
  while (s->used != 56) sha256_update(s, &zero, 1);
  for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha256_update(s, len, 8);
  for (int i = 0; i < 2; i++) sprintf(out + 8 * i, "%08x", s->h[i]);
  out[16] = '\0';
}

static void print_digest_of_value(const char *name, const char *value) {
  if (value == NULL) {
    printf("%s absent\n", name);
    return;
  }
  sha256 s;
  char hex[17];
  sha256_init(&s);
  sha256_update(&s, (const uint8_t *)value, strlen(value));
  sha256_short_hex(&s, hex);
  printf("%s sha256:%s\n", name, hex);
}

static void print_digest_of_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    printf("%s absent\n", path);
    return;
  }
  sha256 s;
  char hex[17];
  uint8_t buf[4096];
  size_t n;
  sha256_init(&s);
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&s, buf, n);
  fclose(f);
  sha256_short_hex(&s, hex);
  printf("%s sha256:%s\n", path, hex);
}

/* Calls `each` for every non-empty item of `list` split at any of `separators`. */
static void for_each_item(const char *list, const char *separators, void (*each)(const char *)) {
  if (list == NULL) return;
  char *copy = strdup(list), *save = NULL;
  for (char *item = strtok_r(copy, separators, &save); item; item = strtok_r(NULL, separators, &save))
    each(item);
  free(copy);
}

static void print_key(const char *name) { print_digest_of_value(name, getenv(name)); }

static void on_stop(int signo) { (void)signo; _exit(0); }

static int check(void) {
  const char *key = getenv("BOT_CHECK_KEY"), *prefix = getenv("BOT_REJECT_PREFIX");
  if (key == NULL || prefix == NULL || *prefix == '\0') return 0;
  const char *value = getenv(key);
  if (value != NULL && strncmp(value, prefix, strlen(prefix)) == 0) {
    fprintf(stderr, "bot: %s is refused (it starts with the rejected prefix)\n", key);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--check") == 0) return check();
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  /* SIGHUP stays blocked and is taken with sigwait: one that comes while a round prints is not lost. */
  sigset_t hangup;
  sigemptyset(&hangup);
  sigaddset(&hangup, SIGHUP);
  sigprocmask(SIG_BLOCK, &hangup, NULL);
  const char *interval_text = getenv("BOT_INTERVAL");
  long interval = interval_text ? strtol(interval_text, NULL, 10) : 0;
  for (unsigned long round = 1;; round++) {
    printf("bot: round %lu\n", round);
    for_each_item(getenv("BOT_KEYS"), ",", print_key);
    for_each_item(getenv("BOT_FILES"), ",:", print_digest_of_file);
    fflush(stdout);
    if (interval > 0) {
      struct timespec wait = {.tv_sec = interval};
      sigtimedwait(&hangup, NULL, &wait);
    } else {
      sigwaitinfo(&hangup, NULL);
    }
  }
}
