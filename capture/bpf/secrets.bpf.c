// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/* edgewise's secret-volume observer: one program body on file opens that
 * reports reads of files inside secret volumes. It comes in three
 * attachments, and the loader picks the first the kernel allows: the BPF
 * LSM hook file_open (where the kernel runs BPF LSM), fentry on
 * security_file_open (which every open passes through), or the exits of
 * the open, openat and openat2 system calls (tracepoints, for kernels that
 * refuse BPF trampolines), where the new descriptor leads to the file
 * through the task's file table. The tracepoints do not see opens made
 * through io_uring.
 *
 * A secret volume is a tmpfs the kubelet mounts for a pod (kubernetes.io~secret
 * and kubernetes.io~projected volumes); containers see it through bind
 * mounts, so no path inside a container names it, but every mount of it
 * shares its superblock. Userspace puts the device numbers of those
 * superblocks into secret_volumes (from the mount table); an open of any
 * other file costs three loads and one hash lookup, and is not counted.
 *
 * Reported: opens for reading (not for writing: that is the kubelet
 * updating the volume) of regular files on those devices, with the
 * opener's cgroup v2 id, pid (in the initial pid namespace), command, the
 * device, and the file's path inside the volume (innermost name first,
 * PATH_DEPTH names at most). The ring being full is counted, never hidden. */
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "secrets.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PAI __attribute__((preserve_access_index))

/* The kernel's own layouts, only the fields read; CO-RE finds them in the
 * running kernel's BTF by name (d_name sits in an anonymous union since
 * 6.14). Every read goes through BPF_CORE_READ, so the body is the same
 * for the tracepoints, whose file is not typed for the verifier. */
struct qstr {
	const unsigned char *name;
} PAI;

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
} PAI;

struct super_block {
	__u32 s_dev;
} PAI;

struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
} PAI;

struct path {
	struct dentry *dentry;
} PAI;

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_mode;
} PAI;

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} PAI;

struct files_struct {
	struct fdtable *fdt;
} PAI;

struct task_struct {
	struct files_struct *files;
} PAI;

/* A system call's exit, as its tracepoint lays it out (the format file of
 * events/syscalls/sys_exit_openat). */
struct syscall_exit {
	__u64 common;
	__s32 syscall_nr;
	__s64 ret;
};

#define S_IFMT 00170000
#define S_IFREG 0100000
#define FMODE_WRITE 0x2

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} secret_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SECRET_VOLUMES_MAX);
	__type(key, __u32);
	__type(value, __u8);
} secret_volumes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SECRET_COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} secret_counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *value = bpf_map_lookup_elem(&secret_counters, &which);
	if (value)
		*value += 1;
}

static __always_inline int report(struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (!inode)
		return 0;
	__u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
	if (!bpf_map_lookup_elem(&secret_volumes, &dev))
		return 0;
	unsigned short mode = BPF_CORE_READ(inode, i_mode);
	unsigned int fmode = BPF_CORE_READ(file, f_mode);
	if ((mode & S_IFMT) != S_IFREG || (fmode & FMODE_WRITE))
		return 0;
	struct secret_open_event *event =
		bpf_ringbuf_reserve(&secret_events, sizeof(*event), 0);
	if (!event) {
		count(SECRET_COUNTER_LOST);
		return 0;
	}
	event->time_ns = bpf_ktime_get_ns();
	event->cgroup_id = bpf_get_current_cgroup_id();
	event->pid = bpf_get_current_pid_tgid() >> 32;
	event->dev = dev;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	event->depth = 0;
	event->truncated = 0;
	__builtin_memset(event->pad, 0, sizeof(event->pad));
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	for (int i = 0; i < PATH_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		event->names[i][0] = 0;
		if (!parent || parent == dentry)
			break;
		bpf_probe_read_kernel_str(event->names[i], NAME_MAX_BYTES,
					  BPF_CORE_READ(dentry, d_name.name));
		event->depth = i + 1;
		dentry = parent;
	}
	if (event->depth == PATH_DEPTH) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		event->truncated = parent && parent != dentry;
	}
	bpf_ringbuf_submit(event, 0);
	count(SECRET_COUNTER_EVENTS);
	return 0;
}

SEC("lsm/file_open")
int secret_open_lsm(unsigned long long *ctx)
{
	return report((struct file *)ctx[0]);
}

SEC("fentry/security_file_open")
int secret_open_fentry(unsigned long long *ctx)
{
	return report((struct file *)ctx[0]);
}

/* The file a system call just opened, from the descriptor it returned:
 * the task's file table read by plain loads (a BTF task pointer), the
 * table's slot and the file's fields by probe reads. */
static __always_inline int report_descriptor(struct syscall_exit *exit)
{
	__s64 fd = exit->ret;
	if (fd < 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	if (!files)
		return 0;
	struct fdtable *table = files->fdt;
	if (!table || fd >= table->max_fds)
		return 0;
	struct file **slots = table->fd;
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &slots[fd]) || !file)
		return 0;
	return report(file);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int secret_exit_openat(struct syscall_exit *exit)
{
	return report_descriptor(exit);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int secret_exit_openat2(struct syscall_exit *exit)
{
	return report_descriptor(exit);
}

SEC("tracepoint/syscalls/sys_exit_open")
int secret_exit_open(struct syscall_exit *exit)
{
	return report_descriptor(exit);
}
