// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* The secret-volume observer's event, as userspace reads it
 * (capture/src/secrets.rs decodes the same layout). */
#ifndef EDGEWISE_SECRETS_H
#define EDGEWISE_SECRETS_H

#include <linux/types.h>

/* Names of the file's path kept, innermost first. */
#define PATH_DEPTH 4
/* Bytes kept of each name, with its NUL. */
#define NAME_MAX_BYTES 64
/* Secret-volume devices the filter holds. */
#define SECRET_VOLUMES_MAX 16384

#define SECRET_COUNTER_EVENTS 0
#define SECRET_COUNTER_LOST 1
#define SECRET_COUNTER_COUNT 2

struct secret_open_event {
	__u64 time_ns;
	__u64 cgroup_id;
	__u32 pid;
	__u32 dev;
	char comm[16];
	__u8 depth;
	__u8 truncated;
	__u8 pad[6];
	char names[PATH_DEPTH][NAME_MAX_BYTES];
};

#endif
