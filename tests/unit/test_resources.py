"""ptdeploy.resources reads the real limits: environment first, then the cgroup quota, then the host.

The cgroup trees here are fake folders under tmp_path; `membership` stands for /proc/self/cgroup.
"""

import os
import subprocess
import sys

import pytest

from ptdeploy import resources

AFFINITY = len(os.sched_getaffinity(0))
TOTAL = resources._total_memory()
V2 = "0::/user.slice/binder\n"
V1 = "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n"


def write(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text + "\n")


@pytest.fixture
def v2(tmp_path):
    """A cgroup v2 tree: a 1.5-CPU, 2 GiB parent above an unlimited leaf (the parent's limits apply)."""
    write(tmp_path, cpu__max="max 100000", memory__max="max")
    write(tmp_path / "user.slice", cpu__max="150000 100000", memory__max=str(2 * resources.GB))
    write(tmp_path / "user.slice" / "binder", cpu__max="max 100000", memory__max="max")
    return tmp_path


@pytest.fixture
def v1(tmp_path):
    """A cgroup v1 tree with a 0.5-CPU quota and a 1 GiB limit (a bare docker --cpus .5 -m 1g)."""
    write(tmp_path / "cpu,cpuacct" / "docker" / "abc", cpu__cfs_quota_us="50000", cpu__cfs_period_us="100000")
    write(tmp_path / "memory" / "docker" / "abc", memory__limit_in_bytes=str(resources.GB))
    write(tmp_path / "memory", memory__limit_in_bytes="9223372036854771712")  # v1's "unlimited"
    return tmp_path


def test_environment_wins_and_fractions_round_down_to_at_least_one(v2):
    env = {"CPU_LIMIT": "0.5", "MEM_LIMIT": str(512 * 1024**2)}
    assert resources.cpu_limit(env, v2, V2) == (min(0.5, AFFINITY), "CPU_LIMIT")
    assert resources.usable_cpus(env, v2, V2) == 1
    assert resources.memory_limit(env, v2, V2) == (512 * 1024**2, "MEM_LIMIT")
    assert resources.small_machine(env, v2, V2)


def test_cgroup_v2_takes_the_tightest_limit_on_the_path(v2):
    assert resources.cpu_limit({}, v2, V2) == (min(1.5, AFFINITY), "cgroup quota")
    assert resources.usable_cpus({}, v2, V2) == 1
    assert resources.memory_limit({}, v2, V2) == (min(2 * resources.GB, TOTAL), "cgroup limit")
    assert resources.small_machine({}, v2, V2)


def test_cgroup_v1_quota_and_limit(v1):
    assert resources.cpu_limit({}, v1, V1) == (min(0.5, AFFINITY), "cgroup quota")
    assert resources.usable_memory({}, v1, V1) == min(resources.GB, TOTAL)


def test_cgroup_namespace_reads_the_mount_point(tmp_path):
    """Inside a cgroup namespace /proc/self/cgroup names a path that is not under the mount point."""
    write(tmp_path, cpu__max="200000 100000")
    assert resources.cpu_limit({}, tmp_path, "0::/../elsewhere\n")[0] == min(2.0, AFFINITY)
    assert resources.cpu_limit({}, tmp_path, "0::/not/here\n")[0] == min(2.0, AFFINITY)


@pytest.mark.parametrize("junk", ["", "0", "-1", "abc", "nan", "inf"])
def test_unset_or_junk_falls_through_to_the_host(tmp_path, junk):
    write(tmp_path, cpu__max="max 100000", memory__max="max")
    env = {"CPU_LIMIT": junk, "MEM_LIMIT": junk}
    assert resources.cpu_limit(env, tmp_path, V2) == (AFFINITY, "affinity")
    assert resources.memory_limit(env, tmp_path, V2) == (TOTAL, "total RAM")
    assert resources.cpu_limit(env, tmp_path / "missing", "") == (AFFINITY, "affinity")


def test_never_more_than_the_host(v2):
    env = {"CPU_LIMIT": str(AFFINITY + 64), "MEM_LIMIT": str(TOTAL * 4)}
    assert resources.usable_cpus(env, v2, V2) == AFFINITY
    assert resources.usable_memory(env, v2, V2) == TOTAL


def test_small_machine_thresholds(tmp_path):
    big = {"CPU_LIMIT": "2", "MEM_LIMIT": str(4 * resources.GB)}
    assert resources.small_machine(big, tmp_path, "") == (AFFINITY < 2 or TOTAL < resources.SMALL_MEMORY)
    assert resources.small_machine({**big, "CPU_LIMIT": "1"}, tmp_path, "")
    assert resources.small_machine({**big, "MEM_LIMIT": str(2 * resources.GB)}, tmp_path, "")


def test_describe_names_the_sources(v1):
    assert (
        resources.describe({}, v1, V1)
        == f"{min(0.5, AFFINITY):g} CPUs (cgroup quota), 1.0 GB memory (cgroup limit)"
    )


def test_this_machine_and_no_torch_import():
    """The module's own command line works here, and importing it does not pull in torch."""
    code = "import sys, ptdeploy.resources as r; r.describe(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert 1 <= resources.usable_cpus() <= AFFINITY
