/* arduino_img_fuzz.c - libFuzzer target for the Arduino .bin validator: any
 * bytes give a report whose facts stay inside the input (an accepted image's
 * walk ends within the file, its sketch checksum is the byte before
 * sketch_size), and the device verdict on the same bytes does not crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arduino_img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fota_arduino_img_info in;
    int rc = fota_arduino_img_parse(data, size, &in);

    if (rc != in.error || (rc == 0) != (in.reason == NULL))
        abort();
    if (rc == 0) {
        if (in.sketch_size > size || in.sketch_size % 16 != 0 ||
            in.sketch_size + in.trailing != size || in.eboot.end > FOTA_ARDUINO_SKETCH_OFF ||
            in.sketch.end != in.sketch_size || in.flash_mode < 0 || in.flash_mode > 3 ||
            in.flash_size == 0 || data[in.sketch_size - 1] != in.sketch.checksum_stored ||
            in.sketch_csum == FOTA_ARDUINO_CSUM_BAD)
            abort();
    } else if (in.error_offset > size) {
        abort();
    }
    (void)fota_arduino_device_verdict(data, size, size, size ? data[0] * 65536u : 0,
                                      4u << 20, size & 1);
    return 0;
}
