"""Issue 29: a clean start. Nothing on stderr that is not primo's own: no CUDA (``cuInit``),
oneDNN, absl or TensorFlow lines, at import or at run time, through the library and the command
line. Each case runs in a fresh Python process with the user's environment (none of the test
suite's ``TF_CPP_MIN_LOG_LEVEL`` / ``PRIMO_QUIET``), as a user would start it."""

import os
import re
import subprocess
import sys

import pytest

# lines primo writes on stderr: its messages and the "wrote ..." notes
PRIMO_LINE = re.compile(r"^(primo( [\w-]+)?: |wrote )")


def _run(args, cwd, **kw):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_", "PRIMO_")) and k not in ("KERAS_BACKEND",)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, **kw)


def _foreign(stderr: str) -> list:
    return [line for line in stderr.splitlines() if not PRIMO_LINE.match(line)]


@pytest.fixture(scope="module")
def three_images(tmp_path_factory):
    from PIL import Image

    from primo.features.datasets import demo_arrays

    root = tmp_path_factory.mktemp("quiet")
    ids, images, _ = demo_arrays()
    (root / "img").mkdir()
    for i in range(3):
        Image.fromarray(images[i]).save(root / "img" / f"{ids[i]}.png")
    return root


def test_library_import_and_a_keras_computation_print_nothing(tmp_path):
    pytest.importorskip("keras")
    code = ("import primo.predictor.model, keras, numpy as np\n"
            "import tensorflow as tf\n"
            "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
            "print(m.predict(np.ones((3, 4), np.float32), verbose=0).shape, tf.reduce_sum(tf.ones(3)).numpy())")
    res = _run(["-c", code], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(3, 2) 3.0"
    assert res.stderr == "", res.stderr


def test_extract_prints_only_its_own_line(three_images):
    pytest.importorskip("keras")
    res = _run(["-m", "primo", "extract", "img", "-o", "f.h5", "--model", "fashion-embed",
                "--overwrite"], three_images)
    assert res.returncode == 0, res.stderr
    assert _foreign(res.stderr) == [], res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wrote 3 64-d vectors (fashion-embed)")


def test_an_error_of_a_tensorflow_command_is_one_line(three_images):
    pytest.importorskip("keras")
    # extract imports TensorFlow once its options have parsed, then fails on the module
    res = _run(["-m", "primo", "extract", "img", "-o", "g.h5", "--model", "hub:img"], three_images)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("primo extract: error: "), res.stderr
    assert "no saved_model.pb" in res.stderr
    assert not (three_images / "g.h5").exists()


def test_tensorflow_lines_come_back_on_request(tmp_path):
    """TF_CPP_MIN_LOG_LEVEL=0 keeps TensorFlow's own start-up lines (for debugging an install):
    the silencing is primo's doing, not an accident of this machine."""
    pytest.importorskip("tensorflow")
    env_code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'\nimport primo, tensorflow\n"
    res = _run(["-c", env_code], tmp_path)
    assert res.returncode == 0, res.stderr
    if res.stderr == "":
        pytest.skip("this TensorFlow prints nothing at import")
    assert "oneDNN" in res.stderr or "absl" in res.stderr or "tensorflow" in res.stderr.lower()
