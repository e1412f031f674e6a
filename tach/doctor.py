"""``tach doctor``: what this machine supports, and which of Tach's options follow from it.

Each kernel feature is tried for real, not guessed from version numbers: the namespaces through
:func:`tach.isolation.probe` (in a throwaway process, as the run's own check does), a pidfd and
a memfd by making one. Sysctls and the cgroup and THP settings are read from ``/proc`` and
``/sys`` and shown as found.
"""

from __future__ import annotations

import os
from typing import TextIO

from tach._native import proc
from tach.isolation import Hermetic, probe_in_subprocess

#: Settings shown as they are, where the kernel has them.
SYSCTLS = (
    "/proc/sys/user/max_user_namespaces",
    "/proc/sys/kernel/unprivileged_userns_clone",
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
)


def read(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return None


def pidfd_works() -> tuple[bool, str]:
    try:
        fd = proc.pidfd_open(os.getpid())
    except OSError as exc:
        return False, str(exc)
    os.close(fd)
    return True, "pidfd_open"


def memfd_works() -> tuple[bool, str]:
    try:
        fd = os.memfd_create("tach-doctor", os.MFD_CLOEXEC)
    except (OSError, AttributeError) as exc:
        return False, str(exc)
    os.close(fd)
    return True, "memfd_create"


def cgroup_v2() -> tuple[bool, str]:
    mounts = read("/proc/self/mounts") or ""
    points = [line.split()[1] for line in mounts.splitlines() if line.split()[2:3] == ["cgroup2"]]
    if not points:
        return False, "no cgroup2 file system mounted"
    controllers = read(os.path.join(points[0], "cgroup.controllers")) or ""
    return True, f"at {points[0]} (controllers: {controllers or 'none'})"


def transparent_huge_pages() -> tuple[bool, str]:
    setting = read("/sys/kernel/mm/transparent_hugepage/enabled")
    if setting is None:
        return False, "not available"
    chosen = setting[setting.find("[") + 1 : setting.find("]")] if "[" in setting else setting
    return chosen in ("always", "madvise"), f"enabled: {chosen}"


def doctor(out: TextIO) -> int:
    """Print the report; 0 (it is a report, whatever it finds)."""
    uid = os.geteuid()
    out.write(f"tach doctor: kernel {os.uname().release}, running as uid {uid}")
    out.write(" (root)\n" if uid == 0 else " (unprivileged: namespaces need a user namespace)\n")
    problems = {
        "--isolate-network": probe_in_subprocess(Hermetic(network=True)),
        "--private-tmp": probe_in_subprocess(Hermetic(private_tmp=True)),
        "--max-processes": probe_in_subprocess(Hermetic(max_processes=64)),
    }
    features = [
        ("network namespace (CLONE_NEWNET, lo up)", not problems["--isolate-network"], ""),
        ("mount namespace and tmpfs (CLONE_NEWNS)", not problems["--private-tmp"], ""),
        ("pidfd", *pidfd_works()),
        ("memfd", *memfd_works()),
        ("transparent huge pages", *transparent_huge_pages()),
        ("cgroup v2", *cgroup_v2()),
    ]
    if uid != 0:
        features.insert(0, ("user namespace (CLONE_NEWUSER)", not problems["--max-processes"], ""))
    width = max(len(name) for name, _, _ in features)
    for name, ok, detail in features:
        out.write(f"  {name:<{width}}  {'yes' if ok else 'no '}  {detail}".rstrip() + "\n")
    for path in SYSCTLS:
        value = read(path)
        if value is not None:
            out.write(f"  {path.removeprefix('/proc/sys/').replace('/', '.')} = {value}\n")
    out.write("options:\n")
    for option, found in problems.items():
        if found:
            out.write(f"  {option}: not available\n")
            for problem in found:
                out.write(f"    {problem}\n")
        else:
            out.write(f"  {option}: available\n")
    for option in ("--max-memory", "--max-open-files", "--max-cpu-time"):
        out.write(f"  {option}: available (setrlimit)\n")
    return 0
