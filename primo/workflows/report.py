"""The results page of a search: the query, what came back, and the paper's Fig. 3A/B/C.

``primo analyze`` (real reads), ``primo simulate`` and ``primo demo`` write ``OUT/report.html``::

    report.html                 the page (plain HTML and CSS, no script, nothing fetched online)
    report_files/thumbs/*.png|jpg   one thumbnail per document shown (at most 96 px; PNG for small
                                or grayscale pictures, JPEG for photographs), shared by all queries
    report_files/<query>.png    Fig. 3A and 3B of each query
    report_files/placeholder.png    drawn where a picture is missing or unreadable

The page opens offline from any folder (all links are relative) and stays small: per query it
draws the query, the ``gallery`` documents with the most reads and 5 documents at each of the 4
Fig. 3C thresholds: thumbnails of photographs take ~2.5 kB, a query's figure ~14 kB; 100 queries
of a 200,000-document run made a 3.9 MB page (1,102 distinct thumbnails), and with no picture
shared between queries it would stay under 10 MB.

For each query (one ``<section class="query">``): the query picture; the documents with the most
reads with their counts, distance to the query (and its rank: 1 = the nearest document) and labels
when known; Fig. 3A, the distances to the query among the documents at or above each threshold
(box plots: quartiles, whiskers at the 5th and 95th percentiles; computed by
:func:`primo.evaluation.results.distance_boxes`, never listed); Fig. 3B, the proportion of the
database retrieved against k-NN recall with the chance and oracle lines and the Fig. 3C thresholds
marked; Fig. 3C, the 5 closest documents within the retrieved set at 4 thresholds chosen as
:func:`primo.evaluation.results.choose_thresholds` explains; and, with an input library, the ranking
by enrichment over it.

Where pictures come from (:class:`ImageSource`), in this order: the source file recorded for each
document in the feature store by ``primo extract`` (a recorded path that no longer exists is looked
for again under the store's folder, so a folder moved with its store still works); ``--images DIR``
(``DIR/<ImageID>.<ext>`` or ``DIR/<ImageID>``, else any file under DIR whose name without extension
is the ImageID); the Fashion-MNIST pictures for ``fmnist-<split>-<row>`` IDs (the bundled subset,
or the IDX files when installed). A document whose picture is missing or cannot be decoded is drawn
as a placeholder and named in a warning on stderr; the page is written anyway. Without any picture
the page still shows every table and figure and says why there are none.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from primo.evaluation.results import summarize_query
>>> rng = np.random.default_rng(0)
>>> d = rng.uniform(0, 10, 300)
>>> r = summarize_query("q1", rng.poisson(30 * np.exp(-d)), d, [f"doc{i}" for i in range(300)],
...                     k=20)
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> info = write_results_page(out, [r], images=None, title="example")
>>> info["pictures"], (out / "report.html").exists()
(0, True)
"""

from __future__ import annotations

import html
import io
import os
import re
from pathlib import Path

import numpy as np

from ..errors import UsageError
# where the pictures come from and their thumbnails: a module of its own, importable from here
from .report_pictures import THUMB_SIZE, ImageSource, ThumbnailCache  # noqa: F401

__all__ = ["ImageSource", "ThumbnailCache", "write_results_page", "plot_query_figure",
           "THRESHOLD_COLORS"]

#: colours of the 4 Fig. 3C thresholds (triangles in Fig. 3B, boxes in 3A, rows of 3C)
THRESHOLD_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


