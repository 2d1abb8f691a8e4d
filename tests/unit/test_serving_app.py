"""In-process tests of ptdeploy.serving: the batcher, image decoding, the app's JSON errors."""

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from ptdeploy.serving import create_app
from ptdeploy.serving.admission import Busy, DecodeBudget
from ptdeploy.serving.batching import Batcher
from ptdeploy.serving.images import BadImage, decode_image
from ptdeploy.tools.samples import bad_uploads, large_photo, unusual_images


def test_batcher_groups_concurrent_items_and_keeps_order():
    batcher = Batcher(lambda items: [x * 10 for x in items], max_batch_size=4, max_latency=0.05)
    futures = [batcher.submit(i) for i in range(8)]
    assert [f.result(5) for f in futures] == [i * 10 for i in range(8)]
    assert max(batcher.batch_sizes) > 1
    batcher.close()


def test_a_failing_item_fails_alone_and_the_worker_lives_on():
    def fn(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    batcher = Batcher(fn, max_batch_size=8, max_latency=0.05)
    futures = [batcher.submit(x) for x in ["a", "bad", "c"]]
    assert futures[0].result(5) == "A" and futures[2].result(5) == "C"
    with pytest.raises(ValueError):
        futures[1].result(5)
    assert batcher.alive
    assert batcher("d") == "D"
    batcher.close()


def test_batcher_serves_many_threads():
    batcher = Batcher(lambda items: (time.sleep(0.01), items)[1], max_batch_size=8, max_latency=0.002)
    results = {}

    def client(i):
        results[i] = batcher(i)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i for i in range(32)}
    assert max(batcher.batch_sizes) > 1
    batcher.close()


@pytest.mark.parametrize("name", list(unusual_images()))
def test_unusual_images_decode_to_rgb(name):
    image = decode_image(unusual_images()[name], max_pixels=40_000_000)
    assert image.mode == "RGB"
    # The cat photo is landscape; the EXIF-rotated copy is stored portrait and must come back upright.
    assert image.width > image.height


def test_sixteen_bit_png_is_not_washed_out():
    image = decode_image(unusual_images()["16-bit greyscale PNG"], max_pixels=40_000_000)
    mean = np.asarray(image.convert("L")).mean()
    assert 30 < mean < 220  # Pillow's plain convert("RGB") gives ~254 (nearly all white)


def test_bomb_is_refused_from_its_header_without_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("load() was called")

    files, status = bad_uploads()["bomb just over the limit"]
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(BadImage) as info:
        decode_image(files["file"][1], max_pixels=40_000_000)
    assert info.value.status == status == 413


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_photos_decode_at_about_the_size_the_model_needs(fmt):
    image = decode_image(large_photo(fmt), max_pixels=40_000_000, min_side=255)
    assert image.mode == "RGB" and image.width > image.height
    if fmt == "JPEG":  # decoded at 1/8 scale straight from the compressed data
        assert image.size == (750, 499)
    else:  # decoded in full, then reduced by a whole factor
        assert 255 <= image.height < 2 * 255


def test_small_images_decode_unchanged_with_min_side():
    for data in [*unusual_images().values(), large_photo("JPEG", width=500)]:
        full = decode_image(data, max_pixels=40_000_000)
        reduced = decode_image(data, max_pixels=40_000_000, min_side=255)
        assert full.size == reduced.size and full.tobytes() == reduced.tobytes()


def test_decode_budget_bounds_bytes_and_turns_away_when_the_queue_is_full():
    budget = DecodeBudget(budget_bytes=100, slots=4, max_waiting=1, max_wait_s=5)
    with budget.reserve(60):
        started = threading.Event()
        entered = threading.Event()

        def waiter():
            started.set()
            with budget.reserve(60):  # does not fit next to the first: waits
                entered.set()

        thread = threading.Thread(target=waiter)
        thread.start()
        started.wait(5)
        time.sleep(0.1)
        assert not entered.is_set()
        with pytest.raises(Busy):  # the one queue place is taken: answered at once
            with budget.reserve(60):
                pass
    thread.join(5)
    assert entered.is_set() and budget.turned_away == 1
    with budget.reserve(10**9):  # larger than the budget: runs, alone
        pass


def test_decode_budget_gives_up_after_max_wait():
    budget = DecodeBudget(budget_bytes=100, slots=1, max_waiting=8, max_wait_s=0.05)
    with budget.reserve(1):
        with pytest.raises(Busy):
            with budget.reserve(1):  # no free slot
                pass


def test_busy_is_503_with_retry_after():
    app = create_app({"LOAD_IN_BACKGROUND": False, "BATCHING": False, "DECODE_SLOTS": 1, "DECODE_QUEUE": 0})
    with app.extensions["ptdeploy"].decodes.reserve(1):
        response = app.test_client().post("/predict", data={"file": (io.BytesIO(large_photo("PNG")), "x")})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.is_json and response.json["error"] == 503


@pytest.fixture(scope="module")
def client():
    return create_app({"LOAD_IN_BACKGROUND": False, "BATCHING": False}).test_client()


def test_errors_are_json_without_tracebacks(client):
    for response, status in [
        (client.get("/nowhere"), 404),
        (client.get("/predict"), 405),
        (client.post("/predict"), 400),
    ]:
        assert response.status_code == status
        assert response.is_json and response.json["error"] == status
        assert "Traceback" not in response.get_data(as_text=True)


def test_configuration_comes_from_one_place(monkeypatch):
    monkeypatch.setenv("PTDEPLOY_CONFIDENCE_THRESHOLD", "0.9")
    app = create_app({"LOAD_IN_BACKGROUND": False, "BATCHING": False, "MAX_CONTENT_LENGTH": 1000})
    assert app.config["CONFIDENCE_THRESHOLD"] == 0.9  # environment, parsed as JSON
    assert app.config["MAX_CONTENT_LENGTH"] == 1000  # create_app's mapping
    assert not app.debug
    answer = app.test_client().post("/predict", data={"file": (open(__file__, "rb"), "x")})
    assert answer.status_code == 413  # this file is bigger than 1000 bytes


def test_low_confidence_says_so():
    from ptdeploy.paths import CAT_JPG

    app = create_app({"LOAD_IN_BACKGROUND": False, "BATCHING": False, "CONFIDENCE_THRESHOLD": 0.99})
    answer = app.test_client().post("/predict", data={"file": (open(CAT_JPG, "rb"), "cat.jpg")}).json
    assert answer["confident"] is False and "Not sure" in answer["message"]
    assert answer["class_name"] == "Egyptian_cat"  # the tutorial's keys stay
