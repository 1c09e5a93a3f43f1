/* Parameters, multiply-adds and stage shapes of every variant against the PyTorch models
 * (tests/fixtures/counts.json, written by tools/oracle/gen_counts.py from torchvision and
 * timm; the live tier regenerates it). Exact equality: these are integer counts.
 * Usage: test_counts [counts.json] */
#include <stdlib.h>
#include <string.h>

#include "effnet.h"
#include "io/iofile.h"
#include "io/json.h"
#include "testutil.h"

static int64_t get_int(const json_value *obj, const char *key) {
  const json_value *v = json_get(obj, key);
  return v && v->type == JSON_NUMBER ? (int64_t)v->number : -1;
}

static double get_num(const json_value *obj, const char *key) {
  const json_value *v = json_get(obj, key);
  return v && v->type == JSON_NUMBER ? v->number : -1.0;
}

/* Named members by name; the rest (custom multipliers) from width/depth. */
static int spec_for(const json_value *v, effnet_spec *spec) {
  const json_value *name = json_get(v, "name");
  if (name && name->type == JSON_STRING && effnet_spec_from_name(spec, name->str, NULL) == EFFNET_OK)
    return 1;
  const json_value *fam = json_get(v, "family");
  int lite = (fam && fam->type == JSON_STRING && !strcmp(fam->str, "lite")) ||
             (name && name->type == JSON_STRING && strstr(name->str, "lite"));
  return effnet_spec_custom(spec, lite ? EFFNET_FAMILY_LITE : EFFNET_FAMILY_B,
                            get_num(v, "width"), get_num(v, "depth"), 224, NULL) == EFFNET_OK;
}

static void check_variant(const json_value *v) {
  effnet_spec spec;
  const json_value *name = json_get(v, "name");
  const char *label = name && name->type == JSON_STRING ? name->str : "?";
  if (!spec_for(v, &spec)) {
    CHECK_MSG(0, "%s: cannot build a spec", label);
    return;
  }
  int64_t classes = get_int(v, "num_classes");
  if (classes > 0) spec.num_classes = (int)classes;
  effnet_info info;
  int h = (int)get_int(v, "input_h"), w = (int)get_int(v, "input_w");
  if (h <= 0) h = w = (int)get_int(v, "resolution");
  CHECK(effnet_spec_describe(&spec, h, w, &info, NULL) == EFFNET_OK);
  CHECK_MSG(info.params == get_int(v, "params"), "%s params %lld vs %lld", label,
            (long long)info.params, (long long)get_int(v, "params"));
  CHECK_MSG(info.macs == get_int(v, "macs"), "%s macs %lld vs %lld", label,
            (long long)info.macs, (long long)get_int(v, "macs"));
  CHECK_MSG(info.stem_channels == get_int(v, "stem"), "%s stem", label);
  CHECK_MSG(info.head_channels == get_int(v, "head"), "%s head", label);
  const json_value *stages = json_get(v, "stages");
  CHECK_MSG(stages && stages->type == JSON_ARRAY && stages->count == EFFNET_MAX_STAGES,
            "%s stages", label);
  for (size_t i = 0; stages && i < stages->count && i < EFFNET_MAX_STAGES; i++) {
    const json_value *s = json_at(stages, i);
    CHECK_MSG(info.stages[i].out_channels == get_int(s, "out_channels"), "%s stage %zu channels",
              label, i + 1);
    CHECK_MSG(info.stages[i].repeats == get_int(s, "repeats"), "%s stage %zu repeats", label,
              i + 1);
  }
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "tests/fixtures/counts.json";
  io_map map;
  json_doc *doc = NULL;
  effnet_error err;
  if (io_map_file(&map, path, &err) != EFFNET_OK ||
      json_parse(&doc, map.data, map.len, NULL, path, &err) != EFFNET_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  const json_value *variants = json_get(json_root(doc), "variants");
  CHECK(variants && variants->type == JSON_ARRAY && variants->count >= 15);
  for (const json_value *v = variants ? variants->child : NULL; v; v = v->next) check_variant(v);
  json_free(doc);
  io_unmap(&map);
  return TEST_SUMMARY();
}
