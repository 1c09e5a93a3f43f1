/* EXIF orientation: the Orientation tag (0x0112) of IFD0 of the TIFF block an EXIF payload
 * carries (JPEG APP1 "Exif\0\0", PNG eXIf), and the rotation/flip that makes the picture
 * upright. Reading follows what Pillow's Image.getexif + ImageOps.exif_transpose do, except
 * that a malformed block means "no orientation" instead of an exception. */
#include <stdlib.h>

#include "core/error.h"
#include "image/image.h"

#define TAG_ORIENTATION 0x0112
#define TIFF_SHORT 3
#define TIFF_LONG 4
#define IFD_ENTRY_BYTES 12

typedef struct tiff_reader {
  const uint8_t *p;
  size_t len;
  int big_endian;
} tiff_reader;

/* Callers have checked that off + 2 (or + 4) <= len. */
static unsigned tiff_u16(const tiff_reader *t, size_t off) {
  const uint8_t *b = t->p + off;
  return t->big_endian ? (unsigned)b[0] << 8 | b[1] : (unsigned)b[1] << 8 | b[0];
}

static uint32_t tiff_u32(const tiff_reader *t, size_t off) {
  const uint8_t *b = t->p + off;
  return t->big_endian
             ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]
             : (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}

/* Value of one orientation entry at off, or 0 when its type or count is not a single
 * SHORT/LONG (Pillow would hand back a tuple, which exif_transpose ignores). A count of one
 * always fits in the 4-byte value field, so no out-of-line offset is ever followed. */
static unsigned orientation_entry(const tiff_reader *t, size_t off) {
  unsigned type = tiff_u16(t, off + 2);
  uint32_t count = tiff_u32(t, off + 4);
  if (count != 1) return 0;
  if (type == TIFF_SHORT) return tiff_u16(t, off + 8);
  if (type == TIFF_LONG) {
    uint32_t v = tiff_u32(t, off + 8);
    return v <= 8 ? (unsigned)v : 0;
  }
  return 0;
}

int img_exif_orientation(const uint8_t *tiff, size_t len) {
  if (!tiff || len < 8) return 1;
  tiff_reader t = {tiff, len, 0};
  if (tiff[0] == 'M' && tiff[1] == 'M') t.big_endian = 1;
  else if (!(tiff[0] == 'I' && tiff[1] == 'I')) return 1;
  if (tiff_u16(&t, 2) != 42) return 1;
  uint32_t ifd = tiff_u32(&t, 4);
  if (ifd > len || len - ifd < 2) return 1;
  unsigned entries = tiff_u16(&t, ifd);
  int orientation = 1;
  /* Pillow keeps the entries it could read before the data ran out, and a later duplicate
   * tag replaces an earlier one; an out-of-range value means "leave the image alone". */
  for (size_t i = 0, off = (size_t)ifd + 2; i < entries; i++, off += IFD_ENTRY_BYTES) {
    if (len - off < IFD_ENTRY_BYTES) break;
    if (tiff_u16(&t, off) != TAG_ORIENTATION) continue;
    unsigned v = orientation_entry(&t, off);
    orientation = v >= 1 && v <= 8 ? (int)v : 1;
  }
  return orientation;
}

/* Source pixel of output (x, y) for an input of in_w x in_h. The names are Pillow's
 * Image.Transpose members that exif_transpose picks for each orientation. */
static void source_pixel(int orientation, int x, int y, int in_w, int in_h, int *sx, int *sy) {
  switch (orientation) {
    case 2: *sx = in_w - 1 - x; *sy = y; break;                /* FLIP_LEFT_RIGHT */
    case 3: *sx = in_w - 1 - x; *sy = in_h - 1 - y; break;     /* ROTATE_180 */
    case 4: *sx = x; *sy = in_h - 1 - y; break;                /* FLIP_TOP_BOTTOM */
    case 5: *sx = y; *sy = x; break;                           /* TRANSPOSE */
    case 6: *sx = y; *sy = in_h - 1 - x; break;                /* ROTATE_270 (clockwise) */
    case 7: *sx = in_w - 1 - y; *sy = in_h - 1 - x; break;     /* TRANSVERSE */
    case 8: *sx = in_w - 1 - y; *sy = x; break;                /* ROTATE_90 (anticlockwise) */
    default: *sx = x; *sy = y; break;
  }
}

effnet_status img_apply_orientation(effnet_image *im, int orientation, const char *label,
                                    effnet_error *err) {
  if (orientation < 2 || orientation > 8) return EFFNET_OK;
  int swap = orientation >= 5; /* the last four exchange width and height */
  int out_w = swap ? im->height : im->width, out_h = swap ? im->width : im->height;
  unsigned char *rgb = malloc((size_t)out_w * (size_t)out_h * 3);
  if (!rgb)
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory applying EXIF orientation", label);
  for (int y = 0; y < out_h; y++) {
    for (int x = 0; x < out_w; x++) {
      int sx, sy;
      source_pixel(orientation, x, y, im->width, im->height, &sx, &sy);
      const unsigned char *s = im->rgb + ((size_t)sy * (size_t)im->width + (size_t)sx) * 3;
      unsigned char *d = rgb + ((size_t)y * (size_t)out_w + (size_t)x) * 3;
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  free(im->rgb);
  im->rgb = rgb;
  im->width = out_w;
  im->height = out_h;
  return EFFNET_OK;
}