# --------------------------------------------------------------------------------------------------
# the figure of one query: Fig. 3A and 3B
# --------------------------------------------------------------------------------------------------
def plot_query_figure(res, path, dpi: int = 90) -> Path:
    """Fig. 3A (distances among the retrieved documents) and 3B (retrieved vs recall) of a query.

    ``res`` is a :class:`~primo.evaluation.results.QueryResults`. The Fig. 3C thresholds have the
    colours of :data:`THRESHOLD_COLORS` in both panels. Written as a palette PNG (small).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    from ..evaluation.recall import chance_curve, oracle_curve

    colors = {t: THRESHOLD_COLORS[i % len(THRESHOLD_COLORS)] for i, t in enumerate(res.chosen)}
    unit = "reads" if res.ranking == "reads" else "enrichment"
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.9), dpi=dpi,
                                 gridspec_kw={"width_ratios": [1.25, 1]})
    try:
        # --- A: box plots from computed statistics
        stats, fc = [], []
        for b in res.boxes:
            if not b.get("retrieved"):
                continue
            lab = "all" if b["threshold"] is None else f"≥{_num(b['threshold'])}"
            stats.append({**{k: b[k] for k in ("med", "q1", "q3", "whislo", "whishi", "mean")},
                          "label": f"{lab}\n{_short(b['retrieved'])}", "fliers": []})
            fc.append(colors.get(b["threshold"], "#d9d9d9" if b["threshold"] is not None
                                 else "#ffffff"))
        if stats:
            arts = ax.bxp(stats, showmeans=False, showfliers=False, patch_artist=True,
                          widths=0.6, medianprops={"color": "black"})
            for patch, c in zip(arts["boxes"], fc):
                patch.set_facecolor(c)
        ax.axhline(res.kth_distance, color="grey", ls=":", lw=1)
        ax.text(0.99, res.kth_distance, f" {res.k}th nearest", transform=ax.get_yaxis_transform(),
                ha="right", va="bottom", fontsize=7, color="grey")
        ax.set_title(f"A  Distance to the query, documents with {unit} ≥ threshold", fontsize=9,
                     loc="left")
        ax.set_ylabel("Euclidean distance to the query", fontsize=8)
        ax.set_xlabel(f"threshold ({unit}) and documents retrieved", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
        # --- B: proportion retrieved vs k-NN recall
        curves = [(res, "primo (reads)" if res.enrichment is not None else "primo", "C0")]
        if res.enrichment is not None:
            curves.append((res.enrichment, "primo (enrichment)", "C1"))
        for c, name, col in curves:
            r, p = c.recall / c.k, c.proportion
            ok = (r > 0) & (p > 0)
            o = np.argsort(r[ok], kind="stable")
            bx.plot(r[ok][o], p[ok][o], color=col, lw=1.5, label=name)
        r, p = chance_curve(res.n_db, res.k)
        bx.plot(r, p, "k--", lw=1, label="chance")
        r, p = oracle_curve(res.n_db, res.k)
        bx.plot(r, p, "k-.", lw=1, label="oracle")
        for t in res.chosen:
            n, rc = res.at(t)
            if rc > 0:
                bx.plot([rc / res.k], [n / res.n_db], marker="^", ms=8, color=colors[t],
                        mec="black", mew=0.5, ls="none")
        bx.set_xscale("log")
        bx.set_yscale("log")
        bx.set_xlim(1.0 / res.k * 0.9, 1.1)
        bx.set_ylim(min(1.0 / res.n_db, 1.0) * 0.7, 1.4)
        bx.set_title(f"B  Share of the database retrieved vs {res.k}-NN recall", fontsize=9,
                     loc="left")
        bx.set_xlabel(f"recall of the {res.k} nearest neighbors", fontsize=8)
        bx.set_ylabel("proportion of the database retrieved", fontsize=8)
        bx.tick_params(labelsize=7)
        bx.grid(True, which="major", alpha=0.3)
        bx.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    buf.seek(0)
    # a palette PNG: about a third of the RGB file; the octree keeps the few accent colours
    im = Image.open(buf).convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE)
    path = Path(path)
    im.save(path, optimize=True)
    return path


def _num(t) -> str:
    t = float(t)
    return f"{t:.0f}" if t == round(t) and abs(t) < 1e15 else f"{t:.3g}"


def _short(n) -> str:
    n = int(n)
    for div, suf in ((1_000_000, "M"), (1_000, "k")):
        if n >= 10 * div:
            return f"{n / div:.0f}{suf}"
        if n >= div:
            return f"{n / div:.1f}{suf}"
    return str(n)


def _pct(v) -> str:
    if v is None:
        return "never"
    return f"{100 * v:.3g}%"


# --------------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.3em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:middle}th{background:#f3f3f3}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em;font-size:.92em}
.muted{color:#666;font-size:.88em}
.row{display:flex;flex-wrap:wrap;gap:4px;align-items:flex-start}
figure.doc{margin:0;width:102px;font-size:11px;text-align:center}
figure.doc img,.doc .noimg{width:96px;height:96px;object-fit:contain;background:#f4f4f4;
border:3px solid transparent;display:block;margin:0 auto}
.doc.nn img,.doc.nn .noimg{border-color:#2e9d4f}
.doc .noimg{display:flex;align-items:center;justify-content:center;color:#999;font-size:10px;
word-break:break-all;box-sizing:border-box;border:1px dashed #bbb}
img.px{image-rendering:pixelated}
.query-head{display:flex;gap:18px;align-items:flex-start}
.query-head figure.doc{width:140px}.query-head figure.doc img,.query-head .noimg{width:128px;
height:128px}
.grid td:first-child{white-space:nowrap;font-size:.85em}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:middle;
border:1px solid #444}
img.fig{max-width:100%;height:auto}code{word-break:break-all}
"""


