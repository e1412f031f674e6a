/* Feature shims for the native core: syscalls that older C libraries do not wrap, and the
 * atomics the result ring needs, spelled once. Linux only. */
#ifndef TACH_COMPAT_H
#define TACH_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <linux/futex.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif

static inline int tach_pidfd_open(pid_t pid, unsigned int flags) {
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

static inline int tach_pidfd_send_signal(int pidfd, int sig, unsigned int flags) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags);
}

/* A fork-like clone: no new stack, no CLONE_VM, SIGCHLD on exit, so the child returns from
 * this call on a copy of the caller's stack exactly as from fork(). glibc's clone() wrapper
 * needs a function and a stack, which cannot "return twice", hence the raw syscall. The
 * argument order of SYS_clone on x86-64 and arm64 is (flags, stack, ptid, ctid, tls). */
static inline pid_t tach_clone_fork(unsigned long flags) {
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
}

/* futex on a 32-bit word of a MAP_SHARED mapping: never FUTEX_PRIVATE_FLAG, since the
 * waiter and the waker are different processes. */
static inline int tach_futex_wait(uint32_t *addr, uint32_t expected, const struct timespec *timeout) {
    return (int)syscall(SYS_futex, addr, FUTEX_WAIT, expected, timeout, NULL, 0);
}

static inline int tach_futex_wake(uint32_t *addr, int count) {
    return (int)syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
}

/* Acquire/release atomics on shared words. */
static inline uint64_t tach_load_acquire_u64(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void tach_store_release_u64(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint32_t tach_load_acquire_u32(const uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void tach_store_release_u32(uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint32_t tach_exchange_u32(uint32_t *p, uint32_t v) {
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static inline void tach_fence_seq_cst(void) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif /* TACH_COMPAT_H */
