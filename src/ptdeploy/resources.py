"""How many CPUs and how much memory this process may really use: the limits, not the host's size.

In a container (Binder, JupyterHub, Docker) ``os.sched_getaffinity(0)`` and ``/proc/meminfo`` report the
host. The real limits come, in this order, from ``CPU_LIMIT`` / ``MEM_LIMIT`` (JupyterHub and Binder set
them), from the cgroup quota (v2 ``cpu.max`` / ``memory.max``, v1 ``cpu.cfs_quota_us`` /
``memory.limit_in_bytes``), and last from the affinity mask and the total RAM.

No torch import here: configuration files (gunicorn's) and scripts read it before torch starts.
"""

import math
import os
from collections.abc import Mapping
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
GB = 1024**3
# Below these a machine is "small" (mybinder.org gives about 1 CPU and 2 GB): heavy cells scale down.
SMALL_CPUS = 1
SMALL_MEMORY = 3 * GB


def _number(text: str | None) -> float | None:
    """A positive number from an environment variable or a cgroup file, else None ("max", "", junk)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(controller: str | None, root: Path, membership: str | None) -> list[Path]:
    """This process's cgroup directory and its ancestors up to the mount point (limits nest).

    ``controller`` None means cgroup v2 (one unified tree); otherwise the v1 hierarchy of that controller.
    ``membership`` is the text of /proc/self/cgroup (read when None).
    """
    if membership is None:
        membership = _read(PROC_CGROUP) or ""
    base, rel = (root if controller is None else root / controller), "/"
    for line in membership.splitlines():
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        if controller is None and controllers == "":
            rel = path
            break
        if controller in controllers.split(","):
            rel = path
            if (root / controllers).is_dir():  # v1 mounts co-mounted controllers as e.g. cpu,cpuacct
                base = root / controllers
            break
    leaf = base / rel.lstrip("/")
    if not leaf.is_dir():  # a cgroup namespace: the mount point is already our own cgroup
        leaf = base
    dirs = [leaf]
    while dirs[-1] != base and base in dirs[-1].parents:
        dirs.append(dirs[-1].parent)
    return dirs


def _cgroup_cpus(root: Path, membership: str | None) -> float | None:
    """The tightest CPU quota on the way from this process's cgroup to the root, in CPUs."""
    quotas = []
    for d in _cgroup_dirs(None, root, membership):
        fields = (_read(d / "cpu.max") or "").split()
        if len(fields) == 2 and _number(fields[0]) and _number(fields[1]):
            quotas.append(float(fields[0]) / float(fields[1]))
    for d in _cgroup_dirs("cpu", root, membership):
        quota, period = _number(_read(d / "cpu.cfs_quota_us")), _number(_read(d / "cpu.cfs_period_us"))
        if quota and period:  # a quota of -1 means none
            quotas.append(quota / period)
    return min(quotas, default=None)


def _cgroup_memory(root: Path, membership: str | None) -> int | None:
    """The tightest memory limit on the way from this process's cgroup to the root, in bytes."""
    limits = [_number(_read(d / "memory.max")) for d in _cgroup_dirs(None, root, membership)]
    limits += [_number(_read(d / "memory.limit_in_bytes")) for d in _cgroup_dirs("memory", root, membership)]
    return min((int(x) for x in limits if x), default=None)


def _total_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cpu_limit(
    env: Mapping[str, str] = os.environ, root: Path = CGROUP_ROOT, membership: str | None = None
) -> tuple[float, str]:
    """(CPUs this process may use, possibly fractional; where that number came from)."""
    affinity = len(os.sched_getaffinity(0))
    limit = _number(env.get("CPU_LIMIT"))
    if limit:
        return min(limit, affinity), "CPU_LIMIT"
    quota = _cgroup_cpus(root, membership)
    if quota:
        return min(quota, affinity), "cgroup quota"
    return affinity, "affinity"


def memory_limit(
    env: Mapping[str, str] = os.environ, root: Path = CGROUP_ROOT, membership: str | None = None
) -> tuple[int, str]:
    """(bytes of memory this process may use; where that number came from)."""
    total = _total_memory()
    limit = _number(env.get("MEM_LIMIT"))
    if limit:
        return min(int(limit), total), "MEM_LIMIT"
    cgroup = _cgroup_memory(root, membership)  # "unlimited" in v1 is a huge number: the min() drops it
    if cgroup and cgroup < total:
        return cgroup, "cgroup limit"
    return total, "total RAM"


def usable_cpus(
    env: Mapping[str, str] = os.environ, root: Path = CGROUP_ROOT, membership: str | None = None
) -> int:
    """Whole CPUs to size thread pools and worker counts by: the limit rounded down, at least 1."""
    return max(1, math.floor(cpu_limit(env, root, membership)[0]))


def usable_memory(
    env: Mapping[str, str] = os.environ, root: Path = CGROUP_ROOT, membership: str | None = None
) -> int:
    """Bytes of memory this process may use."""
    return memory_limit(env, root, membership)[0]


def small_machine(
    env: Mapping[str, str] = os.environ, root: Path = CGROUP_ROOT, membership: str | None = None
) -> bool:
    """True on a Binder-sized machine (1 CPU or less than 3 GB), where heavy work should scale down."""
    return (
        usable_cpus(env, root, membership) <= SMALL_CPUS
        or usable_memory(env, root, membership) < SMALL_MEMORY
    )


def describe(
    env: Mapping[str, str] = os.environ, root: Path = CGROUP_ROOT, membership: str | None = None
) -> str:
    """One line for a notebook or a log, e.g. '2 CPUs (affinity), 23.5 GB memory (total RAM)'."""
    cpus, cpu_source = cpu_limit(env, root, membership)
    memory, memory_source = memory_limit(env, root, membership)
    return f"{cpus:g} CPUs ({cpu_source}), {memory / GB:.1f} GB memory ({memory_source})"


if __name__ == "__main__":
    print(describe(), "- small machine" if small_machine() else "")
