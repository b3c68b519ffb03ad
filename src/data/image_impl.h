/* image_impl.h: what the image codecs (image.c) share with the JPEG-to-input path
 * (image_jpeg_input.c): the per-thread JPEG decoder and the header checks every JPEG decode
 * starts with.  Not part of the public API. */
#ifndef COMINE_IMAGE_IMPL_H
#define COMINE_IMAGE_IMPL_H

#include <turbojpeg.h>

#include "comine/data.h"

/* A new decompressor for this thread's next image, with no tables from earlier ones (NULL when
 * TurboJPEG cannot make one); it is kept until the next call or until the thread exits. */
tjhandle comine_jpeg_decoder(void);
/* Forget this thread's decompressor (after a failure: the next image starts clean). */
void comine_jpeg_decoder_drop(void);
/* A format error "NAME: WHAT (TurboJPEG's reason)"; drops this thread's decompressor. */
comine_status comine_jpeg_fail(tjhandle tj, const char *name, const char *what);
/* Read the header of a JPEG into a new decompressor (*tj_out) and check it: a frame, a size
 * within the decoders' limits, not CMYK.  Messages name the image `name`. */
comine_status comine_jpeg_header(tjhandle *tj_out, int *w, int *h, int *subsamp, int *colorspace, const uint8_t *data,
                                 size_t size, const char *name);

#endif
