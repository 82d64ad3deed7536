"""Finding and loading images: folders, list files, IDs, EXIF, colour modes, broken files."""

import numpy as np
import pytest
from PIL import Image

from primo.errors import DataError, UsageError
from primo.features.images import ImageError, collect_images, iter_image_batches, load_image
from primo.parallel import get_mapper


def _png(path, color=(10, 200, 30), size=(12, 8), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def test_folders_are_searched_recursively_in_order(tmp_path):
    _png(tmp_path / "a" / "x.png")
    _png(tmp_path / "a" / "sub" / "y.jpg")
    _png(tmp_path / "a" / ".hidden" / "h.png")
    _png(tmp_path / "a" / ".h.png")
    (tmp_path / "a" / "notes.txt").write_text("not listed: folders only take image extensions\n")
    refs, skipped = collect_images([tmp_path / "a"])
    assert [r.doc_id for r in refs] == ["x", "y"] and skipped == []
    refs, _ = collect_images([tmp_path / "a"], ids="path")
    assert sorted(r.doc_id for r in refs) == ["sub/y.jpg", "x.png"]


def test_list_file_relative_paths_comments_and_missing(tmp_path, capsys):
    _png(tmp_path / "imgs" / "one.png")
    _png(tmp_path / "imgs" / "two.png")
    lst = tmp_path / "list.txt"
    lst.write_text("# my images\nimgs/one.png\n\n  imgs/two.png  \nimgs/gone.png\n")
    refs, skipped = collect_images([lst])
    assert [r.doc_id for r in refs] == ["one", "two"]
    assert len(skipped) == 1 and "gone.png" in skipped[0][0]
    assert "line 5" in skipped[0][1] and str(lst) in skipped[0][1]
    err = capsys.readouterr().err
    assert "warning: skipped" in err and "gone.png" in err
    # the same file twice (directly and through the list) counts once
    refs, _ = collect_images([tmp_path / "imgs" / "one.png", lst])
    assert [r.doc_id for r in refs] == ["one", "two"]


def test_duplicate_stems_suggest_relative_path_ids(tmp_path):
    _png(tmp_path / "d" / "cats" / "001.jpg")
    _png(tmp_path / "d" / "dogs" / "001.jpg")
    with pytest.raises(DataError, match="two images have the document ID '001'") as e:
        collect_images([tmp_path / "d"])
    assert "--ids path" in str(e.value) and "cats" in str(e.value) and "dogs" in str(e.value)
    refs, _ = collect_images([tmp_path / "d"], ids="path")
    assert sorted(r.doc_id for r in refs) == ["cats/001.jpg", "dogs/001.jpg"]


def test_folder_without_images_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("x")
    with pytest.raises(UsageError, match="folder .*empty contains no images") as e:
        collect_images([tmp_path / "empty"])
    assert "\n" not in str(e.value) and ".jpg" in str(e.value)
    with pytest.raises(UsageError, match="contains no images; it has 1 other file"):
        collect_images([tmp_path / "docs"])
    with pytest.raises(UsageError, match="does not exist"):
        collect_images([tmp_path / "nope"])
    with pytest.raises(UsageError, match="no images given"):
        collect_images([])
    empty_list = tmp_path / "l.txt"
    empty_list.write_text("# nothing\n")
    with pytest.raises(UsageError, match="names no images"):
        collect_images([empty_list])


def test_exif_rotation(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "r.jpg"
    img.save(p, exif=exif, quality=95)
    a = load_image(p)
    assert a.shape == (40, 20, 3)  # portrait after rotation
    assert a[2, 10, 2] > 200 and a[-3, 10, 0] > 200  # blue now on top, red at the bottom


def test_colour_modes_become_rgb(tmp_path):
    gray = load_image(_png(tmp_path / "g.png", 128, mode="L"))
    assert gray.shape == (8, 12, 3) and (gray == 128).all()
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 255, 0] + [0] * 765)
    pal.save(tmp_path / "p.png")
    assert (load_image(tmp_path / "p.png") == [0, 255, 0]).all()
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    c = load_image(tmp_path / "c.jpg")
    assert c.shape == (4, 4, 3) and c[..., 0].mean() > 200 and c[..., 1].mean() < 60
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent black -> white
    rgba.putpixel((0, 0), (0, 0, 0, 255))
    rgba.save(tmp_path / "a.png")
    a = load_image(tmp_path / "a.png")
    assert (a[0, 0] == 0).all() and (a[1:, 1:] == 255).all()
    la = Image.new("LA", (3, 3), (0, 0))
    la.save(tmp_path / "la.png")
    assert (load_image(tmp_path / "la.png") == 255).all()
    deep = Image.fromarray(np.full((5, 5), 65535, np.uint16))
    deep.save(tmp_path / "d16.png")
    assert (load_image(tmp_path / "d16.png") == 255).all()
    assert load_image(tmp_path / "g.png", 6, mode="L").shape == (6, 6)


def test_broken_files_raise_image_error(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is not a JPEG\n")
    with pytest.raises(ImageError, match="not an image") as e:
        load_image(fake)
    assert str(fake) in str(e.value)
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as e:
        load_image(cut, 32)
    assert str(cut) in str(e.value)


@pytest.mark.parametrize("processes", [1, 2])
def test_batches_skip_bad_files_and_keep_order(tmp_path, processes, capsys):
    for k in range(7):
        _png(tmp_path / f"i{k}.png", (k * 30, 0, 0))
    (tmp_path / "i3.png").write_bytes(b"\x89PNG broken")
    refs, _ = collect_images([tmp_path])
    with get_mapper(processes) as m:
        batches = list(iter_image_batches(refs, 3, 5, mapper=m if processes > 1 else None))
    ids = [i for b in batches for i in b[0]]
    assert ids == ["i0", "i1", "i2", "i4", "i5", "i6"]
    arr = np.concatenate([b[1] for b in batches])
    assert arr.shape == (6, 5, 5, 3) and arr[:, 0, 0, 0].tolist() == [0, 30, 60, 120, 150, 180]
    bad = [s for b in batches for s in b[2]]
    assert len(bad) == 1 and bad[0][0].endswith("i3.png")
    assert "skipped" in capsys.readouterr().err
