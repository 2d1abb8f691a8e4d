"""The service's settings, read in one place (ptdeploy.serving.settings), and gunicorn's sizing."""

import importlib
import sys

from ptdeploy.serving import settings


def test_app_settings_are_defaults_then_environment_then_overrides():
    env = {"PTDEPLOY_TOP_K": "3", "PTDEPLOY_BATCHING": "true", "PTDEPLOY_RUNTIME": "eager", "PTDEPLOY_X": "1"}
    got = settings.app_settings({"TOP_K": 2}, env=env)
    assert got["TOP_K"] == 2  # the dict wins over the environment
    assert got["BATCHING"] is True and got["RUNTIME"] == "eager"  # JSON where it parses, else text
    assert got["MAX_FILES"] == settings.DEFAULTS["MAX_FILES"]
    assert "X" not in got  # only known settings


def test_process_settings_from_the_environment():
    default = settings.process_settings(env={})
    assert (default.host, default.port, default.bind, default.workers) == (
        "127.0.0.1",
        5000,
        "127.0.0.1:5000",
        1,
    )
    proxied = settings.process_settings(env={"PTDEPLOY_BIND": "unix:/tmp/s.sock", "PTDEPLOY_WORKERS": "3"})
    assert proxied.bind == "unix:/tmp/s.sock" and proxied.workers == 3
    assert settings.process_settings(env={}, default_port=8000).port == 8000
    assert settings.process_settings(env={"PTDEPLOY_REPLICAS": "2"}).replicas == 2


def load_gunicorn_conf(monkeypatch, cpus: int, **env):
    """gunicorn_conf as gunicorn loads it, on a machine with ``cpus`` usable CPUs."""
    monkeypatch.setattr("ptdeploy.resources.usable_cpus", lambda: cpus)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("ptdeploy.serving.gunicorn_conf", None)
    return importlib.import_module("ptdeploy.serving.gunicorn_conf")


def test_gunicorn_gives_each_worker_its_share_of_the_cpus(monkeypatch):
    monkeypatch.delenv("PTDEPLOY_MODEL_THREADS", raising=False)
    conf = load_gunicorn_conf(monkeypatch, 4, PTDEPLOY_WORKERS="2")
    assert (conf.workers, conf.model_threads) == (2, 2)
    assert conf.raw_env == ["PTDEPLOY_MODEL_THREADS=2"]
    conf = load_gunicorn_conf(monkeypatch, 1, PTDEPLOY_WORKERS="3")
    assert conf.model_threads == 1  # at least one
    conf = load_gunicorn_conf(monkeypatch, 4, PTDEPLOY_MODEL_THREADS="3")
    assert conf.model_threads == 3  # given explicitly
    sys.modules.pop("ptdeploy.serving.gunicorn_conf", None)
