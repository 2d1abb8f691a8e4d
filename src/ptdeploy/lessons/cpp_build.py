"""Chapter 03: build the C++ programs in cpp/ with CMake, run them, and read what they print.

The two CMake commands are the tutorial's, pointed at the libtorch inside the torch wheel:

    cmake -S cpp -B cpp/build -DCMAKE_PREFIX_PATH=<torch.utils.cmake_prefix_path>
    cmake --build cpp/build --parallel 2

``cmake()`` runs one of them and shows its output, or (``echo=False, log=...``) keeps it in a log file;
``report()`` then prints the lines that teach (what was built, an error and its message). Notebook 03
calls them with those arguments, inside ``build_lock()``. ``build()`` runs both (the first only when
cpp/build/ is not configured for this torch) and returns the programs' paths; a second call is an
incremental no-op. The file lock makes
concurrent callers (the notebook and the tests under pytest-xdist) wait for one build instead of racing.
``python -m ptdeploy.lessons.cpp_build`` (what ``make cpp`` runs) calls ``build()`` and shows the log.
"""

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch.utils

from ptdeploy import system_packages
from ptdeploy.paths import REPO_ROOT
from ptdeploy.resources import small_machine
from ptdeploy.text import strip_colours

CPP_DIR = REPO_ROOT / "cpp"
# The torch package folder (lib/, include/, share/cmake/), as given and with links resolved.
TORCH_ROOTS = sorted({os.path.dirname(torch.__file__), os.path.realpath(os.path.dirname(torch.__file__))})
BUILD_DIR = CPP_DIR / "build"
PROGRAMS = ("example-app", "classify", "aoti_classify", "aoti_example_app")
CMAKE_TIMEOUT_S = 900  # a cold build takes about a minute on two idle cores
# CMake colours its Makefile output when a Jupyter kernel sets CLICOLOR_FORCE; keep logs plain text.


class CppBuildError(RuntimeError):
    """CMake failed; the message ends with the tail of its log."""


@dataclass(frozen=True)
class Build:
    programs: dict[str, Path]  # program name -> executable
    log: str  # what CMake printed: the configure step (when it ran) and the build
    configured: bool  # whether this call ran the configure step
    torch_link: str  # "PACKAGE": find_package(Torch) worked; "DIRECT": the documented fallback


def torch_prefix() -> str:
    """The CMAKE_PREFIX_PATH under which the torch wheel keeps its CMake files (share/cmake)."""
    return torch.utils.cmake_prefix_path


def _cache_entry(name: str) -> str | None:
    """A variable's value in cpp/build/CMakeCache.txt (lines read NAME:TYPE=VALUE), or None."""
    cache = BUILD_DIR / "CMakeCache.txt"
    if not cache.exists():
        return None
    for line in cache.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.split(":")[0] == name:
            return value
    return None


def torch_link() -> str:
    """How the configured cpp/build/ links libtorch: "PACKAGE", "DIRECT", or "?" before configuring."""
    return _cache_entry("TORCH_LINK_USED") or "?"


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Hold the lock on cpp/build/ for a configure or build."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def portable(text: str) -> str:
    """``text`` without this machine's folders: the torch package is <torch>, the repository <repo>,
    and the temporary file a Jupyter kernel runs a cell from (/tmp/ipykernel_<pid>/<hash>.py) <cell>."""
    for root in TORCH_ROOTS:
        text = text.replace(root, "<torch>")
    text = re.sub(r"[^\s\"']*/ipykernel_\d+/\d+\.py", "<cell>", text)
    return text.replace(str(REPO_ROOT), "<repo>")


def cmake(
    *args: str,
    echo: bool = True,
    check: bool = True,
    timeout: float = CMAKE_TIMEOUT_S,
    log: Path | None = None,
):
    """Run ``cmake *args`` from the repository root; print the command and (when ``echo``) its output.

    Returns a CompletedProcess with the output in ``stdout`` (stderr merged in). The command and output
    lines are ``portable()``. With ``log``, both are also appended to that file. With ``check``, a
    failure raises CppBuildError. The command is killed after ``timeout`` seconds.
    """
    args = [str(a) for a in args]
    command = "$ cmake " + portable(" ".join(args))
    if echo:
        print(command, flush=True)
    try:
        executable = system_packages.require("cmake")
    except system_packages.MissingProgram as exc:
        raise CppBuildError(str(exc)) from None
    proc = subprocess.Popen(
        [executable, *args],
        cwd=REPO_ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout also stops the compilers
    )
    timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            line = portable(strip_colours(line))
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
        returncode = proc.wait()
    finally:
        timer.cancel()
    result = subprocess.CompletedProcess(["cmake", *args], returncode, "".join(lines), None)
    if log is not None:
        with open(log, "a") as file:
            file.write(f"{command}\n{result.stdout}")
    if check and returncode != 0:
        tail = "".join(lines[-30:])
        raise CppBuildError(f"cmake {portable(' '.join(args))} failed (exit {returncode}):\n{tail}")
    return result


