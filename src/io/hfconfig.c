#include "io/hfconfig.h"

#include <stdio.h>
#include <string.h>

#include "io/iofile.h"
#include "io/json.h"

#define HFCONFIG_MAX_BYTES (1 << 20)

int en_hfconfig_architecture(const char *weights_path, char *buf, size_t size) {
  char path[4096];
  const char *slash = strrchr(weights_path, '/');
  int dir_len = slash ? (int)(slash - weights_path) + 1 : 0;
  if (snprintf(path, sizeof path, "%.*sconfig.json", dir_len, weights_path) >= (int)sizeof path)
    return 0;
  io_map map;
  effnet_error err;
  if (io_map_file(&map, path, &err) != EFFNET_OK) return 0;
  int found = 0;
  json_doc *doc = NULL;
  json_options opt = {HFCONFIG_MAX_BYTES * 8, 0};
  if (map.len <= HFCONFIG_MAX_BYTES &&
      json_parse(&doc, map.data, map.len, &opt, path, &err) == EFFNET_OK) {
    const json_value *arch = json_get(json_root(doc), "architecture");
    if (arch && arch->type == JSON_STRING && arch->str_len < size) {
      memcpy(buf, arch->str, arch->str_len + 1);
      found = 1;
    }
  }
  json_free(doc);
  io_unmap(&map);
  return found;
}
