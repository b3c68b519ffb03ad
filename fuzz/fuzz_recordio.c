/* fuzz_recordio.c: libFuzzer harness of RecordIO data sets: PREFIX.rec and PREFIX.idx
 * opened with comine_dataset_open, then every record read back.  Input: a u16 length L,
 * then L bytes of .idx text, then the .rec bytes. */
#include "fuzz_common.h"

#include "comine/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t L = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2;
    size -= 2;
    if (L > size) L = size;
    char *idx = fz_write("train.idx", data, L);
    char *rec = fz_write("train.rec", data + L, size - L);
    comine_dataset *ds = NULL;
    if (comine_dataset_open(&ds, rec, NULL) == COMINE_OK) {
        COMINE_ASSERT(ds->n > 0 && ds->num_classes > 0);
        for (int i = 0; i < ds->n && i < 64; i++) {
            COMINE_ASSERT(ds->samples[i].label >= 0 && ds->samples[i].label < ds->num_classes);
            uint8_t *bytes;
            size_t n;
            if (comine_dataset_read(ds, i, &bytes, &n) == COMINE_OK) free(bytes);
            (void)comine_dataset_sample_name(ds, i);
        }
    }
    if (ds) comine_dataset_free(ds);
    free(idx);
    free(rec);
    return 0;
}
