"""A static zoo site: plain HTML + CSS + the cards' PNGs, readable from `file://`.

`build_site(the_zoo, output_dir)` writes

- `index.html`: one row per version (kind, name, version, signal class, model, the
  kind's headline cells, a thumbnail), with a filter box and sortable columns (a few
  lines of inline JavaScript, no network, no external file);
- `<name>/<version>/index.html`: the version's card (its `README.md`) as HTML, with
  the card's pictures copied beside it and links to the other versions of the entry;
- `style.css`, copied from `learnit_tf/zoo/site_assets/`.

Every page is generated from the zoo index and the cards (a version without a card,
e.g. in a remote zoo, gets the card `learnit_tf.zoo.card` makes of its metadata), so the
site cannot disagree with them. Output goes through `OutputDir`: a folder that holds
files is refused unless `overwrite=True`, and then only the site's own files change.
"""

import html
import os
import re
import shutil

from learnit_tf.core.output_dir import OutputDir
from learnit_tf.zoo import card

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site_assets")
STYLE_FILE = "style.css"
PAGE_FILE = "index.html"
SITE_FILES = (PAGE_FILE, STYLE_FILE, "*/*/" + PAGE_FILE, "*/*/*.png")
INDEX_COLUMNS = ("kind", "name", "version", "signal class", "model", "metric", "this init",
                 "standard init", "at", "standard needs", "picture")

_FILTER_AND_SORT = """
document.getElementById('filter').addEventListener('input', function (event) {
  var words = event.target.value.toLowerCase().split(/\\s+/).filter(Boolean);
  var rows = document.querySelectorAll('#zoo tbody tr');
  var shown = 0;
  rows.forEach(function (row) {
    var text = row.textContent.toLowerCase();
    var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
    row.hidden = !keep;
    if (keep) { shown += 1; }
  });
  document.getElementById('shown').textContent = shown;
});
document.querySelectorAll('#zoo th[data-sort]').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = document.querySelector('#zoo tbody');
    var up = th.getAttribute('aria-sort') !== 'ascending';
    document.querySelectorAll('#zoo th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var key = function (row) {
      var cell = row.children[index];
      var value = cell.getAttribute('data-value');
      return value === null ? cell.textContent.trim() : parseFloat(value);
    };
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      var order = (typeof x === 'number' && typeof y === 'number') ? x - y
        : String(x).localeCompare(String(y));
      return up ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


# ------------------------------------------------------------------ Markdown -> HTML


def _inline(text):
    """Inline Markdown of the cards: `code`, **bold**, ![alt](src), [text](href)."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)",
                      lambda m: f'<img src="{html.escape(m.group(2))}" '
                                f'alt="{html.escape(m.group(1))}">', part)
        part = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)",
                      lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', part)
        out.append(part)
    return "".join(out)


def _cells(line):
    line = line.strip().strip("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def markdown_to_html(text):
    """The Markdown subset cards are written in (headings, paragraphs, tables, fenced
    code, images, inline code/bold/links) as HTML; HTML comments are dropped.

    >>> markdown_to_html("# T\\n\\n| a | b |\\n|---|---|\\n| `x` | **2** |\\n")
    '<h1>T</h1>\\n<table>\\n<thead><tr><th>a</th><th>b</th></tr></thead>\\n<tbody>\\n<tr><td><code>x</code></td><td><strong>2</strong></td></tr>\\n</tbody></table>'
    """
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            language = line[3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            code = html.escape("\n".join(lines[i + 1:j]))
            out.append(f'<pre><code class="language-{html.escape(language)}">{code}</code></pre>')
            i = j + 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            header, body = _cells(lines[i]), [_cells(l) for l in lines[i + 2:j]]
            rows = ["<table>", "<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in header)
                    + "</tr></thead>", "<tbody>"]
            rows += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                     for row in body]
            out.append("\n".join(rows) + "\n</tbody></table>")
            i = j
        else:
            j = i
            while j < len(lines) and lines[j].strip() and not lines[j].startswith(
                    ("#", "|", "```")):
                j += 1
            paragraph = _inline(" ".join(l.strip() for l in lines[i:j]))
            tag = "figure" if paragraph.startswith("<img") else "p"
            out.append(f"<{tag}>{paragraph}</{tag}>")
            i = j
    return "\n".join(out)


# --------------------------------------------------------------------------- pages


def _page(title, body, root, script=""):
    script = f"<script>{script}</script>\n" if script else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n"
            f'<link rel="stylesheet" href="{root}{STYLE_FILE}">\n</head>\n<body>\n'
            f'<nav><a href="{root}{PAGE_FILE}">learnit_tf zoo</a></nav>\n<main>\n{body}\n'
            f"</main>\n{script}</body>\n</html>\n")


def _card_source(record):
    """(card Markdown, {picture: path}) of a version: its README.md when shipped with it."""
    directory = record.directory
    path = os.path.join(directory, card.CARD_FILE) if directory else None
    images = card.card_images(directory) if directory else []
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    else:
        text = card.card_markdown(record, images)
    return text, {name: os.path.join(directory, name) for name in images}


def _number(text):
    match = re.match(r"\s*>?\s*(-?[\d.]+)", text or "")
    return match.group(1) if match else None


