/* optfile - command-line options read from a file, for units that start one
 * process per file (slotsync-announce@.service reads
 * /etc/slotsync/announce/%i.conf).
 *
 * The format: one option a line, "NAME VALUE" (NAME is the long option
 * without its "--", VALUE the rest of the line with the blanks around it
 * removed, spaces inside kept, no quoting), or "NAME" alone for an option
 * without a value. Blank lines and lines whose first non-blank character is
 * '#' are ignored. NAME is [a-z0-9-]+; control characters are refused.
 * Pure logic: no I/O but the read of the file in optfile_expand().
 */
#ifndef SLOTSYNC_OPTFILE_H
#define SLOTSYNC_OPTFILE_H

#include <stddef.h>

#define OPTFILE_MAX (64 * 1024) /* a bigger file is refused */

/* Parse text (len bytes) into *args, a new NULL-terminated array of new
 * strings ("--NAME", then "VALUE" when there is one), *n_args its length.
 * Returns 0, or -EINVAL with *errmsg naming the line ("line 3: ..."), or
 * -ENOMEM. The caller frees with optfile_free(). */
int optfile_parse(const char *text, size_t len, char ***args, size_t *n_args, char **errmsg);

/* Replace each "--options-file FILE" (or "--options-file=FILE") in argv
 * (argc entries, argv[0] kept) by the options FILE holds, in place, into a
 * new NULL-terminated *out (its strings borrowed from argv or owned by
 * *owned, *n_out its length). Nothing after a "--" is touched. Returns 0, or
 * a negative errno with *errmsg naming the file. The caller frees *out and
 * optfile_free(*owned). */
int optfile_expand(int argc, char **argv, char ***out, int *n_out, char ***owned, char **errmsg);

void optfile_free(char **args);

#endif
