#ifndef BERTH_CLINUX_SHIM_H
#define BERTH_CLINUX_SHIM_H
// The Linux file calls Swift's Glibc module leaves out (they need _GNU_SOURCE).
#define _GNU_SOURCE
#include <fcntl.h>

/// Starts writing back the dirty pages of `fd` in [offset, offset + count) without waiting
/// for them (sync_file_range(2), SYNC_FILE_RANGE_WRITE): a later fsync then waits only for
/// what was written since. Not a durability guarantee by itself; 0 or -1 with errno.
static inline int berth_start_writeback(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

/// open(2)'s O_DIRECT on this architecture.
static const int berth_o_direct = O_DIRECT;

#endif
