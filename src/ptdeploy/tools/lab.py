"""`make lab`: JupyterLab on the notebooks, with this project's Lab settings and kernel.

    python -m ptdeploy.tools.lab [--host 127.0.0.1] [--port 8888] [--no-browser]

LAB_HOST and LAB_PORT (environment) override the defaults. Jupyter makes a random token and prints the URL
with it once it is up; LAB_TOKEN sets a token of your own instead (then printed as `token=...`).
"""

import argparse
import json
import os
import sys
from pathlib import Path

from ptdeploy.paths import REPO_ROOT

# Lab settings the project ships: no "get notified about Jupyter news?" pop-up, no update check
# (the notebooks are meant to work offline).
OVERRIDES = REPO_ROOT / "lab" / "overrides.json"
# The server sees the whole repository (src/, data/, outputs/); the file browser opens on notebooks/.
DEFAULT_URL = "/lab/tree/notebooks"


def lab_args(uid: int, host: str = "127.0.0.1", port: int = 8888, open_browser: bool = True) -> list[str]:
    """The arguments of `jupyter lab` for a user with this uid.

    Jupyter refuses to run as root without --allow-root; containers and cloud VMs often run as root.
    The kernel is the venv's: Jupyter starts the "python3" kernel with its own interpreter.
    """
    args = [
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={REPO_ROOT}",
        f"--LabApp.default_url={DEFAULT_URL}",
    ]
    if uid == 0:
        args.append("--allow-root")
    if not open_browser:
        args.append("--no-browser")
    return args


def lab_env(environ: dict[str, str], token: str | None = None) -> dict[str, str]:
    """The server's environment (its kernels inherit it): this checkout's src/ first on PYTHONPATH, so
    notebooks import ptdeploy from here whatever directory Lab was started from.

    The token goes through JUPYTER_TOKEN rather than the command line, where `ps` would show it.
    """
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), environ.get("PYTHONPATH")]))
    if token:
        env["JUPYTER_TOKEN"] = token
    return env


def settings_dir() -> Path:
    """Lab's application settings directory, where it reads overrides.json: in the venv, as
    jupyterlab.commands.get_app_dir() finds it (that module takes seconds to import)."""
    app_dir = os.environ.get("JUPYTERLAB_DIR") or Path(sys.prefix, "share", "jupyter", "lab")
    return Path(app_dir).resolve() / "settings"


def install_settings(target_dir: Path | None = None, source: Path = OVERRIDES) -> bool:
    """Merge the project's overrides into ``target_dir``/overrides.json, keeping settings already there.

    Returns True when the file holds the project's settings afterwards. A read-only venv (another user
    installed it) only costs the pop-up: a warning, not an error.
    """
    target = (target_dir or settings_dir()) / "overrides.json"
    ours = json.loads(source.read_text())
    current = json.loads(target.read_text()) if target.exists() else {}
    merged = {**current, **{plugin: {**current.get(plugin, {}), **ours[plugin]} for plugin in ours}}
    if merged == current:
        return True
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".overrides.{os.getpid()}.json")
        partial.write_text(json.dumps(merged, indent=2) + "\n")
        partial.replace(target)  # atomic: a Lab starting meanwhile never reads half a file
    except OSError as error:
        print(f"warning: could not write Lab settings to {target}: {error}", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("LAB_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT") or 8888))
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    args = parser.parse_args(argv)
    install_settings()
    os.environ.update(lab_env(dict(os.environ), os.environ.get("LAB_TOKEN")))
    from jupyterlab.labapp import LabApp  # what `jupyter lab` runs

    LabApp.launch_instance(argv=lab_args(os.getuid(), args.host, args.port, open_browser=not args.no_browser))


if __name__ == "__main__":
    main()
