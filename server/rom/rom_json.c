/* rom_json.c - the JSON view of a release, shared by the REST API and the
 * device listing. Field names follow Espressif's where it had one (rom
 * "recommended", file "path"); times are Unix seconds. */
#include <jansson.h>
#include <stdio.h>

#include "http.h"
#include "rom.h"

json_t *fota_rom_json(const struct fota_rom *rom)
{
    json_t *files = json_array();
    for (size_t i = 0; i < rom->nfiles && i < FOTA_ROM_MAX_FILES; i++) {
        const struct fota_rom_file *f = &rom->files[i];
        char path[256];
        snprintf(path, sizeof(path), "/v1/device/rom/?action=download_rom&version=%s&filename=%s",
                 rom->version, f->name);
        json_array_append_new(files, fota_http_json_pack("{s:I, s:I, s:s, s:s, s:I, s:s, s:i, s:I, s:I, s:I, s:i}",
            "id", (json_int_t)f->id, "rom_id", (json_int_t)rom->id, "name", f->name,
            "path", path, "size", (json_int_t)f->size, "sha256", f->sha256, "slot", f->slot,
            "download_count", (json_int_t)f->download_count, "created", (json_int_t)rom->created,
            "updated", (json_int_t)rom->created, "visibly", 1));
    }
    return fota_http_json_pack("{s:I, s:I, s:s, s:s, s:s, s:b, s:b, s:s, s:I, s:I, s:i, s:o}",
                     "id", (json_int_t)rom->id, "product_id", (json_int_t)rom->product_id,
                     "version", rom->version, "codename", rom->codename,
                     "changelog", rom->changelog, "recommended", rom->current != 0,
                     "current", rom->current != 0, "life_cycle", "release",
                     "created", (json_int_t)rom->created, "updated", (json_int_t)rom->created,
                     "visibly", 1, "files", files);
}
