"""`make lab` (ptdeploy.tools.lab): the command for root and for other users, the environment, the
settings."""

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from ptdeploy import system_packages
from ptdeploy.paths import REPO_ROOT
from ptdeploy.tools import lab, processes


def test_allow_root_only_for_root():
    assert "--allow-root" in lab.lab_args(0)
    for uid in (1, 1000, 65534):
        assert "--allow-root" not in lab.lab_args(uid)


def test_args_host_port_folder():
    args = lab.lab_args(1000, host="0.0.0.0", port=9999, open_browser=False)
    assert "--ServerApp.ip=0.0.0.0" in args and "--ServerApp.port=9999" in args
    assert f"--ServerApp.root_dir={REPO_ROOT}" in args
    assert "--LabApp.default_url=/lab/tree/notebooks" in args and (REPO_ROOT / "notebooks").is_dir()
    assert "--no-browser" in args and "--no-browser" not in lab.lab_args(1000)
    assert "--ServerApp.ip=127.0.0.1" in lab.lab_args(1000)  # the default host


def test_chinese_opens_the_chinese_edition_with_its_own_settings(tmp_path):
    args = lab.lab_args(1000, lang="zh_CN", settings=tmp_path)
    assert "--LabApp.default_url=/lab/tree/notebooks/zh" in args and (REPO_ROOT / "notebooks" / "zh").is_dir()
    assert f"--LabApp.app_settings_dir={tmp_path}" in args
    assert not any("app_settings_dir" in a for a in lab.lab_args(1000))  # English: the venv's settings


def test_language_settings_add_the_locale_to_the_venv_overrides(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "overrides.json").write_text(json.dumps({"a:plugin": {"x": 1}}))
    folder = lab.language_settings("zh_CN", source=venv)
    written = json.loads((folder / "overrides.json").read_text())
    assert written == {"a:plugin": {"x": 1}, lab.TRANSLATION_PLUGIN: {"locale": "zh_CN"}}
    assert json.loads((venv / "overrides.json").read_text()) == {"a:plugin": {"x": 1}}  # untouched


def test_a_language_without_its_pack_is_refused(monkeypatch, capsys):
    monkeypatch.setitem(lab.LANGUAGES, "xx_XX", ("no_such_language_pack", "/lab"))
    monkeypatch.setattr(lab, "install_settings", lambda: True)
    with pytest.raises(SystemExit):
        lab.main(["--lang", "xx_XX", "--no-browser"])
    assert "needs no_such_language_pack" in capsys.readouterr().err


def test_env_puts_this_checkout_first_and_passes_the_token():
    env = lab.lab_env({"PYTHONPATH": "/elsewhere", "HOME": "/home/x"}, token="abc")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT / "src"), "/elsewhere"]
    assert env["JUPYTER_TOKEN"] == "abc" and env["HOME"] == "/home/x"
    env = lab.lab_env({})
    assert env["PYTHONPATH"] == str(REPO_ROOT / "src") and "JUPYTER_TOKEN" not in env


def test_settings_dir_is_where_jupyterlab_reads_overrides():
    from jupyterlab.commands import get_app_dir

    assert lab.settings_dir() == Path(get_app_dir()).resolve() / "settings"


def test_overrides_switch_off_the_news_prompt():
    ours = json.loads(lab.OVERRIDES.read_text())
    assert ours["@jupyterlab/apputils-extension:notification"] == {
        "fetchNews": "false",
        "checkForUpdates": False,
    }


def test_install_settings_merges_and_is_idempotent(tmp_path):
    target = tmp_path / "settings" / "overrides.json"
    assert lab.install_settings(target.parent)
    assert json.loads(target.read_text()) == json.loads(lab.OVERRIDES.read_text())

    # settings someone else put there survive, ours are added
    other = {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}
    other["@jupyterlab/apputils-extension:notification"] = {"doNotDisturbMode": True, "fetchNews": "true"}
    target.write_text(json.dumps(other))
    assert lab.install_settings(target.parent)
    merged = json.loads(target.read_text())
    assert merged["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    notification = merged["@jupyterlab/apputils-extension:notification"]
    assert notification == {"doNotDisturbMode": True, "fetchNews": "false", "checkForUpdates": False}

    stamp = target.stat().st_mtime_ns
    assert lab.install_settings(target.parent)  # already there: not rewritten
    assert target.stat().st_mtime_ns == stamp
    assert [p.name for p in target.parent.iterdir()] == ["overrides.json"]


def test_install_settings_into_a_read_only_place_only_warns(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the settings folder should be: cannot be created
    assert not lab.install_settings(blocker / "settings")
    assert "warning: could not write Lab settings" in capsys.readouterr().err


NOBODY = 65534


@pytest.mark.integration  # starts a real JupyterLab server
@pytest.mark.skipif(
    os.getuid() != 0 or not system_packages.find("setpriv"), reason="needs root, to drop to another uid"
)
def test_lab_starts_as_a_normal_user():
    """Started as uid 65534 (no --allow-root), Lab answers and prints its URL with the generated token."""
    home = Path(tempfile.mkdtemp(prefix="ptdeploy-lab-home-"))
    try:
        os.chown(home, NOBODY, NOBODY)
        port = processes.free_port()
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        command += [sys.executable, "-m", "ptdeploy.tools.lab", "--port", str(port), "--no-browser"]
        env = {"HOME": str(home), "PYTHONPATH": str(REPO_ROOT / "src")}
        env |= {"JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
        server = processes.start(
            command, env=env, port=port, ready_path="/api", cwd=home, log=home / "lab.log"
        )
        try:
            assert process_uid(server.process.pid) == NOBODY
            log = (home / "lab.log").read_text()
            for _ in range(100):  # the banner comes a moment after the server answers
                if match := re.search(rf"{server.url}/lab/tree/notebooks\?token=(\w+)", log):
                    break
                time.sleep(0.1)
                log = (home / "lab.log").read_text()
            assert match, log
            listing = requests.get(
                f"{server.url}/api/contents/notebooks", params={"token": match[1]}, timeout=10
            )
            assert sum(item["name"].endswith(".ipynb") for item in listing.json()["content"]) == 7
        finally:
            server.stop()
        assert processes.port_is_free(port)
    finally:
        shutil.rmtree(home)


def process_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M)[1])
