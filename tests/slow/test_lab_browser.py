"""JupyterLab as a learner gets it from `make lab`, in a real headless Chromium (Debian's, via playwright).

One Lab server and one page load: every notebook is opened from the file browser, checked (no error
dialog, no JavaScript error, its stored figures drawn), then closed; notebook 02 gets a new cell run
through the UI. Nothing is saved; the notebooks must be byte-for-byte unchanged afterwards, and the
server must leave no process or port behind. Like `make lab`, it merges lab/overrides.json into the
venv's Lab settings; everything else it writes stays in a temporary folder.
"""

import hashlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from test_serving_browser import ARGS, CHROMIUM

from ptdeploy.paths import NOTEBOOKS_DIR, REPO_ROOT
from ptdeploy.tools import processes
from ptdeploy.tools.lab import settings_dir

TOKEN = "ptdeploy-lab-browser-test"
PLOTLY = "application/vnd.plotly.v1+json"
# Lab draws these instead of a PNG/JPEG in the same bundle (plotly first, then HTML, ...).
RICHER = (PLOTLY, "text/html", "text/markdown", "text/latex", "image/svg+xml")
RAN_CELL = "import sys, ptdeploy; print(sys.executable, ptdeploy.__file__, 6 * 7)"


def expected_figures(path: Path) -> dict[str, int]:
    """What the stored outputs should show: plain images; plotly figures stored with a static PNG, which
    Lab's plotly renderer shows until the mouse enters them; plotly figures without one, drawn at once."""
    counts = {"images": 0, "plotly_static": 0, "plotly_drawn": 0}
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY in data:
                counts["plotly_static" if "image/png" in data else "plotly_drawn"] += 1
            elif any(m in data for m in ("image/png", "image/jpeg")) and not any(m in data for m in RICHER):
                counts["images"] += 1
    return counts


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def user_settings(config_dir: Path) -> None:
    """Settings of the test's own (throwaway) Jupyter user: no autosave, so nothing is ever written.

    Closed notebooks keep their kernels, as for a learner (shutting a kernel down while Lab's debugger
    still asks it for its state logs a console error); stopping the server ends them all.
    """
    path = (
        config_dir
        / "lab"
        / "user-settings"
        / "@jupyterlab"
        / "docmanager-extension"
        / "plugin.jupyterlab-settings"
    )
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"autosave": False}))
    # Lab makes a checkpoint of a notebook when it opens it; keep those out of the repository too.
    checkpoints = {"FileCheckpoints": {"checkpoint_dir": str(config_dir.parent / "checkpoints")}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(checkpoints))


# JupyterLab's debugger panel logs this when the next notebook opens before its kernel answered the
# panel's state request; it is Lab's own bookkeeping (seen once in CI), not a problem of a notebook.
LAB_OWN = "Could not restore the debugger state: Canceled future for debug_request"