def _index_row(record, facts, thumbnail):
    cells = facts["cells"]
    link = f"{record.name}/{record.version}/{PAGE_FILE}"
    values = [
        (facts["kind"], None), (f'<a href="{link}">{html.escape(record.name)}</a>', None),
        (html.escape(record.version + (" (latest)" if record.latest else "")), record.version),
        (f"<code>{html.escape(facts['signal_class'])}</code>", None),
        (html.escape(facts["model_class"]), None), (html.escape(cells.get("metric", "")), None),
        (html.escape(cells.get("meta", "")), _number(cells.get("meta"))),
        (html.escape(cells.get("standard", "")), _number(cells.get("standard"))),
        (html.escape(cells.get("at", "")), None),
        (html.escape(cells.get("match", "")), _number(cells.get("match"))),
        (f'<a href="{link}"><img class="thumb" src="{record.name}/{record.version}/'
         f'{thumbnail}" alt="{html.escape(record.label)}"></a>' if thumbnail else "", None),
    ]
    return "<tr>" + "".join(
        f'<td data-value="{v}">{c}</td>' if v is not None else f"<td>{c}</td>"
        for c, v in values) + "</tr>"


def build_site(the_zoo, output_dir, overwrite=False):
    """Writes the site of `the_zoo` (a `learnit_tf.zoo.Zoo`) into `output_dir`.

    Returns:
        The relative paths written, sorted.
    """
    records = [card.read_version(the_zoo, row["name"], row["version"])
               for row in the_zoo.list()]
    out = OutputDir(output_dir, overwrite=overwrite, owned=SITE_FILES)
    with out.open():
        staging = out.staging()
        shutil.copyfile(os.path.join(ASSETS, STYLE_FILE), os.path.join(staging, STYLE_FILE))
        rows = []
        versions = {}
        for record in records:
            versions.setdefault(record.name, []).append(record)
        for record in records:
            text, images = _card_source(record)
            folder = os.path.join(staging, record.name, record.version)
            os.makedirs(folder)
            for name, path in images.items():
                shutil.copyfile(path, os.path.join(folder, name))
            others = " ".join(
                f'<a href="../{other.version}/{PAGE_FILE}">{html.escape(other.version)}</a>'
                if other is not record else f"<strong>{html.escape(other.version)}</strong>"
                for other in versions[record.name])
            body = (f'<p class="versions">Versions of {html.escape(record.name)}: {others}</p>\n'
                    f'<article class="card">\n{markdown_to_html(text)}\n</article>')
            with open(os.path.join(folder, PAGE_FILE), "w", encoding="utf-8") as f:
                f.write(_page(f"{record.label} · learnit_tf zoo", body, "../../"))
            thumbnail = next((n for n in (card.RECONSTRUCTIONS_FILE, card.CURVE_FILE)
                              if n in images), None)
            rows.append(_index_row(record, card.card_facts(record), thumbnail))
        header = "".join(f'<th data-sort="1">{html.escape(c)}</th>' if c != "picture"
                         else f"<th>{c}</th>" for c in INDEX_COLUMNS)
        body = (
            "<h1>learnit_tf model zoo</h1>\n"
            "<p>Meta-learned initializations for coordinate-based networks: start a fit "
            "from one of these and a new signal of its class is fitted in a few steps. "
            "Each row is a published version; its page is the version's model card. "
            "Numbers: the kind's primary metric on held-out signals, this init (its fit "
            "recipe) vs a standard init (Adam).</p>\n"
            '<p><label>Filter <input id="filter" type="search" '
            'placeholder="e.g. image maml"></label> '
            f'<span id="shown">{len(rows)}</span> of {len(rows)} versions; click a column '
            "title to sort.</p>\n"
            f'<table id="zoo">\n<thead><tr>{header}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody>\n</table>\n"
            f'<p class="source">Generated by <code>learnit-zoo site</code> from '
            f"{html.escape(str(the_zoo.index_location))}.</p>")
        with open(os.path.join(staging, PAGE_FILE), "w", encoding="utf-8") as f:
            f.write(_page("learnit_tf model zoo", body, "", _FILTER_AND_SORT))
        written = []
        for directory, _, names in os.walk(staging):
            written += [os.path.relpath(os.path.join(directory, n), staging) for n in names]
        out.commit(staging)
    return sorted(written)


# ----------------------------------------------------------------------- link check


def broken_links(site_dir):
    """[(page, target)] of every href/src in the site's HTML that does not resolve to a
    file of the site (links leaving the site, e.g. http(s), are reported too: the site
    must work offline)."""
    broken = []
    for directory, _, names in os.walk(site_dir):
        for name in names:
            if not name.endswith(".html"):
                continue
            page = os.path.join(directory, name)
            with open(page, encoding="utf-8") as f:
                text = f.read()
            for target in re.findall(r'(?:href|src)="([^"]*)"', text):
                target = html.unescape(target)
                resolved = os.path.normpath(os.path.join(directory, target.split("#")[0]))
                if re.match(r"[a-z]+:", target) or not os.path.isfile(resolved) or \
                        not resolved.startswith(os.path.abspath(site_dir)):
                    broken.append((os.path.relpath(page, site_dir), target))
    return broken
