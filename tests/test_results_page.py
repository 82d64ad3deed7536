"""The results page: threshold selection, computed distance distributions, the thumbnail cache,
image paths recorded at extraction, ``primo analyze``'s report.html opened in a real browser."""

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import primo.evaluation.results
import primo.workflows.report
from primo.evaluation.results import choose_thresholds, distance_boxes, summarize_query
from primo.errors import UsageError
from primo.workflows.report import ImageSource, ThumbnailCache, write_results_page

from _browser import check_page


# ------------------------------------------------------------------------- threshold selection
def test_thresholds_span_permissive_to_aggressive_in_log_steps():
    t = np.array([0, 1, 2, 3, 4, 6, 9, 14, 20, 30, 50])
    r = np.array([100000, 20000, 9000, 4000, 2000, 700, 200, 60, 20, 5, 1])
    got = choose_thresholds(t, r)
    # lowest threshold above 0, highest still retrieving 5 documents, and between them the
    # thresholds nearest to 20000 * (5/20000)**(1/3) = 317 and **(2/3) = 5.0e0 * ... in log scale
    assert got[0] == 1 and got[-1] == 30 and len(got) == 4
    targets = np.geomspace(20000, 5, 4)[1:3]
    for th, target in zip(got[1:3], targets):
        cand = t[(t > 0) & (r >= 5)]
        best = cand[np.argmin(np.abs(np.log(r[(t > 0) & (r >= 5)]) - np.log(target)))]
        assert th == best


def test_thresholds_with_few_candidates_and_fallbacks():
    # fewer candidates than asked: all of them; 0 never (it retrieves the whole database)
    assert choose_thresholds([0, 2, 7], [50, 9, 6]) == [2, 7]
    # no set keeps 5 documents: those keeping at least one
    assert choose_thresholds([0, 1, 3], [40, 3, 1]) == [1, 3]
    assert choose_thresholds([0], [40]) == []
    # enrichment scores (floats) work the same way, and each threshold is used once
    t = np.array([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0])
    r = np.array([1000, 900, 880, 870, 50, 6, 1])
    got = choose_thresholds(t, r)
    assert got == sorted(set(got)) and len(got) == 4 and got[0] == 0.25 and got[-1] == 2.0


def test_distance_boxes_match_the_retrieved_sets():
    rng = np.random.default_rng(1)
    c = rng.poisson(2, 2000)
    d = rng.uniform(0, 5, 2000)
    boxes = distance_boxes(c, d, [1, 3])
    for b, t in zip(boxes, [None, 1, 3]):
        sel = d if t is None else d[c >= t]
        assert b["retrieved"] == len(sel)
        assert b["med"] == pytest.approx(np.median(sel))
        assert b["q1"] == pytest.approx(np.percentile(sel, 25))
        assert b["whishi"] == pytest.approx(np.percentile(sel, 95))
        assert b["mean"] == pytest.approx(sel.mean())


def test_summary_picks_the_closest_retrieved_and_the_most_reads():
    rng = np.random.default_rng(2)
    n = 400
    d = rng.uniform(0, 10, n)
    c = rng.poisson(40 * np.exp(-d / 2))
    c[[9, 4]] = c.max() + 1          # a tie at the top: pool order decides
    ids = [f"doc{i:03d}" for i in range(n)]
    labels = np.array(["a" if i % 2 else "b" for i in range(n)], dtype=object)
    r = summarize_query("q", c, d, ids, k=30, gallery=6, labels=labels, query_label="a")
    assert [x.image_id for x in r.top[:2]] == ["doc004", "doc009"]
    assert [x.count for x in r.top] == sorted((x.count for x in r.top), reverse=True)
    assert r.top[0].label == "b" and r.top[1].label == "a"
    assert len(r.chosen) == 4
    order = np.argsort(d)
    for t, docs in r.grid.items():
        inside = np.flatnonzero(c >= t)
        want = inside[np.argsort(d[inside], kind="stable")][:5]
        assert [x.image_id for x in docs] == [ids[i] for i in want]
        assert all(x.rank == int(np.flatnonzero(order == int(x.image_id[3:]))[0]) + 1
                   for x in docs)
    assert r.kth_distance == pytest.approx(np.sort(d)[29])
    with pytest.raises(UsageError):
        summarize_query("q", c[:10], d, ids)


