#include "io/iofile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

void io_put_u16le(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

void io_put_u32le(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

void io_put_u64le(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t io_get_u64le(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

uint32_t io_get_u32le(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

unsigned io_get_u16le(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* ------------------------------------------------------------------ reading */

static effnet_status read_all(int fd, size_t len, void **out, const char *path,
                              effnet_error *err) {
  unsigned char *buf = malloc(len);
  if (!buf) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory reading %zu bytes", path, len);
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      free(buf);
      return en_fail(err, EFFNET_E_IO, "%s: read failed after %zu of %zu bytes: %s", path, got,
                     len, r < 0 ? strerror(errno) : "file shrank");
    }
    got += (size_t)r;
  }
  *out = buf;
  return EFFNET_OK;
}

effnet_status io_map_file(io_map *out, const char *path, effnet_error *err) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return en_fail(err, EFFNET_E_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  effnet_status st = EFFNET_OK;
  if (fstat(fd, &sb) != 0)
    st = en_fail(err, EFFNET_E_IO, "%s: cannot stat: %s", path, strerror(errno));
  else if (!S_ISREG(sb.st_mode))
    st = en_fail(err, EFFNET_E_IO, "%s: not a regular file", path);
  else if ((uintmax_t)sb.st_size > SIZE_MAX)
    st = en_fail(err, EFFNET_E_LIMIT, "%s: too large to map", path);
  if (st != EFFNET_OK || sb.st_size == 0) { /* mmap refuses length 0: an empty image */
    close(fd);
    return st;
  }
  size_t len = (size_t)sb.st_size;
  void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p != MAP_FAILED) {
    out->mapped = 1;
  } else {
    st = read_all(fd, len, &p, path, err);
  }
  close(fd);
  if (st != EFFNET_OK) return st;
  out->data = p;
  out->len = len;
  return EFFNET_OK;
}

void io_unmap(io_map *m) {
  if (!m || !m->data) return;
  if (m->mapped) munmap((void *)m->data, m->len);
  else free((void *)m->data);
  memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ atomic writing */

effnet_status io_atomic_open(io_atomic *a, const char *path, effnet_error *err) {
  memset(a, 0, sizeof *a);
  a->path = path;
  size_t n = strlen(path) + 32;
  a->tmp = malloc(n);
  if (!a->tmp) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", path);
  snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    effnet_status st = en_fail(err, EFFNET_E_IO, "%s: cannot create temporary file %s: %s",
                               path, a->tmp, strerror(errno));
    free(a->tmp);
    a->tmp = NULL;
    return st;
  }
  a->fp = fdopen(fd, "wb");
  if (!a->fp) {
    effnet_status st = en_fail(err, EFFNET_E_IO, "%s: fdopen failed: %s", path, strerror(errno));
    close(fd);
    io_atomic_abort(a);
    return st;
  }
  return EFFNET_OK;
}

void io_atomic_abort(io_atomic *a) {
  if (a->fp) fclose(a->fp);
  if (a->tmp) unlink(a->tmp);
  free(a->tmp);
  a->fp = NULL;
  a->tmp = NULL;
}

static effnet_status fail_abort(io_atomic *a, effnet_error *err, const char *what) {
  effnet_status st = en_fail(err, EFFNET_E_IO, "%s: %s failed: %s", a->path, what,
                             strerror(errno));
  io_atomic_abort(a);
  return st;
}

effnet_status io_atomic_write(io_atomic *a, const void *data, size_t n, effnet_error *err) {
  if (n && fwrite(data, 1, n, a->fp) != n) return fail_abort(a, err, "write");
  return EFFNET_OK;
}

effnet_status io_atomic_write_le(io_atomic *a, const void *data, size_t count, size_t elem_size,
                                 effnet_error *err) {
  unsigned char buf[4096];
  const unsigned char *src = data;
  size_t per = sizeof buf / elem_size, done = 0;
  while (done < count) {
    size_t k = count - done < per ? count - done : per;
    for (size_t i = 0; i < k; i++) {
      const unsigned char *e = src + (done + i) * elem_size;
      unsigned char *o = buf + i * elem_size;
      uint64_t v64;
      uint32_t v32;
      uint16_t v16;
      switch (elem_size) {
        case 8: memcpy(&v64, e, 8); io_put_u64le(o, v64); break;
        case 4: memcpy(&v32, e, 4); io_put_u32le(o, v32); break;
        case 2: memcpy(&v16, e, 2); io_put_u16le(o, v16); break;
        default: o[0] = e[0]; break;
      }
    }
    effnet_status st = io_atomic_write(a, buf, k * elem_size, err);
    if (st != EFFNET_OK) return st;
    done += k;
  }
  return EFFNET_OK;
}

/* The rename is durable only once the directory entry is; filesystems that cannot fsync a
 * directory say EINVAL, which we accept. */
static effnet_status sync_dir(const char *path, effnet_error *err) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  char *dir = malloc(n + 2);
  if (!dir) return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", path);
  if (n > 0) {
    memcpy(dir, path, n);
    dir[n] = '\0';
  } else {
    strcpy(dir, slash ? "/" : ".");
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  effnet_status st = EFFNET_OK;
  if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
    st = en_fail(err, EFFNET_E_IO, "%s: written, but syncing directory %s failed: %s", path,
                 dir, strerror(errno));
  if (fd >= 0) close(fd);
  free(dir);
  return st;
}

effnet_status io_atomic_commit(io_atomic *a, effnet_error *err) {
  if (fflush(a->fp) != 0) return fail_abort(a, err, "write");
  if (fsync(fileno(a->fp)) != 0) return fail_abort(a, err, "fsync");
  FILE *fp = a->fp;
  a->fp = NULL;
  if (fclose(fp) != 0) return fail_abort(a, err, "close");
  if (rename(a->tmp, a->path) != 0) return fail_abort(a, err, "rename");
  free(a->tmp);
  a->tmp = NULL;
  return sync_dir(a->path, err);
}