class _Pictures:
    """Thumbnails of the documents a page shows (or none, with the reason)."""

    def __init__(self, cache, found, why, enabled=True):
        self.cache, self.found, self.why, self.enabled = cache, found, why, enabled

    def tag(self, image_id, size_class="") -> str:
        iid = html.escape(str(image_id))
        if not self.enabled:
            return f"<div class='noimg'>{iid}</div>"
        src = self.found.get(str(image_id))
        url = self.cache.url(image_id, src)
        px = ""
        if isinstance(src, np.ndarray) and max(src.shape[:2]) <= 48:
            px = " class='px'"
        elif url.endswith(".png") and "placeholder" not in url:
            px = " class='px'"
        return (f"<img{px} src='{html.escape(url)}' alt='{iid}' title='{iid}' loading='eager' "
                f"width='96' height='96'>")


def _doc_figure(pics: _Pictures, d, k: int, unit: str, show_label: bool) -> str:
    nn = " nn" if d.rank <= k else ""
    cnt = d.count
    cnt_s = f"{cnt:,}" if isinstance(cnt, int) else f"{cnt:.3g}"
    lab = f"<br>{html.escape(d.label)}" if show_label and d.label is not None else ""
    return (f"<figure class='doc{nn}'>{pics.tag(d.image_id)}<figcaption>"
            f"{cnt_s} {unit}<br>d = {d.distance:.3g} (#{d.rank:,}){lab}</figcaption></figure>")