@contextmanager
def lab_page(problems: list[str], where):
    """A Chromium page; its console errors and uncaught exceptions go to ``problems``, tagged with
    ``where()`` (the notebook open at the time). Lab's own debugger bookkeeping (LAB_OWN) is left out."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on(
                "console",
                lambda m: (
                    m.type == "error" and LAB_OWN not in m.text and problems.append(f"{where()}: {m.text}")
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"{where()}: {e}"))
            yield page
        finally:
            browser.close()


def check_notebook(page, path: Path) -> list[str]:
    """Open ``path`` from the file browser and check it as it stands; returns what is wrong."""
    page.locator(".jp-DirListing-item", has_text=path.name).dblclick()
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel).to_have_count(1, timeout=60_000)
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    expect(tab).to_contain_text(path.name)
    notebook = json.loads(path.read_text())
    expect(panel.locator(".jp-Cell")).to_have_count(len(notebook["cells"]), timeout=120_000)
    want = expected_figures(path)
    plotly = panel.locator(".jp-RenderedPlotly")
    expect(plotly).to_have_count(want["plotly_static"] + want["plotly_drawn"], timeout=60_000)
    # drawn, not just created: plotly.js puts each figure's SVG in a .plot-container
    drawn = panel.locator(".js-plotly-plot:has(.plot-container .main-svg)")
    expect(drawn).to_have_count(want["plotly_drawn"], timeout=60_000)
    still = panel.locator(".jp-RenderedPlotly img.plot-img[src^='data:image/png']")
    expect(still).to_have_count(want["plotly_static"], timeout=30_000)
    images = panel.locator(".jp-OutputArea-output.jp-RenderedImage img")
    expect(images).to_have_count(want["images"], timeout=30_000)
    problems = []
    for image in images.all() + still.all():
        image.scroll_into_view_if_needed()
        if not image.evaluate("i => i.complete && i.naturalWidth > 0"):
            problems.append(f"{path.name}: an image output does not display")
    # the kernel is up once the status says idle; it may have rewritten the notebook's metadata by then
    expect(panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=60_000
    )
    if page.locator(".jp-Dialog").count():
        problems.append(f"{path.name}: dialog {page.locator('.jp-Dialog').first.inner_text()!r}")
    kernelspec = notebook["metadata"].get("kernelspec")
    modified = "jp-mod-dirty" in (tab.get_attribute("class") or "")
    if modified:  # e.g. a kernelspec whose display name is not the kernel's ("Python 3 (ipykernel)")
        problems.append(f"{path.name}: marked modified just by opening it (its kernelspec: {kernelspec})")
    if want["plotly_static"]:
        # the mouse entering a static figure makes it interactive, drawn from the stored plotly JSON
        # (the renderer then also stores a fresh PNG: the notebook counts as modified from here on)
        first = panel.locator(".jp-RenderedPlotly:has(img.plot-img)").first
        first.scroll_into_view_if_needed()
        first.locator("img.plot-img").dispatch_event("mouseenter")  # what the renderer listens for
        expect(first.locator(".plot-container .main-svg").first).to_be_visible(timeout=60_000)
    return problems


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium: `make system-packages-tests` (run by `make test`)"
)
def test_lab_opens_every_notebook_and_runs_a_cell(tmp_path):
    notebooks = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    assert len(notebooks) == 7
    notebooks.sort(key=lambda p: p.name.startswith("02"))  # 02 last: its tab stays open, unsaved
    before = snapshot(NOTEBOOKS_DIR)
    user_settings(tmp_path / "config")
    env = {
        "LAB_TOKEN": TOKEN,
        # a throwaway Jupyter user: config, settings, workspaces, runtime files all under tmp_path
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),  # the kernels' history database
    }
    command = [sys.executable, "-m", "ptdeploy.tools.lab", "--port", "{port}", "--no-browser"]
    started = time.monotonic()
    timings = []  # printed at the end (pytest -s, or with a failure): where the time goes

    def lap(what):
        timings.append(f"{time.monotonic() - started:6.1f} s  {what}")

    # started outside the repository: the kernel must still find ptdeploy
    server = processes.start(command, env=env, ready_path="/api", cwd=tmp_path, log=tmp_path / "lab.log")
    lap("server answers")
    problems: list[str] = []
    current = ["Lab"]  # console errors and uncaught exceptions are tagged with the open notebook
    kernels = []
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"token {TOKEN}"
        notification = api.get(f"{server.url}/lab/api/settings/@jupyterlab/apputils-extension:notification")
        defaults = notification.json()["schema"]["properties"]  # the project's overrides.json sets these
        assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False

        with lab_page(problems, lambda: current[0]) as page:
            page.goto(f"{server.url}/lab/tree/notebooks?token={TOKEN}")
            listing = page.locator(".jp-DirListing-item", has_text=".ipynb")
            expect(listing).to_have_count(7, timeout=90_000)
            lap("Lab shows the notebooks folder")

            for path in notebooks:
                current[0] = path.name
                problems += check_notebook(page, path)
                lap(f"{path.name} checked")
                if path.name.startswith("02"):
                    break
                page.keyboard.press("Alt+w")  # close the tab
                discard = page.locator(".jp-Dialog button", has_text="Discard")
                if discard.count():  # marked modified (noted above, or a known case): do not save
                    discard.click()
                expect(page.locator(".jp-NotebookPanel:visible")).to_have_count(0, timeout=30_000)

            # Notebook 02: a new cell at the top, run with Shift+Enter in the venv's kernel
            panel = page.locator(".jp-NotebookPanel:visible")
            panel.locator(".jp-Cell").first.click()
            page.keyboard.press("Escape")
            page.keyboard.press("a")  # insert a cell above
            page.keyboard.press("Enter")  # edit it
            page.keyboard.insert_text(RAN_CELL)
            page.keyboard.press("Shift+Enter")
            source = str(REPO_ROOT / "src" / "ptdeploy" / "__init__.py")
            output = panel.locator(".jp-Cell").first.locator(".jp-OutputArea-output")
            expect(output).to_have_text(f"{sys.executable} {source} 42", timeout=60_000)
            lap("a cell ran in 02")
            expect(page.locator(".jp-Dialog")).to_have_count(0)
            assert page.locator(".Toastify__toast", has_text="Jupyter news").count() == 0
            kernels = psutil.Process(server.process.pid).children(recursive=True)
    finally:
        server.stop()
        lap("server stopped")
        print("\n".join(timings))
    assert kernels, "no kernel process was started"
    left = [k for k in kernels if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
    for kernel in left:  # do not leave them to the next test run either
        kernel.kill()
    assert not left, f"still running after the server stopped: {left}"
    assert processes.port_is_free(server.port)
    assert snapshot(NOTEBOOKS_DIR) == before  # nothing saved, no checkpoint written
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium: `make system-packages-tests` (run by `make test`)"
)
def test_lab_in_chinese_opens_a_chinese_chapter(tmp_path):
    """`make lab LAB_LANG=zh_CN`: Lab's menus in Chinese, opened on notebooks/zh/, a Chinese chapter's
    headings rendered, no error. Lab's settings in the venv are left as they were."""
    chapter = NOTEBOOKS_DIR / "zh" / "01_flask_api.ipynb"
    title = "".join(json.loads(chapter.read_text())["cells"][0]["source"]).splitlines()[0].lstrip("# ")
    before, settings_before = snapshot(NOTEBOOKS_DIR), snapshot(settings_dir())
    user_settings(tmp_path / "config")
    env = {
        "LAB_TOKEN": TOKEN,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    command = [
        sys.executable,
        "-m",
        "ptdeploy.tools.lab",
        "--port",
        "{port}",
        "--no-browser",
        "--lang",
        "zh_CN",
    ]
    server = processes.start(command, env=env, ready_path="/api", cwd=tmp_path, log=tmp_path / "lab.log")
    problems: list[str] = []
    try:
        with lab_page(problems, lambda: chapter.name) as page:
            page.goto(f"{server.url}/?token={TOKEN}")  # to the default URL: the Chinese folder
            menu = page.locator("#jp-menu-panel .lm-MenuBar-itemLabel")
            expect(menu.first).to_have_text("文件", timeout=90_000)  # "File"
            expect(menu.nth(1)).to_have_text("编辑")  # "Edit"
            listing = page.locator(".jp-DirListing-item", has_text=".ipynb")
            expect(listing).to_have_count(7, timeout=60_000)
            problems += check_notebook(page, chapter)
            heading = page.locator(".jp-NotebookPanel:visible .jp-RenderedMarkdown h1").first
            expect(heading).to_contain_text(title)
    finally:
        server.stop()
    assert processes.port_is_free(server.port)
    assert snapshot(NOTEBOOKS_DIR) == before
    assert snapshot(settings_dir()) == settings_before  # the language is this session's own setting
    assert not problems, "\n".join(problems)
