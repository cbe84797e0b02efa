"""The look every figure shares: paper style, one line style per method, legends, saving.

- **Methods** get a colour *and* a line style/marker (``method_styles``): nine colour-blind-safe
  colours (Paul Tol's "muted" scheme, no two alike, no grey) cycle, and each further cycle
  changes the line style and marker, so up to 36 methods stay distinguishable. The baseline
  ``none`` and its variants (``none[rr1]``) are always black, which no other method uses.
  ``plot_all`` assigns the styles once from every method of an aggregate, so a method looks
  the same in every figure.
- **Legends** sit below the axes (``legend_below``), never on the data.
- **Files**: PDF (vector, for papers) and PNG (``PNG_DPI``, for the HTML page), with pinned
  metadata so reruns give the same bytes.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (must precede pyplot)

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from plasticity_bench.analysis.display import DisplayNames  # noqa: E402
from plasticity_bench.analysis.vocabulary import BASELINE, is_overall, method_order  # noqa: E402

COLUMN_WIDTH = 3.3  # inches, one column of a two-column paper
PAGE_WIDTH = 6.9  # inches, both columns
PDF_DPI = 300  # rasterised parts of a PDF (none today) and the unit of its size
PNG_DPI = 150  # the page shows PNGs at their physical size; 150 dpi stays sharp on high-density screens
FORMATS = ("pdf", "png")
SUPPORTED_FORMATS = ("pdf", "png", "svg")

STYLE = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "legend.frameon": False,
    "lines.linewidth": 1.0,
    "lines.markersize": 3,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "pdf.fonttype": 42,  # TrueType: text stays editable and embeds cleanly in papers
    "ps.fonttype": 42,
    "svg.hashsalt": "plasticity-bench",
}

#: Paul Tol's "muted" qualitative scheme: colour-blind safe, and no two of its colours alike.
PALETTE = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499")
BASELINE_COLOUR = "#000000"
#: (line style, marker) of the successive cycles through the palette.
STROKES = (("-", ""), ("--", "o"), (":", "s"), ("-.", "^"))


class PlotError(ValueError):
    """A user-facing problem with a figure request (unknown figure, format or metric)."""


@contextmanager
def paper_style() -> Iterator[None]:
    """The one style of every figure; scoped so importing this module changes nothing."""
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        yield


@dataclass(frozen=True)
class LineStyle:
    colour: str
    linestyle: str
    marker: str

    def line(self) -> dict:
        """Keyword arguments of ``Axes.plot`` for this style."""
        return {"color": self.colour, "linestyle": self.linestyle, "marker": self.marker or None}


def is_baseline(label: str) -> bool:
    """The baseline and its variants (``none[rr1]``): drawn in the neutral colour."""
    return label == BASELINE or label.startswith(BASELINE + "[")


def distinct_styles(keys: Sequence) -> list[LineStyle]:
    """One (colour, line style, marker) per key, in order: colours cycle first, then strokes."""
    if len(keys) > len(PALETTE) * len(STROKES):
        raise PlotError(f"{len(keys)} lines in one figure; at most {len(PALETTE) * len(STROKES)} stay distinguishable")
    return [LineStyle(PALETTE[i % len(PALETTE)], *STROKES[i // len(PALETTE)]) for i in range(len(keys))]


def method_styles(methods: Iterable[str]) -> dict[str, LineStyle]:
    """Each method's style (see the module docstring); depends only on the set of methods."""
    ordered = method_order(methods)
    baselines = [m for m in ordered if is_baseline(m)]
    others = [m for m in ordered if not is_baseline(m)]
    styles = {m: LineStyle(BASELINE_COLOUR, *STROKES[i % len(STROKES)]) for i, m in enumerate(baselines)}
    styles.update(zip(others, distinct_styles(others)))
    return styles


@dataclass(frozen=True)
class Look:
    """What every figure function needs besides its table: styles, names, the CI level."""

    styles: dict[str, LineStyle]
    names: DisplayNames = field(default_factory=DisplayNames)
    confidence: float = 0.95

    @classmethod
    def of(cls, methods: Iterable[str], names: DisplayNames | None = None, confidence: float = 0.95) -> "Look":
        return cls(method_styles(methods), names or DisplayNames(), confidence)

    def handle(self, method: str) -> plt.Line2D:
        return plt.Line2D([], [], label=self.names.method(method), **self.styles[method].line())

    @property
    def ci(self) -> str:
        return f"{self.confidence:.0%} bootstrap CI"


def legend_below(fig: plt.Figure, handles: list, columns: int) -> None:
    """The legend under the axes, outside the data. Call after ``tight_layout``:
    ``bbox_inches="tight"`` in ``save`` keeps it in the file."""
    fig.legend(handles=handles, loc="upper center", ncol=max(1, min(len(handles), columns)),
               bbox_to_anchor=(0.5, 0.0))


@dataclass(frozen=True)
class Drawn:
    """One figure written: ``kind`` (``plots.FIGURES`` name), its scope (None: it spans scopes),
    a caption saying what it shows, and its files."""

    kind: str
    scope: tuple | None
    caption: str
    paths: list[Path]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text))


def scope_slug(suite: str, algo: str, arch: str) -> str:
    if is_overall((suite, algo, arch)):
        return "overall"
    return slug(f"{suite}_{algo}_{arch}")


#: savefig metadata that would otherwise hold the date, so reruns give the same bytes.
_PINNED_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "png": {}, "svg": {"Date": None}}


def save(fig: plt.Figure, out_dir: Path, name: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``name.<format>`` for each format; metadata pinned so reruns give the same bytes."""
    unknown = [f for f in formats if f not in SUPPORTED_FORMATS]
    if unknown:
        raise PlotError(f"unknown figure format {unknown[0]!r}; valid: {', '.join(SUPPORTED_FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, bbox_inches="tight", dpi=PNG_DPI if fmt == "png" else PDF_DPI,
                    metadata=_PINNED_METADATA[fmt])
        paths.append(path)
    plt.close(fig)
    return paths
