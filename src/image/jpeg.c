/* JPEG decoding with libjpeg-turbo, set up the way Pillow's JpegDecode uses it so the pixels
 * equal Image.open(path).convert("RGB"): libjpeg's defaults (islow IDCT, fancy upsampling),
 * YCbCr/RGB -> RGB by libjpeg, gray replicated, CMYK/YCCK converted with Pillow's formula.
 *
 * libjpeg reports errors by calling error_exit (default: print and exit()) and warnings via
 * emit_message/output_message (default: print). Both are replaced: errors longjmp back
 * here; warnings are ignored as Pillow ignores them, except "premature end of data", because
 * Pillow raises "image file is truncated" where libjpeg would quietly pad with gray. */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"
#include "image/image.h"

/* A legitimate progressive JPEG has about ten scans; thousands of tiny scans are a known way
 * to make a small file take minutes (the limit TurboJPEG 3 recommends). */
#define JPEG_MAX_SCANS 500

typedef struct jpeg_guard {
  struct jpeg_error_mgr pub;       /* first: libjpeg casts cinfo->err to this */
  struct jpeg_progress_mgr progress;
  jmp_buf jump;
  effnet_status status;
  char message[JMSG_LENGTH_MAX];
  unsigned char *volatile row;     /* freed on the longjmp path, hence volatile */
} jpeg_guard;

static effnet_status status_of(int msg_code) {
  switch (msg_code) {
    case JERR_IMAGE_TOO_BIG: return EFFNET_E_LIMIT;
    case JERR_OUT_OF_MEMORY: return EFFNET_E_NOMEM;
    case JERR_BAD_PRECISION:   /* 12-bit: this build of libjpeg (and Pillow) is 8-bit only */
    case JERR_NOT_COMPILED:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_ARITH_NOTIMPL: return EFFNET_E_UNSUPPORTED;
    default: return EFFNET_E_FORMAT;
  }
}

static void guard_error_exit(j_common_ptr cinfo) {
  jpeg_guard *g = (jpeg_guard *)cinfo->err;
  cinfo->err->format_message(cinfo, g->message);
  g->status = status_of(cinfo->err->msg_code);
  longjmp(g->jump, 1);
}

static void guard_emit_message(j_common_ptr cinfo, int msg_level) {
  jpeg_guard *g = (jpeg_guard *)cinfo->err;
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    snprintf(g->message, sizeof g->message, "truncated file (premature end of JPEG data)");
    g->status = EFFNET_E_FORMAT;
    longjmp(g->jump, 1);
  }
}

static void guard_output_message(j_common_ptr cinfo) { (void)cinfo; /* never print */ }

static void guard_progress(j_common_ptr cinfo) {
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  if (d->input_scan_number > JPEG_MAX_SCANS) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    snprintf(g->message, sizeof g->message, "more than %d scans", JPEG_MAX_SCANS);
    g->status = EFFNET_E_LIMIT;
    longjmp(g->jump, 1);
  }
}

/* Orientation from the first APP1 segment that starts "Exif\0": Pillow keeps only that one
 * (JpegImagePlugin.APP) and strips a following "\0" before parsing the TIFF block. */
static int jpeg_orientation(j_decompress_ptr cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 5 || memcmp(m->data, "Exif", 5) != 0)
      continue;
    if (m->data_length < 6 || m->data[5] != 0) return 1;
    return img_exif_orientation(m->data + 6, m->data_length - 6);
  }
  return 1;
}

/* Pillow's cmyk2rgb after its "CMYK;I" unpacking (it assumes Adobe's inverted CMYK for
 * every CMYK JPEG): ink = 255 - stored, then channel = (255 - K) - ink * (255 - K) / 255
 * with its rounded division by 255. */
static unsigned char cmyk_channel(unsigned stored_ink, unsigned stored_k) {
  unsigned ink = 255 - stored_ink, nk = stored_k; /* nk = 255 - (255 - stored_k) */
  unsigned t = ink * nk + 128;
  unsigned scaled = ((t >> 8) + t) >> 8;
  return (unsigned char)(nk - scaled);
}

