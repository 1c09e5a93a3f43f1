/* Image paths from the command line: files as given, directories walked recursively in
 * sorted order, keeping files whose extension names an image format. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"

static int is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  static const char *exts[] = {".jpg", ".jpeg", ".png", ".jpe", ".jfif"};
  if (!dot) return 0;
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (!strcasecmp(dot, exts[i])) return 1;
  return 0;
}

int cli_paths_push(cli_paths *p, const char *path) {
  if (p->count == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    char **items = realloc(p->items, cap * sizeof *items);
    if (!items) return -1;
    p->items = items;
    p->cap = cap;
  }
  if (!(p->items[p->count] = strdup(path))) return -1;
  p->count++;
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(cli_paths *p, const char *dir, int depth) {
  if (depth > 64) return 0; /* symlink loops end here */
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "effnet: cannot read directory %s\n", dir);
    return 1;
  }
  cli_paths names = {0};
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && cli_paths_push(&names, e->d_name)) break;
  closedir(d);
  if (names.count) qsort(names.items, names.count, sizeof *names.items, by_name);
  int bad = 0;
  for (size_t i = 0; i < names.count; i++) {
    char path[4096];
    struct stat sb;
    if (snprintf(path, sizeof path, "%s/%s", dir, names.items[i]) >= (int)sizeof path) continue;
    if (stat(path, &sb) != 0) continue;
    if (S_ISDIR(sb.st_mode)) bad |= walk(p, path, depth + 1);
    else if (S_ISREG(sb.st_mode) && is_image_name(names.items[i]) && cli_paths_push(p, path)) bad = 1;
  }
  cli_paths_free(&names);
  return bad;
}

int cli_collect_images(cli_paths *p, char **args, int count) {
  int bad = 0;
  for (int i = 0; i < count; i++) {
    struct stat sb;
    if (stat(args[i], &sb) == 0 && S_ISDIR(sb.st_mode)) bad |= walk(p, args[i], 0);
    else if (cli_paths_push(p, args[i])) bad = 1; /* unreadable files are reported when decoded */
  }
  return bad;
}

void cli_paths_free(cli_paths *p) {
  for (size_t i = 0; i < p->count; i++) free(p->items[i]);
  free(p->items);
  memset(p, 0, sizeof *p);
}