def _query_section(res, pics: _Pictures, fig_url: str | None, anchor: str) -> str:
    unit = "reads" if res.ranking == "reads" else "enr."
    show_label = any(d.label is not None for d in res.top)
    qlabel = f" ({html.escape(res.label)})" if res.label else ""
    p50, p90 = res.proportion_at_recall(0.5), res.proportion_at_recall(0.9)
    out = [f"<section class='query' id='{anchor}' data-query='{html.escape(res.query_id)}'>",
           f"<h2>Query {html.escape(res.query_id)}{qlabel}</h2>",
           "<div class='query-head'>",
           f"<figure class='doc'>{pics.tag(res.query_id)}<figcaption>the query"
           f"{qlabel}</figcaption></figure>",
           "<div><table>",
           f"<tr><th>documents in the database</th><td>{res.n_db:,}</td></tr>",
           f"<tr><th>reads counted</th><td>{res.total_reads:,.0f}</td></tr>"
           if res.ranking == "reads" else "",
           f"<tr><th>{res.k}-NN recall 50% reached at</th><td>{_pct(p50)} of the database"
           "</td></tr>",
           f"<tr><th>{res.k}-NN recall 90% reached at</th><td>{_pct(p90)} of the database"
           "</td></tr>"]
    if res.enrichment is not None:
        e50 = res.enrichment.proportion_at_recall(0.5)
        out.append(f"<tr><th>50% recall, ranked by enrichment</th><td>{_pct(e50)} of the "
                   "database</td></tr>")
    for key, val in (res.extra or {}).items():
        out.append(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(val))}</td></tr>")
    out += ["</table>",
            f"<p class='muted'>A green frame marks one of the query's {res.k} nearest neighbors; "
            "d is the Euclidean distance to the query in feature space and #n its rank "
            "(#1 = the nearest document).</p></div></div>"]
    if res.top:
        out += [f"<h3>The {len(res.top)} documents with the most reads</h3>", "<div class='row'>"]
        out += [_doc_figure(pics, d, res.k, unit, show_label) for d in res.top]
        out.append("</div>")
    if fig_url:
        out += ["<h3>Fig. 3A and 3B: distances among the retrieved documents; retrieval "
                "against recall</h3>",
                f"<img class='fig' src='{html.escape(fig_url)}' alt='Fig. 3A and 3B of "
                f"{html.escape(res.query_id)}' width='900' height='351'>"]
    if res.grid:
        out += ["<h3>Fig. 3C: the closest documents among those retrieved, at 4 thresholds</h3>",
                "<p class='muted'>Retrieved: documents with at least the threshold's read count; "
                "thresholds from permissive (every document with a read) to aggressive (the last "
                "keeping 5 documents), evenly spaced on a log scale of documents retrieved "
                "(the triangles of Fig. 3B).</p>",
                "<table class='grid'>"]
        for i, (t, docs) in enumerate(res.grid.items()):
            n, rc = res.at(t)
            col = THRESHOLD_COLORS[i % len(THRESHOLD_COLORS)]
            cells = "".join(_doc_figure(pics, d, res.k, unit, show_label) for d in docs)
            out.append(f"<tr><td><span class='swatch' style='background:{col}'></span>"
                       f"≥ {_num(t)} {'reads' if res.ranking == 'reads' else 'enrichment'}<br>"
                       f"{n:,} retrieved ({_pct(n / res.n_db)})<br>recall {rc}/{res.k}</td>"
                       f"<td><div class='row'>{cells}</div></td></tr>")
        out.append("</table>")
    if res.enrichment is not None and res.enrichment.top:
        e = res.enrichment
        out += [f"<h3>Ranked by enrichment over the input library: the top {len(e.top)}</h3>",
                "<p class='muted'>Read count divided by the document's count in the input "
                "library (the pool sequenced without hybridization): divides out the pool's "
                "synthesis and amplification spread.</p><div class='row'>"]
        out += [_doc_figure(pics, d, e.k, "enr.", show_label) for d in e.top]
        out.append("</div>")
    out.append("</section>")
    return "\n".join(x for x in out if x)


def _anchor(qid: str, used: set) -> str:
    a = "q-" + re.sub(r"[^A-Za-z0-9_-]", "_", qid)
    b, n = a, 2
    while b in used:
        b, n = f"{a}-{n}", n + 1
    used.add(b)
    return b


def _find_pictures(queries, images, gallery):
    """(ImageID -> picture file or None, why the page has no pictures or None, pictures on?) for
    the queries and the documents the page draws."""
    if gallery and images is not None:
        ids = []
        for r in queries:
            ids.append(r.query_id)
            for rr in (r, r.enrichment):
                if rr is None:
                    continue
                ids += [d.image_id for d in rr.top]
                ids += [d.image_id for docs in rr.grid.values() for d in docs]
        found = images.find(ids)
        if not any(v is not None for v in found.values()):
            return found, images.why_none(), False
        return found, None, True
    if not gallery:
        return {}, "pictures are turned off (--gallery 0).", False
    return {}, ("no source of pictures was given: give --images DIR (pictures named "
                "<ImageID>.png/.jpg), or use feature stores made by primo extract, which records "
                "each image's file."), False


