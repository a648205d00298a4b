"""The zoo table: one line per published version with its headline (`zoo list`, README).

The table names no kind and no kind's headline field: each row's cells come from its
kind's evaluation protocol (`registry.get_kind(kind).protocol_class().headline_cells`),
the kind found from the headline's `kind` or `task`. A row whose kind is unknown (not
registered, or a headline that names none) is read generically: the default metric's
(PSNR) `meta_<key>_at_<point>` keys, and any `<unit>_to_match` count.
"""

from learnit_tf.core import registry
from learnit_tf.evaluation.headlines import format_count, headline_values  # noqa: F401

TABLE_COLUMNS = ("name", "version", "signal class", "model", "algorithm",
                 "PSNR meta vs standard", "at", "to match", "size", "where")
_COMPARISON_COLUMN = TABLE_COLUMNS.index("PSNR meta vs standard")
_MATCH_SUFFIX = "_to_match"


def _format_size(size):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def headline_psnr(headline):
    """(meta PSNR, standard PSNR, where) of a headline, e.g. (20.0, 12.9, "2 steps")."""
    return headline_values(headline, registry.PSNR)


def generic_headline_cells(headline, metric=registry.PSNR):
    """`headline_cells` for a headline whose kind is unknown (see the module docstring).

    >>> cells = generic_headline_cells({"meta_psnr_at_1_view": 16.5, "views_to_match": 4})
    >>> cells["comparison"], cells["at"], cells["match"]
    ('16.50 vs ? dB', '1 view', '4 views')
    """
    headline = headline or {}
    meta, standard, where = headline_values(headline, metric)
    shown = meta is not None or standard is not None

    def value(v):
        return "" if not shown else "?" if v is None else f"{v:.{metric.digits}f}"

    match = ""
    for key in sorted(headline):  # "steps_to_match" before "views_to_match".
        if key.endswith(_MATCH_SUFFIX) and headline[key] is not None:
            text = format_count(headline[key])
            match = text if text.endswith("×") else f"{text} {key[:-len(_MATCH_SUFFIX)]}"
            break
    comparison = (f"{value(meta)} vs {value(standard)}" + (f" {metric.unit}" if metric.unit
                                                             else "")) if shown else ""
    return {"metric": f"{metric.label} ({metric.unit})" if metric.unit else metric.label,
            "meta": value(meta), "standard": value(standard), "at": where if shown else "",
            "match": match, "unit": metric.unit, "comparison": comparison}


def _protocol_of(headline):
    """The evaluation protocol class of the headline's kind, or None if unknown."""
    kind, task = headline.get("kind"), headline.get("task")
    try:
        if isinstance(kind, str):
            found = registry.get_kind(kind)
        elif isinstance(task, str):
            found = registry.kind_of_task(task)
        else:
            return None
        protocol = found.protocol_class()
    except ValueError:  # Not registered here, or a kind without a protocol.
        return None
    return protocol if hasattr(protocol, "headline_cells") else None


def headline_cells(headline):
    """(metric label, cells) of a headline: its kind's protocol's `headline_cells`, or
    `generic_headline_cells` when its kind is unknown."""
    headline = headline or {}
    protocol = _protocol_of(headline)
    if protocol is None:
        return registry.PSNR.label, generic_headline_cells(headline)
    metric = getattr(protocol, "metric", registry.PSNR)
    return metric.label, protocol.headline_cells(headline)


def table_rows(rows):
    """Turns `Zoo.list()` rows into string cells in `TABLE_COLUMNS` order."""
    return [_row_cells(row)[1] for row in rows]


def _row_cells(row):
    headline = row.get("headline") or {}
    label, cells = headline_cells(headline)
    return label, [
        row["name"], row["version"] + (" (latest)" if row.get("latest") else ""),
        str(headline.get("signal_class", "")), str(headline.get("model_class", "")),
        str(headline.get("algorithm", "")), cells["comparison"],
        cells["at"] if cells["comparison"] else "", cells["match"],
        _format_size(row["size"]), row.get("location", ""),
    ]


def table_columns(rows):
    """The column titles for `rows`: `TABLE_COLUMNS` with the comparison column named
    after the rows' metrics ("PSNR meta vs standard"; "PSNR/IoU meta vs standard" when
    rows of several metrics share the table, the default metric first)."""
    return _columns([_row_cells(row)[0] for row in rows])


def _labels(labels):
    """The metric labels of a table in header order: the default metric's first (its
    cells stay unlabelled), then the others as they first appear."""
    labels = list(dict.fromkeys(labels)) or [registry.PSNR.label]
    return sorted(labels, key=lambda label: label != registry.PSNR.label)


def _columns(labels):
    columns = list(TABLE_COLUMNS)
    columns[_COMPARISON_COLUMN] = f"{'/'.join(_labels(labels))} meta vs standard"
    return tuple(columns)


def format_table(rows, markdown=False):
    """A text (or Markdown) table of `Zoo.list()` rows with each init's headline.

    Example:

    >>> table = format_table([{"name": "a", "version": "1", "size": 2048, "headline": {
    ...     "meta_psnr_at_2": 30.0, "standard_psnr_at_2": 12.5}}])
    >>> "30.00 vs 12.50 dB" in table and "2.0 KiB" in table
    True
    """
    labelled = [_row_cells(row) for row in rows]
    columns = _columns(label for label, _ in labelled)
    mixed = len(_labels(label for label, _ in labelled)) > 1
    cells = []
    for label, row in labelled:
        if mixed and label != registry.PSNR.label and row[_COMPARISON_COLUMN]:
            # Several metrics in one column: cells of the non-default ones name theirs.
            row = list(row)
            row[_COMPARISON_COLUMN] = f"{label} {row[_COMPARISON_COLUMN]}"
        cells.append(row)
    if markdown:
        lines = ["| " + " | ".join(columns) + " |",
                 "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in cells]
        return "\n".join(lines)
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*columns), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in cells]
    if not cells:
        lines.append("(no entries)")
    return "\n".join(line.rstrip() for line in lines)
