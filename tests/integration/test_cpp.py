"""The C++ programs of notebook 03: they build, print what Python computes, and fail cleanly.

The build is shared with the notebook (cpp/build/, file-locked) and done once per session here.
"""

import subprocess
import time

import pytest
import torch

from ptdeploy.lessons import cpp_build

# Tracing and scripting warn that TorchScript is deprecated; these tests use it on purpose.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")


@pytest.fixture(scope="session")
def programs():
    return cpp_build.build().programs


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """A small traced classifier (1000 classes), an input tensor and labels, written as Python would."""
    folder = tmp_path_factory.mktemp("cpp_inputs")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 1000),
    ).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.jit.trace(model, x).save(folder / "model.pt")
    torch.save(x, folder / "input.pt")
    (folder / "labels.txt").write_text("".join(f"n{i:08d} class_{i}\n" for i in range(1000)))
    with torch.no_grad():
        probs, ids = model(x).softmax(dim=1).topk(5)
    return folder, ids[0].tolist(), probs[0].tolist()


def test_build_is_incremental(programs):
    again = cpp_build.build()
    assert again.programs == programs
    assert not again.configured
    assert "Building CXX object" not in again.log  # nothing was recompiled
    assert again.torch_link in {"PACKAGE", "DIRECT"}


def test_example_app_prints_what_python_computes(programs, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 224 * 224, 7))
    ones = torch.ones(1, 3, 224, 224)
    torch.jit.trace(model, ones).save(tmp_path / "model.pt")

    result = cpp_build.run(programs["example-app"], tmp_path / "model.pt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ok"
    printed = torch.tensor([float(v) for v in lines[1].split()])
    assert printed.shape == (5,)
    assert torch.allclose(printed, model(ones)[0, :5].detach(), rtol=0, atol=1e-4)


def test_classify_prints_pythons_top5(programs, inputs):
    folder, ids, probs = inputs
    result = cpp_build.run(
        programs["classify"], folder / "model.pt", folder / "input.pt", folder / "labels.txt"
    )
    assert result.returncode == 0, result.stderr
    rows = cpp_build.parse_top5(result.stdout)
    assert [r[0] for r in rows] == ids
    assert [r[1:3] for r in rows] == [(f"n{i:08d}", f"class_{i}") for i in ids]
    assert max(abs(r[3] - p) for r, p in zip(rows, probs)) < 1e-5


def test_classify_times_runs_with_the_requested_threads(programs, inputs):
    folder, _, _ = inputs
    result = cpp_build.run(
        programs["classify"], folder / "model.pt", folder / "input.pt", folder / "labels.txt", 7, threads=1
    )
    assert result.returncode == 0, result.stderr
    threads, times = cpp_build.parse_latencies(result.stdout)
    assert threads == 1
    assert len(times) == 7 and all(t > 0 for t in times)


@pytest.mark.parametrize("name", cpp_build.PROGRAMS)
def test_no_argument_prints_usage(programs, name):
    result = cpp_build.run(programs[name])
    assert result.stderr.startswith(f"usage: {name} ")
    # The tutorial's example-app and its AOTInductor twin return -1 (255 to the shell); the classifiers
    # use 2, like argparse.
    assert result.returncode == (255 if name in {"example-app", "aoti_example_app"} else 2)
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["classify", "aoti_classify"])
def test_unknown_device_prints_usage(programs, inputs, name):
    folder = inputs[0]
    args = (folder / "model.pt", folder / "input.pt", folder / "labels.txt")
    result = cpp_build.run(programs[name], *args, "--device", "tpu")
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: {name} ") and "[--device cpu|cuda]" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer of a machine without a GPU")
def test_cuda_device_without_a_gpu_says_so(programs, inputs):
    folder = inputs[0]
    args = (folder / "model.pt", folder / "input.pt", folder / "labels.txt")
    result = cpp_build.run(programs["classify"], *args, "--device", "cuda")
    assert result.returncode == 2
    assert "CUDA is not available" in result.stderr
    assert result.stdout == ""


def test_cpu_device_is_the_default(programs, inputs):
    folder = inputs[0]
    args = (folder / "model.pt", folder / "input.pt", folder / "labels.txt")
    default = cpp_build.run(programs["classify"], *args)
    cpu = cpp_build.run(programs["classify"], *args, "--device", "cpu")
    assert cpu.returncode == 0, cpu.stderr
    assert cpu.stdout == default.stdout


def corrupt_file(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"PK\x03\x04 this is not a model" * 10)
    return path


@pytest.mark.parametrize("name", ["example-app", "aoti_example_app"])
@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_example_app_reports_a_bad_model(programs, tmp_path, name, kind):
    path = tmp_path / "missing.pt" if kind == "missing" else corrupt_file(tmp_path)
    result = cpp_build.run(programs[name], path)
    assert result.returncode == 255
    assert result.stderr == "error loading the model\n"
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["classify", "aoti_classify"])
@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_classifiers_report_a_bad_model(programs, inputs, tmp_path, name, kind):
    folder, _, _ = inputs
    path = tmp_path / "missing.pt" if kind == "missing" else corrupt_file(tmp_path)
    result = cpp_build.run(programs[name], path, folder / "input.pt", folder / "labels.txt")
    assert result.returncode == 1
    assert result.stderr.startswith("error loading the inputs: ")
    assert len(result.stderr.splitlines()) == 1  # one line, no C++ backtrace
    assert result.stdout == ""