def _queries_table(queries, anchors, pics, enabled) -> list:
    """The table of every query's figures (pages with several queries)."""
    rows = ["<h2>Results by query</h2>", "<table><tr><th>query</th><th></th><th>label</th>"
            "<th>50% recall at</th><th>90% recall at</th></tr>"]
    for r, a in zip(queries, anchors):
        thumb = pics.tag(r.query_id) if enabled else ""
        rows.append(f"<tr><td><a href='#{a}'>{html.escape(r.query_id)}</a></td>"
                    f"<td class='doc'>{thumb}</td><td>{html.escape(r.label or '')}</td>"
                    f"<td>{_pct(r.proportion_at_recall(0.5))}</td>"
                    f"<td>{_pct(r.proportion_at_recall(0.9))}</td></tr>")
    rows.append("</table>")
    return rows


def write_results_page(out_dir, queries, *, images: ImageSource | None = None,
                       title: str = "primo: search results", gallery: bool = True,
                       intro_html: str = "", extra_html: str = "", page: str = "report.html",
                       subtitle: str | None = None, warn=None) -> dict:
    """Write ``out_dir/report.html`` and ``out_dir/report_files/`` (see the module docstring).

    Parameters
    ----------
    out_dir : path
        An existing folder (the command's output; callers write it atomically).
    queries : list of QueryResults
        From :func:`primo.evaluation.results.summarize_query`, one per query (its ``gallery``
        decides how many documents with the most reads are drawn).
    images : ImageSource, optional
        Where pictures come from; None: the page has no pictures and says so.
    title, subtitle : str
        Page heading and the line under it (default: primo version and command).
    gallery : bool
        False: no pictures at all (``--gallery 0``).
    intro_html, extra_html : str
        HTML placed before the queries / after them (the demo's run summary, a benchmark figure).
    warn : callable, optional
        Receives one-line warnings (missing or unreadable pictures); default: stderr.

    Returns
    -------
    dict with ``path``, ``queries``, ``pictures`` (thumbnails written), ``placeholders``
    (ImageIDs drawn as placeholders), ``bytes`` (page and its folder), ``why_no_pictures``.
    """
    from ..io import provenance

    out = Path(out_dir)
    if not out.is_dir():
        raise UsageError(f"cannot write the results page: {out} is not a folder")
    queries = list(queries)
    files = out / (Path(page).stem + "_files")
    files.mkdir(exist_ok=True)
    prefix = files.name + "/"
    cache = ThumbnailCache(files / "thumbs", url_prefix=prefix + "thumbs/", warn=warn)
    found, why, enabled = _find_pictures(queries, images, gallery)
    pics = _Pictures(cache, found, why, enabled)
    prov = provenance()
    sub = subtitle or (f"primo {prov.get('primo_version')} · {prov.get('command', '')}")
    body = [f"<h1>{html.escape(title)}</h1>", f"<p class='muted'>{html.escape(sub)}</p>"]
    if why:
        body.append(f"<p class='note' id='no-pictures'>No pictures on this page: "
                    f"{html.escape(why)}</p>")
    if intro_html:
        body.append(intro_html)
    used: set = set()
    anchors = [_anchor(r.query_id, used) for r in queries]
    if len(queries) > 1:
        body += _queries_table(queries, anchors, pics, enabled)
    for r, a in zip(queries, anchors):
        fig = files / f"{a}.png"
        plot_query_figure(r, fig)
        body.append(_query_section(r, pics, prefix + fig.name, a))
    if extra_html:
        body.append(extra_html)
    if cache.problems:
        rows = "".join(f"<li>{html.escape(i)}: {html.escape(s or 'no file known')} "
                       f"({html.escape(why_)})</li>" for i, s, why_ in cache.problems)
        body.append(f"<h2>Pictures drawn as placeholders</h2><ul class='muted' "
                    f"id='placeholders'>{rows}</ul>")
    doc = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width, initial-scale=1'>"
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
           + "\n".join(body) + "\n</body></html>\n")
    path = out / page
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, path)
    size = path.stat().st_size + sum(f.stat().st_size for f in files.rglob("*") if f.is_file())
    return {"path": str(path), "queries": len(queries), "pictures": cache.written,
            "placeholders": [p[0] for p in cache.problems], "bytes": size,
            "why_no_pictures": why}
