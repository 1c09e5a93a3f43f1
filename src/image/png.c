/* PNG decoding with libpng, converted to RGB the way Pillow's Image.open(path).convert("RGB")
 * converts: 1/2/4-bit gray scaled to 0..255 (bit replication), 16-bit samples keep their
 * high byte, alpha and tRNS dropped without compositing, palette indices looked up (indices
 * past the PLTE get Pillow's default gray ramp), no gamma, sBIT or ICC correction.
 * One difference: Pillow opens 16-bit grayscale as mode "I" and convert("RGB") clips those
 * values to 255; we take the high byte like every other 16-bit type, so a 16-bit gray photo
 * keeps its tones instead of turning white.
 *
 * libpng's default error handler longjmps to png_jmpbuf after printing; ours records the
 * message and longjmps to our own buffer, and warnings are dropped, so nothing is printed. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/image.h"

/* Ancillary chunks are not needed for pixels: bound what a hostile file can make libpng
 * keep (libpng 1.6's own defaults, set explicitly so a distribution's build cannot raise
 * them). */
#define PNG_MAX_CACHED_CHUNKS 1000
#define PNG_MAX_CHUNK_BYTES (8u << 20)

typedef struct png_guard {
  jmp_buf jump;
  char message[200];
  int out_of_memory;
  volatile int rows_done; /* all rows decoded: later trouble is ignored, as in Pillow */
  const uint8_t *data;
  size_t size, pos;
  unsigned char *volatile rows;    /* freed on the longjmp path, hence volatile */
} png_guard;

static void guard_error(png_structp png, png_const_charp msg) {
  png_guard *g = png_get_error_ptr(png);
  snprintf(g->message, sizeof g->message, "%s", msg);
  longjmp(g->jump, 1);
}

static void guard_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg; /* libpng warns about benign oddities (bad ancillary CRC, unknown sRGB...) */
}

static png_voidp guard_malloc(png_structp png, png_alloc_size_t size) {
  void *p = malloc(size);
  if (!p) ((png_guard *)png_get_mem_ptr(png))->out_of_memory = 1;
  return p;
}

static void guard_free(png_structp png, png_voidp p) {
  (void)png;
  free(p);
}

static void guard_read(png_structp png, png_bytep buf, size_t n) {
  png_guard *g = png_get_io_ptr(png);
  if (n > g->size - g->pos) png_error(png, "truncated file (premature end of PNG data)");
  memcpy(buf, g->data + g->pos, n);
  g->pos += n;
}

/* Pillow's palette starts as a gray ramp (ImagingPaletteNew) and the PLTE overwrites the
 * first entries, so an index past the PLTE reads as gray level = index. */
static void build_palette(png_structp png, png_infop info, unsigned char table[256][3]) {
  for (int i = 0; i < 256; i++) table[i][0] = table[i][1] = table[i][2] = (unsigned char)i;
  png_colorp plte = NULL;
  int n = 0;
  if (png_get_PLTE(png, info, &plte, &n) & PNG_INFO_PLTE) {
    for (int i = 0; i < n && i < 256; i++) {
      table[i][0] = plte[i].red;
      table[i][1] = plte[i].green;
      table[i][2] = plte[i].blue;
    }
  }
}

/* One decoded row (8-bit samples, `channels` per pixel) to RGB. */
static void convert_row(const unsigned char *in, int channels, int palette,
                        const unsigned char table[256][3], int width, unsigned char *out) {
  for (int x = 0; x < width; x++, out += 3) {
    const unsigned char *p = in + (size_t)x * (size_t)channels;
    if (palette) {
      memcpy(out, table[p[0]], 3);
    } else if (channels <= 2) { /* gray, gray + alpha */
      out[0] = out[1] = out[2] = p[0];
    } else { /* RGB, RGBA */
      out[0] = p[0];
      out[1] = p[1];
      out[2] = p[2];
    }
  }
}

/* Orientation from an eXIf chunk, before or after the image data (Pillow puts either in
 * info["exif"], which exif_transpose reads). */
