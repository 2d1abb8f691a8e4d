"""A server that dies at start-up says why: its last lines come with the error."""

import sys

import pytest

from ptdeploy.tools import processes


def test_a_server_that_exits_at_once_reports_its_last_words():
    command = [
        sys.executable,
        "-c",
        "import sys; print('nginx is not installed', file=sys.stderr); sys.exit(1)",
    ]
    with pytest.raises(RuntimeError, match=r"exited with code 1 before it was ready; it said:\nnginx is not"):
        processes.start(command, timeout=30)
