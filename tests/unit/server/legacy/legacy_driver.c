/* legacy_driver.c - fota-legacy-test-driver: runs the legacy drop-in mode on its own, so the
 * integration tests can exercise it without fotad (they prefer `fotad legacy` when built). */
#include "legacy.h"

int main(int argc, char **argv)
{
    return fota_legacy_dropin_main(argc, argv);
}
