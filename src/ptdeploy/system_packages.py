"""The system programs the project runs (nginx, cmake, Chromium, ...): one list, found or installed.

``system-packages.txt`` at the repository root is the list (a row: package, its programs, group, why).
The Makefile installs what is missing before it runs notebooks or tests, and code that starts one of
these programs asks ``require()`` for its path, which fails with the command that installs it rather
than with a bare "exit code 1".

``python -m ptdeploy.system_packages install notebooks [tests]``  install what is missing (apt-get)
``python -m ptdeploy.system_packages check notebooks [tests]``    list what is missing, exit 1 if any
``python -m ptdeploy.system_packages apt-txt``                    Binder's apt.txt (the notebooks' rows)

Standard library only: the Makefile runs it with the system Python, before the venv exists.
"""

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LIST_FILE = Path(__file__).resolve().parents[2] / "system-packages.txt"
GROUPS = ("notebooks", "tests")
# Debian keeps daemons such as nginx in the sbin folders, which are not on a normal user's PATH.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


@dataclass(frozen=True)
class Package:
    name: str  # the Debian/Ubuntu package
    commands: tuple[str, ...]  # the programs of it that the project runs
    group: str  # "notebooks" (Binder installs these too) or "tests"
    why: str


class MissingProgram(RuntimeError):
    """A system program the project needs is not installed."""


def read(path: Path = LIST_FILE) -> list[Package]:
    packages = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(maxsplit=3)
        if len(fields) < 4 or fields[2] not in GROUPS:
            raise ValueError(f"{path.name}:{number}: expected 'package command group why', got {line!r}")
        name, commands, group, why = fields
        packages.append(Package(name, tuple(commands.split(",")), group, why))
    return packages


def find(command: str) -> str | None:
    """The program's path, on PATH or in the sbin folders; None when it is not installed."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN])
    return shutil.which(command, path=path)


def install_command(names: list[str], euid: int | None = None) -> list[str]:
    """apt-get's command line for these packages, through sudo when not root."""
    euid = os.geteuid() if euid is None else euid
    sudo = [] if euid == 0 else ["sudo"]
    return [*sudo, "apt-get", "install", "-y", *names]


def require(command: str, packages: list[Package] | None = None) -> str:
    """The path of a listed program; ``MissingProgram`` naming the package and how to install it."""
    packages = read() if packages is None else packages
    package = next((p for p in packages if command in p.commands), None)
    if package is None:
        raise ValueError(f"{command!r} is not in {LIST_FILE.name}: add it there first")
    found = find(command)
    if found:
        return found
    raise MissingProgram(
        f"{command} is not installed ({package.why}). Install it with: "
        f"{' '.join(install_command([package.name]))}  (or `make system-packages`; "
        f"without apt, your system's package for {command})"
    )


def missing(groups: list[str], packages: list[Package] | None = None) -> list[Package]:
    packages = read() if packages is None else packages
    return [p for p in packages if p.group in groups and any(find(c) is None for c in p.commands)]


def install(groups: list[str]) -> int:
    todo = missing(groups)
    if not todo:
        return 0
    names = [p.name for p in todo]
    for p in todo:
        print(f"system package missing: {p.name} ({p.why})", flush=True)
    command = install_command(names)
    if shutil.which("apt-get") is None:
        print(
            f"No apt-get here: install {', '.join(names)} with your system's package manager, "
            "then run make again.",
            file=sys.stderr,
        )
        return 1
    if command[0] == "sudo":
        if shutil.which("sudo") is None:
            print(f"Not root and no sudo: as root, run\n  {' '.join(command[1:])}", file=sys.stderr)
            return 1
        print("Not root: installing through sudo (it may ask for your password).", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = [*command[: command.index("apt-get")], "apt-get", "update"]
    print("$", " ".join(update), flush=True)
    if subprocess.run(update, env=env).returncode != 0:
        return 1
    print("$", " ".join(command), flush=True)
    if subprocess.run(command, env=env).returncode != 0:
        return 1
    still = missing(groups)
    if still:
        print(f"installed, yet not found: {', '.join(p.name for p in still)}", file=sys.stderr)
        return 1
    return 0


def apt_txt(packages: list[Package] | None = None) -> str:
    """Binder's apt.txt: what the notebooks need, not the test tools."""
    packages = read() if packages is None else packages
    return "".join(f"{p.name}\n" for p in packages if p.group == "notebooks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["install", "check", "apt-txt"])
    parser.add_argument("groups", nargs="*", help=f"any of {', '.join(GROUPS)} (default: notebooks)")
    args = parser.parse_args(argv)
    args.groups = args.groups or ["notebooks"]
    unknown = set(args.groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s) {', '.join(sorted(unknown))}: choose from {', '.join(GROUPS)}")
    if args.command == "apt-txt":
        print(apt_txt(), end="")
        return 0
    if args.command == "check":
        todo = missing(args.groups)
        for p in todo:
            print(f"missing: {p.name} ({p.why})")
        return 1 if todo else 0
    return install(args.groups)


if __name__ == "__main__":
    sys.exit(main())
