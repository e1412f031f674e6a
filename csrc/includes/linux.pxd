# Linux-only C declarations used by the native core. Only what is used is listed; the parts
# POSIX already ships with Cython come from libc.* and posix.* instead.

from libc.stdint cimport uint32_t, uint64_t
from posix.time cimport timespec
from posix.types cimport pid_t


cdef extern from "<sched.h>" nogil:
    int CLONE_NEWNS
    int CLONE_NEWNET
    int CLONE_NEWUSER
    int CLONE_NEWPID
    int CLONE_NEWUTS
    int CLONE_NEWIPC
    int unshare(int flags)
    int setns(int fd, int nstype)


cdef extern from "<sys/mount.h>" nogil:
    unsigned long MS_BIND
    unsigned long MS_REC
    unsigned long MS_PRIVATE
    unsigned long MS_SLAVE
    unsigned long MS_NOSUID
    unsigned long MS_NODEV
    int mount(const char *source, const char *target, const char *filesystemtype,
              unsigned long mountflags, const void *data)


cdef extern from "<sys/ioctl.h>" nogil:
    int ioctl(int fd, unsigned long request, ...)


cdef extern from "<net/if.h>" nogil:
    int IFF_UP
    int IFNAMSIZ
    struct ifreq:
        char ifr_name[16]  # IFNAMSIZ
        short ifr_flags    # a macro for ifr_ifru.ifru_flags
    # ...


cdef extern from "<sys/socket.h>" nogil:
    int AF_INET
    int SOCK_DGRAM
    int SOCK_CLOEXEC
    int socket(int domain, int type, int protocol)


cdef extern from "<linux/sockios.h>" nogil:
    unsigned long SIOCGIFFLAGS
    unsigned long SIOCSIFFLAGS


cdef extern from "<sys/prctl.h>" nogil:
    int PR_SET_PDEATHSIG
    int PR_GET_PDEATHSIG
    int PR_SET_CHILD_SUBREAPER
    int PR_GET_CHILD_SUBREAPER
    int prctl(int option, unsigned long arg2, unsigned long arg3,
              unsigned long arg4, unsigned long arg5)


cdef extern from "<sys/mman.h>" nogil:
    unsigned int MFD_CLOEXEC
    unsigned int MFD_ALLOW_SEALING
    int memfd_create(const char *name, unsigned int flags)


cdef extern from "<sys/eventfd.h>" nogil:
    int EFD_CLOEXEC
    int EFD_NONBLOCK
    int eventfd(unsigned int initval, int flags)


cdef extern from "<sys/resource.h>" nogil:
    ctypedef unsigned long rlim_t
    struct rlimit:
        rlim_t rlim_cur
        rlim_t rlim_max
    struct timeval:
        long tv_sec
        long tv_usec
    struct rusage:
        timeval ru_utime
        timeval ru_stime
        long ru_maxrss
        long ru_minflt
        long ru_majflt
        long ru_nvcsw
        long ru_nivcsw
    rlim_t RLIM_INFINITY
    int RLIMIT_AS
    int RLIMIT_DATA
    int RLIMIT_CORE
    int RLIMIT_NOFILE
    int RLIMIT_CPU
    int RLIMIT_NPROC
    int RLIMIT_STACK
    int getrlimit(int resource, rlimit *rlim)
    int setrlimit(int resource, const rlimit *rlim)


cdef extern from "<sys/wait.h>" nogil:
    pid_t wait4(pid_t pid, int *status, int options, rusage *usage)


cdef extern from "Python.h":
    void PyOS_BeforeFork()
    void PyOS_AfterFork_Parent()
    void PyOS_AfterFork_Child()


cdef extern from "compat.h" nogil:
    int tach_pidfd_open(pid_t pid, unsigned int flags)
    int tach_pidfd_send_signal(int pidfd, int sig, unsigned int flags)
    pid_t tach_clone_fork(unsigned long flags)
    int tach_futex_wait(uint32_t *addr, uint32_t expected, const timespec *timeout)
    int tach_futex_wake(uint32_t *addr, int count)
    uint64_t tach_load_acquire_u64(const uint64_t *p)
    void tach_store_release_u64(uint64_t *p, uint64_t v)
    uint32_t tach_load_acquire_u32(const uint32_t *p)
    void tach_store_release_u32(uint32_t *p, uint32_t v)
    uint32_t tach_exchange_u32(uint32_t *p, uint32_t v)
    void tach_fence_seq_cst()
