"""The profiler tutorial's module: what the profiler measures for each version, the trace for notebook 07."""

import json

import pytest
import torch
import torch.autograd.profiler as profiler

from ptdeploy import profiling

SIDE = 128  # a 16 MiB float64 mask: every effect is visible, each profile takes well under a second


def profile_version(name: str):
    model, input, mask = profiling.make_inputs(profiling.VERSION[name], "cpu", side=SIDE)
    model(input, mask)  # warm-up
    with profiler.profile(with_stack=True, profile_memory=True) as prof:
        model(input, mask)
    return prof


@pytest.fixture(scope="module")
def profiles():
    return {v.name: profile_version(v.name) for v in profiling.VERSIONS}


def mask_indices_memory(prof) -> int:
    return -profiling.label_event(prof, "MASK INDICES").self_cpu_memory_usage


def test_the_seeded_threshold_selects_part_of_the_mask():
    model, input, mask = profiling.make_inputs(profiling.VERSION["original"], side=SIDE)
    threshold = model.linear(input).sum(axis=1).mean().item()
    assert 0.1 < threshold < 0.9
    _, idx = model(input, mask)
    assert 0 < idx.shape[0] < mask.numel()


def test_both_labels_are_in_every_profile(profiles):
    for prof in profiles.values():
        for label in profiling.LABELS:
            assert profiling.label_event(prof, label).count == 1


def test_label_event_raises_for_a_missing_label(profiles):
    with pytest.raises(KeyError):
        profiling.label_event(profiles["original"], "NO SUCH LABEL")


def test_the_step_frees_the_host_copy_of_the_mask(profiles):
    # -Self CPU Mem of MASK INDICES is the copy of the mask plus a few bytes of scalars.
    mask_bytes = SIDE**3 * 8
    assert mask_bytes <= mask_indices_memory(profiles["original"]) < mask_bytes + 4096


def test_float32_halves_the_memory_of_the_step(profiles):
    ratio = mask_indices_memory(profiles["float32"]) / mask_indices_memory(profiles["original"])
    assert ratio == pytest.approx(0.5, abs=0.01)


def test_nonzero_removes_both_copies(profiles):
    copies = {name: len(profiling.big_copies(prof)) for name, prof in profiles.items()}
    assert copies == {"original": 2, "float32": 2, "nonzero": 0}
    # What the step still frees is the boolean mask: one byte per element.
    assert SIDE**3 <= mask_indices_memory(profiles["nonzero"]) < SIDE**3 + 4096


def test_the_big_copies_are_the_mask_and_the_indices():
    model, input, mask = profiling.make_inputs(profiling.VERSION["original"], side=SIDE)
    with profiler.profile(profile_memory=True, record_shapes=True) as prof:
        _, idx = model(input, mask)
    shapes = [e.input_shapes[0] for e in profiling.big_copies(prof)]
    assert shapes == [list(mask.shape), list(idx.shape)]


def test_nonzero_finds_the_same_indices_as_numpy():
    model, input, mask = profiling.make_inputs(profiling.VERSION["float32"], side=SIDE)
    _, idx_numpy = model(input, mask)
    model, input, mask = profiling.make_inputs(profiling.VERSION["nonzero"], side=SIDE)
    _, idx_torch = model(input, mask)
    assert torch.equal(idx_numpy, torch.stack(idx_torch, dim=1))


def test_memory_table_lists_the_label_with_its_memory(profiles):
    table = profiling.memory_table(profiles["float32"])
    line = next(line for line in table.splitlines() if "MASK INDICES" in line)
    assert f"{-(SIDE**3) * 4 / 2**20:.2f} MiB" in line


def test_write_cpu_trace_writes_one_valid_trace(tmp_path):
    folder = tmp_path / "new" / "traces"
    path = profiling.write_cpu_trace(folder)
    assert path.parent == folder
    assert path.name.endswith(".pt.trace.json")
    assert [p.name for p in folder.iterdir()] == [path.name]
    trace = json.loads(path.read_text())
    names = {event.get("name") for event in trace["traceEvents"]}
    assert set(profiling.LABELS) <= names
    assert {"ProfilerStep#1", "ProfilerStep#2"} <= names
    assert "aten::nonzero" in names
    # A CPU-only trace: no GPU kernels.
    assert not any(event.get("cat") == "kernel" for event in trace["traceEvents"])


def test_write_cpu_trace_overwrites_its_own_file(tmp_path):
    first = profiling.write_cpu_trace(tmp_path, side=32)
    second = profiling.write_cpu_trace(tmp_path, side=32)
    assert first == second
    assert len(list(tmp_path.iterdir())) == 1
