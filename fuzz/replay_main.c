/* Replays files through a fuzz target as an ordinary test (linked with one fuzz/fuzz_X.c).
 *   replay_X [-v] [--any DIR] [--reject DIR] [--accept DIR] ...
 * Every file under an --any directory must merely not crash, every file under --reject must
 * be rejected, every file under --accept accepted. Missing directories are skipped; dotfiles
 * are ignored. Prints one line per failure, then "N passed, N failed"; exits 1 on failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int fuzz_accepts(const uint8_t *data, size_t size);
extern int fuzz_verbose;

enum expect { ANY, REJECT, ACCEPT };

static int passed, failed;

/* Exactly size bytes on the heap, so a read past the end is an ASan report. */
static uint8_t *slurp(const char *path, size_t *size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  uint8_t *buf = NULL;
  if (fseek(fp, 0, SEEK_END) == 0) {
    long n = ftell(fp);
    if (n >= 0 && fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc(n ? (size_t)n : 1)) != NULL &&
        fread(buf, 1, (size_t)n, fp) != (size_t)n) {
      free(buf);
      buf = NULL;
    }
    *size = (size_t)n;
  }
  fclose(fp);
  return buf;
}

static void run_file(const char *path, enum expect want) {
  size_t size = 0;
  uint8_t *buf = slurp(path, &size);
  if (!buf) {
    printf("FAIL %s: cannot read\n", path);
    failed++;
    return;
  }
  if (fuzz_verbose) fprintf(stderr, "%s\n", path);
  int ok = fuzz_accepts(buf, size);
  free(buf);
  if (want == ANY || (want == ACCEPT) == (ok != 0)) {
    passed++;
  } else {
    printf("FAIL %s: %s, should be %s\n", path, ok ? "accepted" : "rejected",
           want == ACCEPT ? "accepted" : "rejected");
    failed++;
  }
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files in sorted order, so output and any failure are reproducible. */
static void run_dir(const char *dir, enum expect want) {
  DIR *d = opendir(dir);
  if (!d) return;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **grown = realloc(names, cap * sizeof *names);
      if (!grown) break;
      names = grown;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    if ((names[n] = malloc(len)) == NULL) break;
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    struct stat sb;
    if (stat(names[i], &sb) == 0 && S_ISDIR(sb.st_mode)) run_dir(names[i], want);
    else run_file(names[i], want);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-v") == 0) {
      fuzz_verbose = 1;
      continue;
    }
    enum expect want;
    if (strcmp(argv[i], "--any") == 0) want = ANY;
    else if (strcmp(argv[i], "--reject") == 0) want = REJECT;
    else if (strcmp(argv[i], "--accept") == 0) want = ACCEPT;
    else if (argv[i][0] != '-') want = ANY; /* bare paths, like a libFuzzer binary takes */
    else {
      fprintf(stderr, "usage: %s [-v] [--any DIR] [--reject DIR] [--accept DIR] ...\n", argv[0]);
      return 2;
    }
    const char *path = want == ANY && argv[i][0] != '-' ? argv[i] : NULL;
    if (!path) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a directory\n", argv[0], argv[i]);
        return 2;
      }
      path = argv[++i];
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) run_file(path, want);
    else run_dir(path, want);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