static void convert_row(const unsigned char *in, int components, int width,
                        unsigned char *out) {
  for (int x = 0; x < width; x++, out += 3) {
    if (components == 1) {
      out[0] = out[1] = out[2] = in[x];
    } else {
      const unsigned char *p = in + (size_t)x * 4;
      out[0] = cmyk_channel(p[0], p[3]);
      out[1] = cmyk_channel(p[1], p[3]);
      out[2] = cmyk_channel(p[2], p[3]);
    }
  }
}

/* Pick the output colour space from the component count, as Pillow picks its mode
 * (JpegImagePlugin.SOF: 1 -> L, 3 -> RGB, 4 -> CMYK, anything else refused). */
static effnet_status choose_color_space(j_decompress_ptr cinfo, const char *label,
                                        effnet_error *err) {
  switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; return EFFNET_OK;
    case 3: cinfo->out_color_space = JCS_RGB; return EFFNET_OK;
    case 4: cinfo->out_color_space = JCS_CMYK; return EFFNET_OK; /* libjpeg turns YCCK to CMYK */
    default:
      return en_fail(err, EFFNET_E_UNSUPPORTED, "%s: JPEG with %d colour components", label,
                     cinfo->num_components);
  }
}

static void read_pixels(j_decompress_ptr cinfo, jpeg_guard *g, effnet_image *out) {
  int width = (int)cinfo->output_width;
  size_t stride = (size_t)width * 3;
  while (cinfo->output_scanline < cinfo->output_height) {
    unsigned char *dst = out->rgb + (size_t)cinfo->output_scanline * stride;
    JSAMPROW row = cinfo->out_color_space == JCS_RGB ? dst : g->row;
    jpeg_read_scanlines(cinfo, &row, 1);
    if (row != dst) convert_row(row, cinfo->output_components, width, dst);
  }
}

effnet_status img_decode_jpeg(effnet_image *out, int *orientation, const uint8_t *data,
                              size_t size, const char *label, effnet_error *err) {
  struct jpeg_decompress_struct cinfo;
  jpeg_guard g;
  memset(&g, 0, sizeof g);
  cinfo.err = jpeg_std_error(&g.pub);
  g.pub.error_exit = guard_error_exit;
  g.pub.emit_message = guard_emit_message;
  g.pub.output_message = guard_output_message;
  g.progress.progress_monitor = guard_progress;
  *orientation = 1;

  if (setjmp(g.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(g.row);
    effnet_image_free(out);
    return en_fail(err, g.status, "%s: %s", label, g.message);
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &g.progress;
  jpeg_mem_src(&cinfo, data, size > ULONG_MAX ? ULONG_MAX : (unsigned long)size);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);

  effnet_status st = img_check_dims(cinfo.image_width, cinfo.image_height, label, err);
  if (st == EFFNET_OK) st = choose_color_space(&cinfo, label, err);
  if (st != EFFNET_OK) {
    jpeg_destroy_decompress(&cinfo);
    return st;
  }
  *orientation = jpeg_orientation(&cinfo);

  /* For a progressive file this reads every scan, so truncation is caught before the
   * output is allocated. */
  jpeg_start_decompress(&cinfo);
  int width = (int)cinfo.output_width, height = (int)cinfo.output_height;
  if (cinfo.out_color_space != JCS_RGB) { /* gray and CMYK rows are converted from here */
    g.row = malloc((size_t)width * 4);
    if (!g.row) st = en_fail(err, EFFNET_E_NOMEM, "%s: out of memory", label);
  }
  if (st == EFFNET_OK) st = img_alloc(out, width, height, label, err);
  if (st != EFFNET_OK) {
    jpeg_destroy_decompress(&cinfo);
    free(g.row);
    return st;
  }
  read_pixels(&cinfo, &g, out);
  /* No jpeg_finish_decompress: like Pillow, once every row is decoded a missing EOI or
   * trailing garbage does not matter. */
  jpeg_destroy_decompress(&cinfo);
  free(g.row);
  return EFFNET_OK;
}
