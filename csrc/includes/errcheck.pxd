# errno -> OSError, in one place. Read errno on the line right after the failed call; OSError
# picks the subclass (FileNotFoundError, PermissionError, ...) from the number itself.

from libc.errno cimport errno
from libc.string cimport strerror


cdef inline int raise_oserror(str call) except -1:
    """Raise OSError(errno, "<call>: <strerror>") for the errno the last call left."""
    cdef int err = errno
    raise OSError(err, f"{call}: {strerror(err).decode('utf-8', 'replace')}")


cdef inline int raise_errnum(int err, str call) except -1:
    """Raise OSError for an error number returned (not set in errno) by `call`."""
    raise OSError(err, f"{call}: {strerror(err).decode('utf-8', 'replace')}")
