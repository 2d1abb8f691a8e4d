"""`make lab`: JupyterLab on the notebooks, with this project's Lab settings and kernel.

    python -m ptdeploy.tools.lab [--host 127.0.0.1] [--port 8888] [--lang zh_CN] [--no-browser]

LAB_HOST, LAB_PORT and LAB_LANG (environment) override the defaults. ``--lang zh_CN`` starts Lab with
its Chinese interface (jupyterlab-language-pack-zh-CN) on the Chinese edition, notebooks/zh/; a language
picked in Lab's Settings menu is the user's own setting and wins over it.

Jupyter makes a random token and prints the URL with it once it is up; LAB_TOKEN sets a token of your
own instead (then printed as `token=...`).
"""

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

from ptdeploy.paths import REPO_ROOT, output_dir

# Lab settings the project ships: no "get notified about Jupyter news?" pop-up, no update check
# (the notebooks are meant to work offline).
OVERRIDES = REPO_ROOT / "lab" / "overrides.json"
# The server sees the whole repository (src/, data/, outputs/); the file browser opens on notebooks/.
DEFAULT_URL = "/lab/tree/notebooks"
# Interface languages: the language pack each needs (pinned in requirements.txt) and the folder Lab opens on.
LANGUAGES = {"en": ("", DEFAULT_URL), "zh_CN": ("jupyterlab_language_pack_zh_CN", "/lab/tree/notebooks/zh")}
TRANSLATION_PLUGIN = "@jupyterlab/translation-extension:plugin"


def lab_args(
    uid: int,
    host: str = "127.0.0.1",
    port: int = 8888,
    open_browser: bool = True,
    lang: str = "en",
    settings: Path | None = None,
) -> list[str]:
    """The arguments of `jupyter lab` for a user with this uid.

    Jupyter refuses to run as root without --allow-root; containers and cloud VMs often run as root.
    The kernel is the venv's: Jupyter starts the "python3" kernel with its own interpreter.
    """
    args = [
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={REPO_ROOT}",
        f"--LabApp.default_url={LANGUAGES[lang][1]}",
    ]
    if settings is not None:
        args.append(f"--LabApp.app_settings_dir={settings}")
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


def language_settings(lang: str, source: Path | None = None) -> Path:
    """A settings folder of this Lab session's own: the venv's overrides plus the interface language as
    the default locale. The venv's settings stay as they are, so two Labs in two languages can run."""
    current = (source or settings_dir()) / "overrides.json"
    overrides = json.loads(current.read_text()) if current.exists() else {}
    overrides[TRANSLATION_PLUGIN] = {**overrides.get(TRANSLATION_PLUGIN, {}), "locale": lang}
    folder = output_dir("lab", f"settings-{lang}")
    partial = folder / f".overrides.{os.getpid()}.json"
    partial.write_text(json.dumps(overrides, indent=2) + "\n")
    partial.replace(folder / "overrides.json")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("LAB_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT") or 8888))
    parser.add_argument(
        "--lang",
        choices=sorted(LANGUAGES),
        default=os.environ.get("LAB_LANG") or "en",
        help="the interface language; zh_CN also opens the Chinese edition (notebooks/zh/)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    args = parser.parse_args(argv)
    install_settings()
    settings = None
    if args.lang != "en":
        pack = LANGUAGES[args.lang][0]
        if importlib.util.find_spec(pack) is None:
            parser.error(f"--lang {args.lang} needs {pack}: make setup installs it (requirements.txt)")
        settings = language_settings(args.lang)
    os.environ.update(lab_env(dict(os.environ), os.environ.get("LAB_TOKEN")))
    from jupyterlab.labapp import LabApp  # what `jupyter lab` runs

    browser = not args.no_browser
    LabApp.launch_instance(argv=lab_args(os.getuid(), args.host, args.port, browser, args.lang, settings))


if __name__ == "__main__":
    main()
