"""The notebook runner, run for real: a Jupyter kernel executes small notebooks (integration; the
checks of the stored notebooks themselves are unit tests in test_notebook_outputs.py)."""

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ptdeploy.tools import processes
from ptdeploy.tools.notebooks import execute, stale_output_problems


def test_run_reports_the_peak_memory_of_the_kernel(tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell(
                # held for a second: the sampler looks every 0.2 s, and a busy machine can delay it
                "import time\nblock = bytearray(300 * 2**20)\nblock[::4096] = b'x' * 76800\ntime.sleep(1)"
            )
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path = tmp_path / "00_memory.ipynb"
    nbformat.write(nb, path)
    result, executed = execute(path)
    assert result.ok, result.error
    assert result.peak_mib > 300  # the kernel held 300 MiB of touched memory
    assert executed.cells[0].execution_count == 1


@pytest.fixture(scope="module")
def executed_fixture(tmp_path_factory):
    """A small notebook, executed for real by the same runner that refreshes the notebooks."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# fixture"),
        nbformat.v4.new_code_cell("x = 6 * 7"),
        nbformat.v4.new_code_cell("print(x)"),
        nbformat.v4.new_code_cell("x + 1"),
    ]
    path = tmp_path_factory.mktemp("nb") / "fixture.ipynb"
    nbformat.write(nb, path)
    result, executed = execute(path)
    assert result.ok, result.error
    return executed


def test_a_complete_run_passes(executed_fixture):
    assert stale_output_problems(executed_fixture) == []
    assert executed_fixture.cells[2].outputs[0].text == "42\n"


def test_a_partial_run_fails(executed_fixture):
    nb = nbformat.from_dict(executed_fixture)
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # deep copy
    nb.cells[3].execution_count = None
    nb.cells[3].outputs = []
    assert stale_output_problems(nb) == ["1 of 3 code cells were never executed"]


def test_an_out_of_order_run_fails(executed_fixture):
    nb = nbformat.reads(nbformat.writes(executed_fixture), as_version=4)
    nb.cells[1].execution_count, nb.cells[2].execution_count = 2, 1
    assert "not 1..3 in order" in stale_output_problems(nb)[0]


def test_a_rerun_cell_fails(executed_fixture):
    nb = nbformat.reads(nbformat.writes(executed_fixture), as_version=4)
    nb.cells[3].execution_count = 7  # re-run by hand after the others
    assert stale_output_problems(nb)


def test_a_stored_error_fails(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("1 / 0")]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    result, executed = execute(path)
    assert not result.ok and result.error == "ZeroDivisionError: division by zero"  # no terminal colours
    assert stale_output_problems(executed) == ["stored error output in code cell(s) [0]"]


def test_a_notebook_that_fails_halfway_leaves_no_server_running(tmp_path):
    # Its last cell, the one that would stop the server, never runs: the kernel's shutdown stops it.
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import sys\nfrom ptdeploy.tools import processes\n"
            "command = [sys.executable, '-m', 'http.server', '{port}', '--bind', '127.0.0.1']\n"
            "server = processes.start(command, ready_path='/', any_answer=True)\n"
            "print(server.port, server.process.pid)"
        ),
        nbformat.v4.new_code_cell("raise RuntimeError('halfway')"),
        nbformat.v4.new_code_cell("server.stop()"),
    ]
    path = tmp_path / "server.ipynb"
    nbformat.write(nb, path)
    result, executed = execute(path)
    assert result.error == "RuntimeError: halfway"
    port, pid = map(int, executed.cells[0].outputs[0].text.split())
    assert processes.port_is_free(port)
    assert not psutil.pid_exists(pid)


def test_kernel_stderr_goes_to_a_log_and_skipped_sections_do_not_run(tmp_path, monkeypatch, capfd):
    import ptdeploy.tools.notebooks as runner

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nos.write(2, b'said by a C library\\n')"),
        nbformat.v4.new_code_cell("raise RuntimeError('should have been skipped')"),
    ]
    nb.cells[1].metadata["tags"] = ["needs-big"]
    path = tmp_path / "00_skips.ipynb"
    nbformat.write(nb, path)
    entry = runner.Skip(path.name, "needs-big", "small machine", "too big for this machine here")
    monkeypatch.setattr(runner, "skip_list", lambda: [entry])
    monkeypatch.setitem(runner.CONDITIONS, "small machine", lambda: True)
    result, executed = execute(path, progress=False)
    assert result.ok, result.error
    assert result.skipped == ["1 cells tagged needs-big on a small machine: too big for this machine here"]
    assert executed.cells[1].metadata["tags"] == ["needs-big"]  # the runner's own tag is gone again
    assert result.kernel_log.read_text() == "said by a C library\n"
    assert "said by a C library" not in capfd.readouterr().err  # not on the terminal
    result.kernel_log.unlink()