def test_classify_reports_a_bad_input_tensor(programs, inputs, tmp_path):
    folder, _, _ = inputs
    result = cpp_build.run(
        programs["classify"], folder / "model.pt", corrupt_file(tmp_path), folder / "labels.txt"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error loading the inputs: ")


def test_module_failing_on_its_input_exits_with_the_error(programs, tmp_path):
    # The tutorial's MyModule wants a 1-D input; example-app feeds it a 4-D one.
    class Gate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.rand(10, 20))

        def forward(self, input):
            if input.sum() > 0:
                return self.weight.mv(input)
            return self.weight + input

    torch.jit.script(Gate()).save(tmp_path / "gate.pt")
    result = cpp_build.run(programs["example-app"], tmp_path / "gate.pt")
    assert result.returncode == 255
    assert result.stdout == "ok\n"
    assert result.stderr.startswith("error running the model:")
    assert "vector + matrix @ vector expected" in result.stderr
    assert "frame #" not in result.stderr  # the message, not libtorch's C++ backtrace


def test_cmake_stops_a_command_at_its_time_limit():
    start = time.perf_counter()
    result = cpp_build.cmake("-E", "sleep", "30", echo=False, check=False, timeout=1)
    assert result.returncode != 0
    assert time.perf_counter() - start < 20


def test_cmake_failure_raises_with_the_log_tail():
    with pytest.raises(cpp_build.CppBuildError, match=r"exit 1"):
        cpp_build.cmake("-E", "false", echo=False)


def test_the_fallback_is_used_exactly_where_the_tutorials_project_fails(programs, tmp_path):
    # The probe in cpp/CMakeLists.txt must agree with what the tutorial's own project does here.
    tutorial = cpp_build.cmake(
        "-S",
        "cpp/example-app",
        "-B",
        tmp_path,
        f"-DCMAKE_PREFIX_PATH={cpp_build.torch_prefix()}",
        echo=False,
        check=False,
    )
    expected = "PACKAGE" if tutorial.returncode == 0 else "DIRECT"
    assert cpp_build.torch_link() == expected
    if tutorial.returncode != 0:
        assert "find_package" in tutorial.stdout and "CMake Error" in tutorial.stdout


def test_cmake_summary_keeps_what_teaches():
    log = (
        "-- The CXX compiler identification is GNU 12.2.0\n"
        "-- Check for working CXX compiler: /usr/bin/c++ - skipped\n"
        "CMake Error at <torch>/share/cmake/Caffe2/Caffe2Config.cmake:88 (message):\n"
        "  Your installed Caffe2 version uses CUDA but I cannot find the CUDA\n"
        "Call Stack (most recent call first):\n"
        "  /usr/share/cmake-3.25/Modules/CMakeFindDependencyMacro.cmake:47 (find_package)\n"
        "\n"
        "-- Configuring incomplete, errors occurred!\n"
        "gmake[1]: Entering directory '/somewhere/cpp/build'\n"
        "[ 50%] Building CXX object CMakeFiles/example-app.dir/example-app.cpp.o\n"
        "[100%] Built target example-app\n"
    )
    assert cpp_build.summary(log) == [
        "CMake Error at <torch>/share/cmake/Caffe2/Caffe2Config.cmake:88 (message):",
        "  Your installed Caffe2 version uses CUDA but I cannot find the CUDA",
        "-- Configuring incomplete, errors occurred!",
        "[ 50%] Building CXX object CMakeFiles/example-app.dir/example-app.cpp.o",
        "[100%] Built target example-app",
    ]


def test_portable_hides_machine_folders():
    text = f'{cpp_build.TORCH_ROOTS[0]}/lib {cpp_build.REPO_ROOT}/cpp File "/tmp/ipykernel_42/123.py"'
    assert cpp_build.portable(text) == '<torch>/lib <repo>/cpp File "<cell>"'


def test_cmake_log_file_gets_the_command_and_its_output(tmp_path):
    log = tmp_path / "cmake.log"
    cpp_build.cmake("-E", "echo", "hello", echo=False, log=log)
    assert log.read_text() == "$ cmake -E echo hello\nhello\n"


def test_a_build_for_another_torch_starts_from_a_fresh_cache(monkeypatch, tmp_path):
    # CMake keeps the libtorch it found in its cache: configured for another torch, the cache must go.
    monkeypatch.setattr(cpp_build, "BUILD_DIR", tmp_path)
    (tmp_path / "CMakeCache.txt").write_text(
        "CMAKE_PREFIX_PATH:UNINITIALIZED=/other/torch/share/cmake\nTorch_DIR:PATH=/other/torch/share/cmake/Torch\n"
    )
    seen = []

    def fake_cmake(*args, **kwargs):
        seen.append((args[0], (tmp_path / "CMakeCache.txt").exists()))
        return subprocess.CompletedProcess(args, 0, stdout="")

    monkeypatch.setattr(cpp_build, "cmake", fake_cmake)
    monkeypatch.setattr(cpp_build, "built_programs", dict)
    result = cpp_build.build(jobs=1)
    assert result.configured
    assert seen == [("-S", False), ("--build", False)]  # configured without the old cache, then built
