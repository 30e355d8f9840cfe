/*
 * For the tools that run the data plane in-process without shared config (the fuzz targets,
 * bench/path_profile.c): the EAL makes its runtime directory even with --no-shconf, and nothing
 * uses it after init (no shared config, no IPC, no telemetry), so it is removed at once. An exit
 * handler would not do: libFuzzer leaves by _Exit on a crash, a timeout or an interrupt.
 * Nftw needs _GNU_SOURCE (or _XOPEN_SOURCE 500) before the first system header.
 */
#ifndef OF_RUNTIME_DIR_H
#define OF_RUNTIME_DIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include <rte_eal.h>

static inline int
of_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* 0, or -1 with the directory named on stderr. */
static inline int
of_remove_eal_runtime_dir(void)
{
	const char *dir = rte_eal_get_runtime_dir();

	if (nftw(dir, of_remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0) {
		fprintf(stderr, "cannot remove the EAL runtime directory %s\n", dir);
		return -1;
	}
	return 0;
}

#endif
