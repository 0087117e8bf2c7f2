"""The model table of `python -m mobilenets models`: every paper variant, profiled."""

from mobilenets.models.registry import VARIANTS, build_model
from mobilenets.profile import profile


def rows(names=None):
    """Yields one dict per registered variant (of models `names`, default all): name, options,
    params, MACs, and the paper's figures."""
    for variant in VARIANTS:
        if names and variant.name not in names:
            continue
        stats = profile(build_model(variant.name, **variant.options))
        yield {
            "name": variant.name,
            "options": variant.options,
            "input": stats_input(variant),
            "params": stats["params"],
            "trainable_params": stats["trainable_params"],
            "macs": stats["macs"],
            "paper_macs_millions": variant.paper_macs,
            "paper_top1": variant.top1,
        }


def stats_input(variant):
    return list(variant.options.get("input_shape", (224, 224, 3)))


def format_table(table):
    """Formats `rows()` output as a fixed-width text table."""
    header = ("model", "options", "input", "params", "MACs", "paper MACs", "paper top-1")
    lines = [header]
    for row in table:
        options = ", ".join(f"{k}={v}" for k, v in row["options"].items()
                            if k != "input_shape") or "-"
        lines.append((
            row["name"], options, "x".join(map(str, row["input"])),
            f"{row['params'] / 1e6:.2f}M", f"{row['macs'] / 1e6:.0f}M",
            "-" if row["paper_macs_millions"] is None else f"{row['paper_macs_millions']}M",
            "-" if row["paper_top1"] is None else f"{row['paper_top1']:.1f}%",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)