# What a reader needs from a CMake log: how libtorch was found, what was built, the outcome, and an
# error with its message. Not the compiler checks and make's directory changes (machine paths).
_TEACHING = re.compile(
    r"^(-- libtorch: |-- Configuring (done|incomplete)|-- Build files have been written"
    r"|\[ *\d+%\] (Building|Linking|Built target)|CMake Error|gmake.*\*\*\*|.*error: )"
)


def summary(output: str) -> list[str]:
    """The lines of a ``cmake()`` output that teach; a ``CMake Error`` keeps its indented message."""
    picked, in_error = [], False
    for line in output.splitlines():
        if in_error and line.startswith("  ") and not line.startswith("  <") and line.strip():
            picked.append(line)  # the error's message, not its call stack
            continue
        in_error = line.startswith("CMake Error")
        if _TEACHING.match(line):
            picked.append(line)
    return picked


def report(result: subprocess.CompletedProcess, log: Path | None = None) -> None:
    """Print a ``cmake()`` command, the lines of its output that teach, and where the full log is."""
    print("$ cmake", portable(" ".join(result.args[1:])))
    print(*summary(result.stdout), sep="\n")
    if log is not None:
        print(f"(full log: {Path(log).relative_to(REPO_ROOT)})")


def build(jobs: int | None = None, echo: bool = False) -> Build:
    """Configure (if needed) and build every program in cpp/; return where they are.

    ``jobs`` (parallel compilers) defaults to 2, or 1 on a small machine (1 CPU or little memory, see
    ptdeploy.resources): the torch headers make each compiler heavy.
    """
    if jobs is None:
        jobs = 1 if small_machine() else 2
    with build_lock():
        # Configure when there is no build yet, or it was made for another torch.
        configure = _cache_entry("CMAKE_PREFIX_PATH") != torch_prefix()
        log = ""
        if configure:
            # CMake keeps the libtorch it found (Torch_DIR) in its cache, whatever the new prefix says.
            (BUILD_DIR / "CMakeCache.txt").unlink(missing_ok=True)
            log += cmake(
                "-S", "cpp", "-B", "cpp/build", f"-DCMAKE_PREFIX_PATH={torch_prefix()}", echo=echo
            ).stdout
        log += cmake("--build", "cpp/build", "--parallel", str(jobs), echo=echo).stdout
    return Build(built_programs(), log, configure, torch_link())


def built_programs() -> dict[str, Path]:
    """Every program's path in cpp/build/; raises CppBuildError if one is missing."""
    programs = {name: BUILD_DIR / name for name in PROGRAMS}
    missing = [name for name, path in programs.items() if not path.is_file()]
    if missing:
        raise CppBuildError(f"the build finished without {', '.join(missing)}")
    return programs


def run(
    program: Path, *args: str | Path, threads: int | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a built program from the repository root (so relative paths in its output stay short).

    ``threads`` sets OMP_NUM_THREADS, which libtorch's intra-op pool and AOTInductor's kernels read.
    """
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [str(program), *(str(a) for a in args)]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, text=True, capture_output=True, timeout=timeout)


def parse_top5(stdout: str) -> list[tuple[int, str, str, float]]:
    """classify / aoti_classify output -> [(class index, wnid, name, probability), ...], best first."""
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit():
            rows.append((int(parts[1]), parts[2], parts[3], float(parts[4])))
    return rows


def parse_latencies(stdout: str) -> tuple[int, list[float]]:
    """The timed-runs part of classify / aoti_classify output -> (threads, per-run milliseconds)."""
    fields = {line.split()[0]: line.split()[1:] for line in stdout.splitlines() if line.strip()}
    return int(fields["threads"][0]), [float(t) for t in fields["latency_ms"]]


def main() -> int:
    try:
        result = build(echo=True)
    except CppBuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"libtorch linked via {result.torch_link}; built:")
    for path in result.programs.values():
        print(f"  {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
