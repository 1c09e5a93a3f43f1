/* Public image entry points: format detection from the signature, the size caps, and EXIF
 * orientation applied after decoding.
 *
 * The one deliberate difference from what PIL/torchvision users get: PIL's Image.open does
 * not apply the EXIF orientation (ImageOps.exif_transpose must be called explicitly), so a
 * phone photo reaches torchvision lying on its side. We apply it, because a user asking for
 * a prediction expects the picture the camera showed. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/image.h"
#include "io/iofile.h"

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

effnet_status img_check_dims(uint64_t width, uint64_t height, const char *label,
                             effnet_error *err) {
  if (width == 0 || height == 0)
    return en_fail(err, EFFNET_E_FORMAT, "%s: image has a zero side (%llux%llu)", label,
                   (unsigned long long)width, (unsigned long long)height);
  if (width > EFFNET_IMAGE_MAX_SIDE || height > EFFNET_IMAGE_MAX_SIDE)
    return en_fail(err, EFFNET_E_LIMIT, "%s: %llux%llu image exceeds the %d-pixel side limit",
                   label, (unsigned long long)width, (unsigned long long)height,
                   EFFNET_IMAGE_MAX_SIDE);
  /* both sides <= 65535 here, so the product cannot overflow */
  if ((int64_t)(width * height) > EFFNET_IMAGE_MAX_PIXELS)
    return en_fail(err, EFFNET_E_LIMIT, "%s: %llux%llu image exceeds the %lld-pixel limit",
                   label, (unsigned long long)width, (unsigned long long)height,
                   (long long)EFFNET_IMAGE_MAX_PIXELS);
  return EFFNET_OK;
}

effnet_status img_alloc(effnet_image *out, int width, int height, const char *label,
                        effnet_error *err) {
  size_t bytes = (size_t)width * (size_t)height * 3;
  out->rgb = malloc(bytes);
  if (!out->rgb)
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory for %dx%d pixels", label, width,
                   height);
  out->width = width;
  out->height = height;
  return EFFNET_OK;
}

void effnet_image_free(effnet_image *image) {
  if (!image) return;
  free(image->rgb);
  image->rgb = NULL;
  image->width = image->height = 0;
}

effnet_status effnet_image_decode(effnet_image *out, const void *data, size_t size,
                                  const char *label, effnet_error *err) {
  if (!label) label = "image";
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "%s: NULL output image", label);
  memset(out, 0, sizeof *out);
  if (!data && size) return en_fail(err, EFFNET_E_ARGUMENT, "%s: NULL data", label);
  if (size == 0) return en_fail(err, EFFNET_E_FORMAT, "%s: empty file, not an image", label);

  const uint8_t *bytes = data;
  int orientation = 1;
  effnet_status st;
  if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
    st = img_decode_jpeg(out, &orientation, bytes, size, label, err);
  else if (size >= sizeof png_signature && memcmp(bytes, png_signature, sizeof png_signature) == 0)
    st = img_decode_png(out, &orientation, bytes, size, label, err);
  else
    return en_fail(err, EFFNET_E_FORMAT, "%s: not a JPEG or PNG image (unknown signature)",
                   label);
  if (st != EFFNET_OK) return st;

  st = img_apply_orientation(out, orientation, label, err);
  if (st != EFFNET_OK) effnet_image_free(out);
  return st;
}

effnet_status effnet_image_load(effnet_image *out, const char *path, effnet_error *err) {
  if (!out) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_image_load: NULL output image");
  memset(out, 0, sizeof *out);
  if (!path) return en_fail(err, EFFNET_E_ARGUMENT, "effnet_image_load: NULL path");
  io_map map;
  effnet_status st = io_map_file(&map, path, err);
  if (st != EFFNET_OK) return st;
  st = effnet_image_decode(out, map.data, map.len, path, err);
  io_unmap(&map);
  return st;
}
