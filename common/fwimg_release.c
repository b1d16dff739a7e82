/* fwimg_release.c - the rules a release must pass before devices may see it
 * (user1.bin + user2.bin, each a sound image for its slot, within the slot
 * budget, for the product's flash layout), each refusal a sentence that names
 * the file and says what to do. Formats its text by hand: no stdio. */
#include "fwimg.h"

#include <string.h>

#include "fota_err.h"

static const char *const slot_file[3] = { NULL, "user1.bin", "user2.bin" };

/* A bounded, always NUL-terminated sentence. */
struct msg {
    char *p;
    size_t cap, len;
};

static void m_str(struct msg *m, const char *s)
{
    while (*s) {
        if (m->p && m->len + 1 < m->cap)
            m->p[m->len] = *s;
        m->len++;
        s++;
    }
    if (m->p && m->cap)
        m->p[m->len + 1 < m->cap ? m->len : m->cap - 1] = '\0';
}

static void m_dec(struct msg *m, uint32_t v)
{
    char b[11];
    int i = 10;

    b[i] = '\0';
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    m_str(m, b + i);
}

static void m_hex(struct msg *m, uint32_t v, int digits)
{
    static const char hx[] = "0123456789ABCDEF";
    char b[11];
    int i;

    b[0] = '0';
    b[1] = 'x';
    for (i = 0; i < digits; i++)
        b[2 + i] = hx[(v >> (4 * (digits - 1 - i))) & 15];
    b[2 + digits] = '\0';
    m_str(m, b);
}

static void m_bytes(struct msg *m, const uint8_t *p, uint32_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    char b[4];
    uint32_t i;

    for (i = 0; i < n; i++) {
        b[0] = hx[p[i] >> 4];
        b[1] = hx[p[i] & 15];
        b[2] = (i + 1 < n) ? ' ' : '\0';
        b[3] = '\0';
        m_str(m, b);
    }
}

static void m_map(struct msg *m, const struct fota_flash_map *fm)
{
    m_str(m, "flash map ");
    m_dec(m, (uint32_t)fm->map);
    m_str(m, " (");
    m_str(m, fm->name);
    m_str(m, ", user2 at ");
    m_hex(m, fm->user2_addr, fm->user2_addr > 0xFFFFF ? 6 : 5);
    m_str(m, ")");
}