# ------------------------------------------------------------------------- thumbnails
def _photo(path, w=300, h=200, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h)], -1).astype(np.uint8)
    a = np.clip(a + rng.integers(0, 30, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(path, quality=90)
    return path


def test_thumbnail_cache_shrinks_and_reuses(tmp_path):
    messages = []
    cache = ThumbnailCache(tmp_path / "thumbs", url_prefix="t/", warn=messages.append)
    big = _photo(tmp_path / "big.jpg")
    u = cache.url("big", big)
    assert u.startswith("t/") and u.endswith(".jpg")
    im = Image.open(tmp_path / "thumbs" / u[2:])
    assert max(im.size) == 96 and im.size[0] > im.size[1]     # aspect kept
    assert cache.url("big", big) == u and cache.written == 1   # once per document
    small = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    us = cache.url("fmnist-x", small)
    assert us.endswith(".png") and Image.open(tmp_path / "thumbs" / us[2:]).size == (28, 28)
    assert not messages and not cache.problems


def test_corrupt_or_missing_pictures_become_placeholders_named_in_warnings(tmp_path):
    messages = []
    cache = ThumbnailCache(tmp_path / "thumbs", url_prefix="t/", warn=messages.append)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ph = cache.url("docB", bad)
    assert ph == "t/placeholder.png" and (tmp_path / "thumbs" / "placeholder.png").is_file()
    assert cache.url("docM", tmp_path / "gone.jpg") == ph
    assert cache.url("docN", None) == ph
    assert [p[0] for p in cache.problems] == ["docB", "docM", "docN"]
    assert "docB" in messages[0] and str(bad) in messages[0] and "placeholder" in messages[0]
    assert "gone.jpg" in messages[1] and "does not exist" in messages[1]


def test_page_is_written_with_placeholders(tmp_path, capsys):
    n = 60
    rng = np.random.default_rng(3)
    d = rng.uniform(0, 5, n)
    c = rng.poisson(30 * np.exp(-d))
    ids = [f"p{i:02d}" for i in range(n)]
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(n):
        _photo(pics / f"p{i:02d}.jpg", 120, 90, seed=i)
    top = ids[int(np.argmax(c))]
    (pics / f"{top}.jpg").write_bytes(b"garbage")            # corrupt
    _photo(pics / "q.jpg")
    res = summarize_query("q", c, d, ids, k=10, gallery=5)
    out = tmp_path / "out"
    out.mkdir()
    info = write_results_page(out, [res], images=ImageSource(images_dir=pics))
    assert top in info["placeholders"] and info["pictures"] > 5
    err = capsys.readouterr().err
    assert f"no picture of document {top}" in err and "primo: warning:" in err
    page = (out / "report.html").read_text()
    assert "id='placeholders'" in page and top in page
    srcs = re.findall(r"src='([^']+)'", page)
    assert srcs and all((out / s).is_file() for s in srcs)     # every link resolves offline
    assert not re.search(r"(src|href)='(https?:|/)", page)       # nothing absolute or online


def test_page_without_pictures_says_why(tmp_path):
    rng = np.random.default_rng(4)
    d = rng.uniform(0, 5, 50)
    res = summarize_query("q", rng.poisson(5, 50), d, [f"x{i}" for i in range(50)], k=10)
    info = write_results_page(tmp_path, [res], images=ImageSource(stores=[], bundled=False))
    page = (tmp_path / "report.html").read_text()
    assert info["pictures"] == 0 and "No pictures on this page" in page
    assert "--images" in info["why_no_pictures"]
    assert "<img" in page and "thumbs/" not in page                # the figures, no thumbnails


def test_page_size_per_query_stays_small(tmp_path):
    """~20 MB for 100 queries: at most 200 kB per query with photographs (all different)."""
    n, nq = 120, 4
    rng = np.random.default_rng(5)
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(n):
        _photo(pics / f"d{i}.jpg", 200, 150, seed=i)
    ids = [f"d{i}" for i in range(n)]
    results = []
    for q in range(nq):
        d = rng.uniform(0, 5, n)
        results.append(summarize_query(ids[q], rng.poisson(30 * np.exp(-d)), d, ids, k=30,
                                       gallery=10))
    out = tmp_path / "out"
    out.mkdir()
    info = write_results_page(out, results, images=ImageSource(images_dir=pics))
    assert info["pictures"] > 30
    assert info["bytes"] / nq < 200_000, info["bytes"]


# ------------------------------------------------------------------------- image paths in stores
@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """40 bundled images (pixels:8 features, fast), their store, a query, counts by distance."""
    from primo.cli import main
    from primo.features.datasets import demo_images
    from primo.features.store import FeatureStore

    d = tmp_path_factory.mktemp("page")
    demo_images(d / "imgs", n=40)
    (d / "imgs" / "labels.csv").rename(d / "labels_full.csv")
    qdir = d / "q"
    qdir.mkdir()
    shutil.copy(d / "imgs" / "fmnist-test-00003.png", qdir / "query-1.png")
    assert main(["extract", str(d / "imgs"), "--model", "pixels:8", "-o",
                 str(d / "f.h5")]).exit_code == 0
    assert main(["extract", str(qdir), "--model", "pixels:8", "-o", str(d / "q.h5")]).exit_code == 0
    with FeatureStore.open(d / "f.h5") as fs:
        ids = fs.ids.tolist()
        X = fs.read()
    with FeatureStore.open(d / "q.h5") as qs:
        q = qs.read()[0]
    dist = np.sqrt(((X - q) ** 2).sum(1))
    counts = np.random.default_rng(0).poisson(60 * np.exp(-dist / dist.std()))
    with open(d / "counts.csv", "w") as fh:
        fh.write("ImageID,Count\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, counts)))
    with open(d / "labels.csv", "w") as fh:
        fh.write("ImageID,Label\nquery-1,Shirt\n" + "".join(
            line.split(",")[0] + "," + line.strip().split(",")[2] + "\n"
            for line in open(d / "labels_full.csv").readlines()[1:]))
    return d


def test_extract_records_each_source_image(small_run):
    from primo.features.store import FeatureStore

    with FeatureStore.open(small_run / "f.h5") as fs:
        assert fs.has_paths
        ids = fs.ids.tolist()[:3]
        paths = fs.paths_of(ids)
    assert [p.split("/")[-1] for p in paths] == [f"{i}.png" for i in ids]
    assert all((small_run / "imgs" / f"{i}.png").samefile(p) for i, p in zip(ids, paths))


def test_analyze_writes_the_page_and_it_opens_in_a_browser(small_run, tmp_path, run_cli):
    out = tmp_path / "an"
    res, _, err = run_cli(["analyze", "--counts", small_run / "counts.csv", "--features",
                           small_run / "f.h5", "--queries", small_run / "q.h5", "--labels",
                           small_run / "labels.csv", "--neighbors", "10", "--gallery", "6",
                           "-o", out])
    assert res.exit_code == 0, err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["search"]["report"]["pictures"] >= 7
    assert not stats["search"]["report"]["placeholders"]
    page = (out / "report.html").read_text()
    assert "query-1" in page and "Fig. 3C" in page and "Shirt" in page
    shown = check_page(out / "report.html", ["query-1"])
    assert len(shown["images"]) >= 1 + 6 + 1     # query, gallery, figure (+ Fig. 3C)


def test_moved_pictures_are_found_again(small_run, tmp_path, run_cli):
    from primo.cli import main

    a = tmp_path / "a"
    shutil.copytree(small_run / "imgs", a / "imgs")
    assert main(["extract", str(a / "imgs"), "--model", "pixels:8", "-o",
                 str(a / "f.h5")]).exit_code == 0
    # the store moved with its pictures: found under the store's new folder
    shutil.move(a, tmp_path / "b")
    src = ImageSource([tmp_path / "b" / "f.h5"], bundled=False)
    assert src.find(["fmnist-test-00003"])["fmnist-test-00003"] == (
        tmp_path / "b" / "imgs" / "fmnist-test-00003.png")
    # the pictures moved elsewhere: --images finds them (also in a sub-folder)
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "b" / "imgs", moved / "nested")
    shutil.copy(small_run / "q" / "query-1.png", moved / "query-1.png")
    store = tmp_path / "b" / "f.h5"
    src = ImageSource([tmp_path / "missing.h5", store], images_dir=moved, bundled=False)
    found = src.find(["fmnist-test-00003", "query-1", "unknown-doc"])
    assert found["fmnist-test-00003"] == moved / "nested" / "fmnist-test-00003.png"
    assert found["query-1"] == moved / "query-1.png" and found["unknown-doc"] is None
    # without --images the recorded file is missing: a placeholder names it
    src = ImageSource([store], bundled=False)
    assert not src.find(["fmnist-test-00003"])["fmnist-test-00003"].exists()
    out = tmp_path / "an"
    res, _, err = run_cli(["analyze", "--counts", small_run / "counts.csv", "--features", store,
                           "--queries", small_run / "q.h5", "--images", moved, "--gallery", "0",
                           "--neighbors", "10",
                           "-o", out])
    assert res.exit_code == 0, err
    page = (out / "report.html").read_text()
    assert "pictures are turned off (--gallery 0)" in page and "thumbs/" not in page
    res, _, err = run_cli(["analyze", "--counts", small_run / "counts.csv", "--features", store,
                           "--queries", small_run / "q.h5", "--images", tmp_path / "nope", "-o",
                           tmp_path / "an2"])
    assert res.exit_code == 2 and "--images" in err and "nope" in err


def test_the_browser_check_catches_broken_images_and_console_errors(tmp_path):
    from _browser import require_browser

    require_browser()
    Image.new("L", (4, 4), 90).save(tmp_path / "ok.png")
    page = tmp_path / "broken.html"
    page.write_text("<html><body><section class='query' data-query='q'>"
                    "<img src='ok.png'><img src='missing.png'></section></body></html>")
    with pytest.raises(AssertionError, match="missing.png"):
        check_page(page, ["q"])
    page.write_text("<html><body><section class='query' data-query='q'><img src='ok.png'>"
                    "</section><script>console.error('boom')</script></body></html>")
    with pytest.raises(AssertionError, match="boom"):
        check_page(page, ["q"])
    with pytest.raises(AssertionError):
        check_page(page, ["q", "another query"])