static int png_orientation(png_structp png, png_infop info) {
  png_uint_32 len = 0;
  png_bytep exif = NULL;
  if (png_get_eXIf_1(png, info, &len, &exif) & PNG_INFO_eXIf)
    return img_exif_orientation(exif, len);
  return 1;
}

/* Transformations to 8-bit samples with no change of meaning: strip_16 keeps the high
 * byte (scale_16 would round, Pillow does not); sub-byte gray is bit-replicated;
 * sub-byte palette indices are unpacked to one byte each. */
static void set_transforms(png_structp png, int bit_depth, int color_type) {
  if (bit_depth == 16) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth < 8) png_set_packing(png);
}

static void read_rows(png_structp png, png_infop info, png_guard *g, effnet_image *out,
                      int passes) {
  int width = out->width, height = out->height;
  int channels = png_get_channels(png, info);
  int palette = png_get_color_type(png, info) == PNG_COLOR_TYPE_PALETTE;
  size_t rowbytes = png_get_rowbytes(png, info);
  if (channels < 1 || channels > 4 || rowbytes != (size_t)width * (size_t)channels)
    png_error(png, "unexpected row layout after transformations");
  unsigned char table[256][3];
  if (palette) build_palette(png, info, table);
  /* Interlaced images arrive in 7 passes that each touch every row: keep them all. */
  size_t kept = passes > 1 ? (size_t)height : 1;
  g->rows = malloc(kept * rowbytes);
  if (!g->rows) {
    g->out_of_memory = 1;
    png_error(png, "out of memory for rows");
  }
  for (int pass = 0; pass < passes; pass++)
    for (int y = 0; y < height; y++) {
      unsigned char *row = g->rows + (passes > 1 ? (size_t)y * rowbytes : 0);
      png_read_row(png, row, NULL);
      if (pass == passes - 1)
        convert_row(row, channels, palette, (const unsigned char(*)[3])table, width,
                    out->rgb + (size_t)y * (size_t)width * 3);
    }
  g->rows_done = 1;
}

effnet_status img_decode_png(effnet_image *out, int *orientation, const uint8_t *data,
                             size_t size, const char *label, effnet_error *err) {
  png_guard g;
  memset(&g, 0, sizeof g);
  g.data = data;
  g.size = size;
  *orientation = 1;
  png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &g, guard_error,
                                             guard_warning, &g, guard_malloc, guard_free);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return en_fail(err, EFFNET_E_NOMEM, "%s: out of memory starting libpng", label);
  }
  if (setjmp(g.jump)) {
    if (g.rows_done) *orientation = png_orientation(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    free(g.rows);
    if (g.rows_done) return EFFNET_OK; /* only the trailer after the pixels was bad */
    effnet_image_free(out);
    return en_fail(err, g.out_of_memory ? EFFNET_E_NOMEM : EFFNET_E_FORMAT, "%s: %s", label,
                   g.message);
  }
  png_set_read_fn(png, &g, guard_read);
  /* libpng's own cap (1e6 per side) would reject before ours with a generic error; ours
   * are the ones that apply, with EFFNET_E_LIMIT. */
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_cache_max(png, PNG_MAX_CACHED_CHUNKS);
  png_set_chunk_malloc_max(png, PNG_MAX_CHUNK_BYTES);
  png_read_info(png, info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
  effnet_status st = img_check_dims(width, height, label, err);
  if (st == EFFNET_OK) st = img_alloc(out, (int)width, (int)height, label, err);
  if (st != EFFNET_OK) {
    png_destroy_read_struct(&png, &info, NULL);
    return st;
  }
  set_transforms(png, bit_depth, color_type);
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  read_rows(png, info, &g, out, passes);
  png_read_end(png, info); /* for an eXIf after the image data */
  *orientation = png_orientation(png, info);
  png_destroy_read_struct(&png, &info, NULL);
  free(g.rows);
  return EFFNET_OK;
}