static const struct fota_release_file *find(const struct fota_release_file *f, size_t n,
                                            const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (f[i].name && strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

/* Why a non-image file is not an image, with what to do about it. */
static int not_image(struct msg *m, const char *name, const struct fota_fwimg_info *in)
{
    enum fota_fwimg_kind k = fota_fwimg_sniff(in->head, in->head_len);

    m_str(m, name);
    m_str(m, " is ");
    m_str(m, fota_fwimg_kind_name(k));
    switch (k) {
    case FOTA_FWIMG_KIND_EMPTY:
        break;
    case FOTA_FWIMG_KIND_HTML:
        m_str(m, ", not an ESP8266 image (an error page or a browser download?)");
        break;
    case FOTA_FWIMG_KIND_ZIP:
    case FOTA_FWIMG_KIND_GZIP:
        m_str(m, ", not an ESP8266 image: unpack it and upload the ");
        m_str(m, name);
        m_str(m, " inside");
        break;
    case FOTA_FWIMG_KIND_ELF:
        m_str(m, ", not an ESP8266 image: upload the gen_appbin output (bin/upgrade/user?.*.new.*.bin)");
        break;
    default:
        if (k == FOTA_FWIMG_KIND_IMAGE)
            m_str(m, " header but not an OTA image");
        m_str(m, " (it starts with ");
        m_bytes(m, in->head, in->head_len < 4 ? in->head_len : 4);
        m_str(m, "; an OTA image starts with EA 04 or E9 03)");
        break;
    }
    return FOTA_EINVAL;
}

static int freq_ok(int f)
{
    return f == 0 || f == 1 || f == 2 || f == 15;
}

/* FOTA_RELEASE_F_SLOT_BY_NAME: an RTOS 1.x / NONOS 1.x image (EA 04 <mode>
 * <map<<4|freq>) takes its slot from the name if bytes 2-3 are flash settings
 * that agree with the E9 header. 1 if accepted (in->slot set), 0 otherwise. */
static int slot_by_name(struct fota_fwimg_info *in, int slot)
{
    int map = in->byte3 >> 4, freq = in->byte3 & 15;

    if (in->variant != FOTA_FWIMG_VARIANT_LEGACY || in->byte2 > 3 || !fota_flash_map_get(map) ||
        !freq_ok(freq) || in->byte2 != in->flash_mode || map != in->size_map ||
        freq != in->flash_freq)
        return 0;
    in->slot = (enum fota_fwimg_slot)slot;
    in->slot_src = FOTA_FWIMG_SLOTSRC_NAME;
    return 1;
}

/* The refusal of an image whose byte 3 is no slot number. */
static void no_slot_byte(struct msg *m, const char *name, int slot, uint32_t flags,
                         const struct fota_fwimg_info *in)
{
    const uint8_t b23[2] = { in->byte2, in->byte3 };

    m_str(m, name);
    m_str(m, " has no slot number in byte 3 (");
    m_hex(m, in->byte3, 2);
    m_str(m, ", a ");
    m_str(m, fota_fwimg_layout_name(in->layout));
    m_str(m, "/");
    m_str(m, fota_fwimg_variant_name(in->variant));
    if (!(flags & FOTA_RELEASE_F_SLOT_BY_NAME)) {
        m_str(m, " image, e.g. from esptool or an RTOS 1.x SDK), so devices refuse it: ");
        m_str(m, name);
        m_str(m, " must be built by NONOS >= 2.0 gen_appbin with app=");
        m_dec(m, (uint32_t)slot);
        if (in->variant == FOTA_FWIMG_VARIANT_LEGACY)
            m_str(m, " (for devices that do not check byte 3, such as RTOS 1.x clients, "
                     "create the product with slot_check \"name\")");
        return;
    }
    m_str(m, " image) and bytes 2-3 (");
    m_bytes(m, b23, 2);
    m_str(m, ") are not the flash mode, size map and frequency of its E9 header (");
    m_hex(m, in->flash_mode >= 0 ? (uint32_t)in->flash_mode : 0xFFu, 2);
    m_str(m, " ");
    m_hex(m, in->size_map >= 0 ? (uint32_t)(in->size_map << 4 | (in->flash_freq & 15)) : 0xFFu,
          2);
    m_str(m, "): slot_check \"name\" accepts RTOS 1.x / NONOS 1.x gen_appbin images "
             "(EA 04 <flash mode> <size map, frequency>) or a slot number");
}

/* The image is complete and intact: its parse result rc, CRC and segment
 * checksum. 0 or the refusal. */
static int check_integrity(struct msg *m, const char *name, const struct fota_fwimg_info *in, int rc)
{
    if (rc < 0 && rc != FOTA_ECRC && rc != FOTA_ECHECKSUM) {
        m_str(m, name);
        m_str(m, " is not a complete ESP8266 image: ");
        m_str(m, in->error_what ? in->error_what : "parse error");
        m_str(m, " at byte ");
        m_dec(m, in->error_offset);
        return rc;
    }
    if (in->crc_state != FOTA_FWIMG_CRC_VALID) {
        m_str(m, name);
        if (in->crc_state == FOTA_FWIMG_CRC_ABSENT) {
            m_str(m, " has no CRC (an SDK 0.9-style image); NONOS >= 2.0 devices check it");
        } else {
            m_str(m, " has a bad CRC (stored ");
            m_hex(m, in->crc_stored, 8);
            m_str(m, ", computed ");
            m_hex(m, in->crc_computed, 8);
            m_str(m, "): the file is corrupt, truncated or edited");
        }
        return FOTA_ECRC;
    }
    if (!in->checksum_valid) {
        m_str(m, name);
        m_str(m, " has a bad segment checksum (stored ");
        m_hex(m, in->checksum_stored, 2);
        m_str(m, ", computed ");
        m_hex(m, in->checksum_computed, 2);
        m_str(m, "): the boot loader would not start it");
        return FOTA_ECHECKSUM;
    }
    return 0;
}

/* The image is the slot it is uploaded as (byte 3, or its name with
 * FOTA_RELEASE_F_SLOT_BY_NAME). 0 or the refusal. */
static int check_slot_number(struct msg *m, const char *name, int slot, uint32_t flags,
                             struct fota_fwimg_info *in)
{
    if (in->slot == FOTA_FWIMG_SLOT_UNKNOWN && (flags & FOTA_RELEASE_F_SLOT_BY_NAME))
        (void)slot_by_name(in, slot);
    if (in->slot == FOTA_FWIMG_SLOT_UNKNOWN) {
        no_slot_byte(m, name, slot, flags, in);
        return FOTA_ESLOT;
    }
    if (in->slot != (enum fota_fwimg_slot)slot) {
        m_str(m, name);
        m_str(m, " is a ");
        m_str(m, fota_fwimg_slot_name(in->slot));
        m_str(m, " image (byte 3 = ");
        m_dec(m, in->byte3);
        m_str(m, "): ");
        m_str(m, name);
        m_str(m, " must be built by NONOS >= 2.0 gen_appbin with app=");
        m_dec(m, (uint32_t)slot);
        return FOTA_ESLOT;
    }
    return 0;
}

/* The image fits the product's flash map (slot budget, the map it was built
 * for). 0 or the refusal. */
static int check_fits(struct msg *m, const char *name, const struct fota_flash_map *map,
                      const struct fota_fwimg_info *in)
{
    const struct fota_flash_map *built;

    if (!map)
        return 0;
    if (in->total_size > map->slot_budget) {
        m_str(m, name);
        m_str(m, " is ");
        m_dec(m, in->total_size);
        m_str(m, " bytes, more than the ");
        m_dec(m, map->slot_budget);
        m_str(m, "-byte slot budget of ");
        m_map(m, map);
        return FOTA_ETOOBIG;
    }
    if (in->size_map < 0)
        return 0;
    built = fota_flash_map_get(in->size_map);
    if (built && built->user2_addr == map->user2_addr)
        return 0;
    m_str(m, name);
    m_str(m, " is built for flash size map ");
    m_dec(m, (uint32_t)in->size_map);
    if (built) {
        m_str(m, " (");
        m_str(m, built->name);
        m_str(m, ", user2 at ");
        m_hex(m, built->user2_addr, built->user2_addr > 0xFFFFF ? 6 : 5);
        m_str(m, ")");
    } else {
        m_str(m, ", which has no OTA layout");
    }
    m_str(m, " but the product uses ");
    m_map(m, map);
    return FOTA_ECONFIG;
}

/* All checks of one slot image; 0 or the refusal. */
static int check_slot(struct msg *m, const struct fota_flash_map *map, int slot, uint32_t flags,
                      const struct fota_release_file *f, struct fota_fwimg_info *in)
{
    const char *name = slot_file[slot];
    int rc;

    if (f->info) {
        *in = *f->info;
        rc = in->error;
    } else {
        rc = fota_fwimg_parse_flags(f->data, f->data ? f->len : 0, FOTA_FWIMG_F_NO_SHA256, in);
    }
    if (in->head_len == 0 || fota_fwimg_sniff(in->head, in->head_len) != FOTA_FWIMG_KIND_IMAGE ||
        fota_fwimg_check_head(in->head, in->head_len, 0) == FOTA_EMAGIC)
        return not_image(m, name, in);
    if ((rc = check_integrity(m, name, in, rc)) < 0 ||
        (rc = check_slot_number(m, name, slot, flags, in)) < 0)
        return rc;
    return check_fits(m, name, map, in);
}

int fota_fwimg_release_check(const struct fota_flash_map *map,
                             const struct fota_release_file *files, size_t n,
                             char *reason, size_t reason_len)
{
    return fota_fwimg_release_check_flags(map, files, n, 0, reason, reason_len);
}

int fota_fwimg_release_check_flags(const struct fota_flash_map *map,
                                   const struct fota_release_file *files, size_t n,
                                   uint32_t flags, char *reason, size_t reason_len)
{
    struct msg m = { reason, reason_len, 0 };
    struct fota_fwimg_info info[3];
    const struct fota_release_file *f;
    size_t i, j;
    int slot, rc = 0;

    m_str(&m, "");
    if (n > FOTA_RELEASE_MAX_FILES) {
        m_str(&m, "a release has at most 10 files, this one has ");
        m_dec(&m, (uint32_t)n);
        return FOTA_EINVAL;
    }
    if (n && !files)
        return FOTA_EINVAL;
    for (i = 0; i < n; i++) {
        if (!files[i].name || !files[i].name[0]) {
            m_str(&m, "file ");
            m_dec(&m, (uint32_t)i + 1);
            m_str(&m, " of the release has no name");
            return FOTA_EINVAL;
        }
        for (j = 0; j < i; j++)
            if (strcmp(files[i].name, files[j].name) == 0) {
                m_str(&m, files[i].name);
                m_str(&m, " appears twice in the release");
                return FOTA_EINVAL;
            }
    }
    for (slot = 1; slot <= 2; slot++) {
        if (!find(files, n, slot_file[slot])) {
            m_str(&m, slot_file[slot]);
            m_str(&m, " is missing: a release needs both user1.bin and user2.bin");
            if (map) {
                m_str(&m, " for ");
                m_map(&m, map);
            }
            return FOTA_ENOENT;
        }
    }
    for (slot = 1; slot <= 2; slot++) {
        f = find(files, n, slot_file[slot]);
        if ((rc = check_slot(&m, map, slot, flags, f, &info[slot])) < 0)
            return rc;
    }
    if (info[1].size_map >= 0 && info[2].size_map >= 0 && info[1].size_map != info[2].size_map) {
        m_str(&m, "user1.bin is built for flash size map ");
        m_dec(&m, (uint32_t)info[1].size_map);
        m_str(&m, " but user2.bin for map ");
        m_dec(&m, (uint32_t)info[2].size_map);
        m_str(&m, ": build both with the same SPI_SIZE_MAP");
        return FOTA_ECONFIG;
    }
    return 0;
}
