"""The notebooks' source display shows exactly the code that runs."""

import inspect

from ptdeploy import paths
from ptdeploy.tools.show import show_file, show_source


def test_show_source_is_the_defining_source_with_its_location():
    code = show_source(paths.output_dir)
    assert code.data.startswith("# output_dir, defined in src/ptdeploy/paths.py\n")
    assert code.data.endswith(inspect.getsource(paths.output_dir))


def test_show_file_picks_lines_and_language(tmp_path):
    cmake = tmp_path / "CMakeLists.txt"
    cmake.write_text("line 1\nline 2\nline 3\n")
    code = show_file(cmake, 2, 3)
    assert code.data == "line 2\nline 3"
    assert code.language == "cmake"


def test_markdown_listing_is_a_fenced_block_of_the_same_source():
    code = show_source(paths.output_dir)
    block = show_source(paths.output_dir, markdown=True)
    assert block.data == f"```python\n{code.data.rstrip()}\n```"


def test_a_decorated_function_shows_its_own_file():
    from ptdeploy.serving.admission import DecodeBudget

    assert show_source(DecodeBudget.reserve).data.startswith(
        "# DecodeBudget.reserve, defined in src/ptdeploy/serving/admission.py\n"
    )


def test_a_library_function_shows_its_path_inside_its_package():
    import json.decoder

    import hta.common.trace_parser as trace_parser

    assert "defined in hta/common/trace_parser.py\n" in show_source(trace_parser.round_down_time_stamps).data
    assert show_source(json.decoder.JSONDecoder).data.startswith("# JSONDecoder, defined in decoder.py")
