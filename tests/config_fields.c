/* config_fields - every field of the config file, one dotted path a line
 * ("etcd.tls.ca_file"; a service's own keys as "services.NAME.slots"),
 * blocks before their fields, in the order the loader reads them: walked
 * from the keyword tables the loader reads the file with (config_kw.h), so
 * that `make man-check` (tests/check_man.py) holds slotsync.json(5) to
 * exactly what the code accepts. */
#include <stdio.h>

#include <slotsync/config_kw.h>

static void print_field(const char *path, const struct config_kw *kw, void *arg)
{
    printf("%s\n", path);
}

int main(void)
{
    config_kw_walk(config_kw_root, "", print_field, NULL);
    return ferror(stdout) ? 1 : 0;
}
