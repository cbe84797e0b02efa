"""The look every figure shares: paper sizes and fonts, one style per method, legends, saving.

- **Sizes.** A figure is drawn at the width it will have in a paper, one column
  (``COLUMN_WIDTH``, 3.25 in) or both (``PAGE_WIDTH``, 6.75 in), with constrained layout and
  no cropping, so its file is exactly that wide and its text is printed at its point size
  (``FONT_SIZE``, never under ``MIN_FONT_SIZE``). ``Look.column`` draws every figure at one
  of the two widths instead of its own.
- **Methods** get a colour *and* a line style/marker (``method_styles``): nine colours that
  keep at least 3:1 contrast against white and against their own CI band
  (``BAND_ALPHA`` of the colour over white, WCAG's threshold for graphics) cycle, and each
  further cycle changes the line style and marker, so up to 36 methods stay
  distinguishable. The baseline ``none`` and its variants (``none[rr1]``) are always black,
  which no other method uses. ``plot_all`` assigns the styles once from every method of an
  aggregate, so a method looks the same in every figure and scope of a config, whichever
  subset of methods a figure shows.
- **Axes.** Plain tick labels (no offset text such as ``1e4``); environment steps in k/M.
- **Legends**: one per figure, below the axes (``legend_below``), in as few balanced rows as
  fit the figure's width.
- **Files**: PDF (vector, for papers) and PNG (``PNG_DPI``, for the HTML page), with pinned
  metadata so reruns give the same bytes.
"""

from __future__ import annotations

import math
import re
import textwrap
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (must precede pyplot)

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from plasticity_bench.analysis.display import DisplayNames  # noqa: E402
from plasticity_bench.analysis.vocabulary import BASELINE, is_overall, method_order  # noqa: E402

COLUMN_WIDTH = 3.25  # inches, one column of a two-column paper (NeurIPS/ICML/IEEE all within 3.25-3.5)
PAGE_WIDTH = 6.75  # inches, both columns
#: ``Look.column`` / ``plasticity-bench plot --column``: the width every figure is drawn at.
WIDTHS = {"single": COLUMN_WIDTH, "double": PAGE_WIDTH}
FONT_SIZE = 8.0  # points, every text of a figure at its intended width
MIN_FONT_SIZE = 8.0  # the smallest text a paper figure may print (most venues' caption size)
PDF_DPI = 300  # rasterised parts of a PDF (none today) and the unit of its size
PNG_DPI = 200  # sharp on high-density screens; the page shows PNGs at their physical size
FORMATS = ("pdf", "png")
SUPPORTED_FORMATS = ("pdf", "png", "svg")
#: Opacity of a CI band: light, so that several overlapping bands leave the lines readable.
BAND_ALPHA = 0.12
#: Legend columns tried first; fewer when the entries do not fit the figure's width.
MAX_LEGEND_COLUMNS = 6


def rc(font_size: float = FONT_SIZE) -> dict:
    """matplotlib settings of every figure at ``font_size`` points."""
    return {
        "font.size": font_size,
        "axes.titlesize": font_size,
        "axes.labelsize": font_size,
        "xtick.labelsize": font_size,
        "ytick.labelsize": font_size,
        "legend.fontsize": font_size,
        "figure.titlesize": font_size,
        "figure.labelsize": font_size,
        "legend.frameon": False,
        "legend.handlelength": 1.8,
        "legend.columnspacing": 1.2,
        "lines.linewidth": 1.3,
        "lines.markersize": 3.5,
        "axes.linewidth": 0.6,
        "grid.linewidth": 0.4,
        "axes.formatter.useoffset": False,  # never "1e4" in a corner: ticks carry their own values
        "axes.formatter.limits": (-4, 6),
        "figure.constrained_layout.h_pad": 0.03,
        "figure.constrained_layout.w_pad": 0.03,
        "pdf.fonttype": 42,  # TrueType: text stays editable and embeds cleanly in papers
        "ps.fonttype": 42,
        "svg.hashsalt": "plasticity-bench",
    }


#: Colour-blind-considerate colours, each at least 3:1 against white and against its own CI band
#: (tests/test_figures.py checks it); blue, vermillion, green, purple, ochre, magenta, teal, brown, indigo.
PALETTE = ("#0072B2", "#D55E00", "#117733", "#AA4499", "#AA7700", "#EE3377", "#00796B", "#8C510A", "#332288")
BASELINE_COLOUR = "#000000"
#: Grey of keys that are no method (the line-style key of two metrics, reference lines).
KEY_COLOUR = "#666666"
#: (line style, marker) of the successive cycles through the palette.
STROKES = (("-", ""), ("--", "o"), (":", "s"), ("-.", "^"))


class PlotError(ValueError):
    """A user-facing problem with a figure request (unknown figure, format or metric)."""


@contextmanager
def paper_style(font_size: float = FONT_SIZE) -> Iterator[None]:
    """The one style of every figure; scoped so importing this module changes nothing."""
    with sns.axes_style("whitegrid"), plt.rc_context(rc(font_size)):
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


def check_font_size(font_size: float) -> float:
    """``font_size`` if a paper can print it; PlotError naming the valid range otherwise."""
    if not MIN_FONT_SIZE <= font_size <= 2 * MIN_FONT_SIZE:
        raise PlotError(f"font size {font_size:g} pt: give {MIN_FONT_SIZE:g} to {2 * MIN_FONT_SIZE:g} (under "
                        f"{MIN_FONT_SIZE:g} pt a figure's text is unreadable at its printed width)")
    return float(font_size)


@dataclass(frozen=True)
class Look:
    """What every figure function needs besides its table: method styles, display names, the
    CI level, the font size, the column width that overrides each figure's own (None: each
    its own) and the scopes no method learned (``aggregate.json``'s ``unlearned_scopes``)."""

    styles: dict[str, LineStyle]
    names: DisplayNames = field(default_factory=DisplayNames)
    confidence: float = 0.95
    font_size: float = FONT_SIZE
    column: str | None = None
    unlearned: frozenset = frozenset()

    def __post_init__(self):
        check_font_size(self.font_size)
        if self.column is not None and self.column not in WIDTHS:
            raise PlotError(f"unknown column width {self.column!r}; valid: {', '.join(WIDTHS)}")

    @classmethod
    def of(cls, methods: Iterable[str], names: DisplayNames | None = None, confidence: float = 0.95,
           **options) -> "Look":
        return cls(method_styles(methods), names or DisplayNames(), confidence, **options)

    def handle(self, method: str) -> plt.Line2D:
        return plt.Line2D([], [], label=self.names.method(method), **self.styles[method].line())

    @property
    def ci(self) -> str:
        return f"{self.confidence:.0%} bootstrap CI"

    def width_for(self, width: float) -> float:
        """The width a figure meant to be ``width`` inches wide is drawn at (``column`` overrides it)."""
        return WIDTHS[self.column] if self.column else width

    def figure(self, width: float, height: float, rows: int = 1, columns: int = 1, **subplots):
        """(figure, 2-D array of axes) at ``width_for(width)`` inches with constrained layout;
        ``height`` is for 8 pt text and grows with the font size."""
        width = self.width_for(width)
        height *= max(1.0, self.font_size / FONT_SIZE)
        return plt.subplots(rows, columns, squeeze=False, figsize=(width, height), layout="constrained", **subplots)

    def wrap(self, text: str, inches: float) -> str:
        """``text`` broken into lines that fit ``inches`` at the font size (an average glyph of
        DejaVu Sans is about 0.6 em wide), so that a long title or label never leaves the figure."""
        return textwrap.fill(text, max(12, int(inches * 72 / (0.6 * self.font_size))), break_long_words=False)

    def title(self, fig: plt.Figure, text: str) -> None:
        """The figure's title, wrapped to its width."""
        fig.suptitle(self.wrap(text, fig.get_figwidth()))

    def band(self, ax, x, low, high, method: str) -> None:
        """A CI band in the method's colour, light enough for the lines over it to stay readable."""
        ax.fill_between(x, low, high, color=self.styles[method].colour, alpha=BAND_ALPHA, linewidth=0)


def format_steps(value: float, _position=None) -> str:
    """Step counts for tick labels: 500, 1.5k, 50k, 2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def steps_axis(ax, algo: str | None = None) -> None:
    """The x axis of a quantity over training: steps in k/M, at most five ticks. Supervised runs
    (``sl``) count gradient steps, the others environment steps."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(format_steps))
    ax.set_xlabel("Gradient steps" if algo == "sl" else "Environment steps")


def legend_below(fig: plt.Figure, handles: list):
    """One legend under the axes, outside the data, in as few balanced rows as fit the figure's
    width (no row of one stranded entry under full ones). The figure grows by the legend's
    height, so the axes keep theirs. Needs constrained layout (``Look.figure``), which places it."""
    width = fig.get_figwidth() * fig.dpi
    renderer = fig.canvas.get_renderer()
    count = len(handles)
    for columns in range(min(count, MAX_LEGEND_COLUMNS), 0, -1):
        rows = math.ceil(count / columns)
        columns = math.ceil(count / rows)
        legend = fig.legend(handles=handles, loc="outside lower center", ncol=columns)
        box = legend.get_window_extent(renderer)
        if columns == 1 or box.width <= 0.98 * width:
            fig.set_figheight(fig.get_figheight() + box.height / fig.dpi + 0.05)
            return legend
        legend.remove()
    return None


@dataclass(frozen=True)
class Drawn:
    """One figure written: ``kind`` (``plots.FIGURES`` name), its scope (None: it spans scopes),
    a caption saying what it shows, its files and the width (inches) it is meant to be printed at."""

    kind: str
    scope: tuple | None
    caption: str
    paths: list[Path]
    width: float | None = None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text))


def scope_slug(suite: str, algo: str, arch: str) -> str:
    if is_overall((suite, algo, arch)):
        return "overall"
    return slug(f"{suite}_{algo}_{arch}")


#: savefig metadata that would otherwise hold the date, so reruns give the same bytes.
_PINNED_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "png": {}, "svg": {"Date": None}}


def _spills(fig: plt.Figure) -> bool:
    """Whether any text or line reaches outside the figure's canvas (by more than half a point)."""
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    margin = 0.5 / 72
    return (tight.x0 < -margin or tight.y0 < -margin or tight.x1 > fig.get_figwidth() + margin
            or tight.y1 > fig.get_figheight() + margin)


def overlapping_tick_labels(fig: plt.Figure) -> list[str]:
    """The tick labels that run into their neighbour on the same axis (drawn figure)."""
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, low, high in ((ax.xaxis, "x0", "x1"), (ax.yaxis, "y0", "y1")):
            boxes = sorted((getattr(box, low), getattr(box, high), label.get_text())
                           for label in axis.get_ticklabels() if label.get_visible() and label.get_text()
                           for box in [label.get_window_extent(renderer)])
            found += [f"{a[2]!r}/{b[2]!r}" for a, b in zip(boxes, boxes[1:]) if b[0] < a[1] - 0.5]
    return found


def save(fig: plt.Figure, out_dir: Path, name: str, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``name.<format>`` for each format at the figure's size (its intended width); metadata
    pinned so reruns give the same bytes. A figure whose content does not fit its canvas
    (a very long display name) is saved wider than intended, with a warning, rather than cut."""
    unknown = [f for f in formats if f not in SUPPORTED_FORMATS]
    if unknown:
        raise PlotError(f"unknown figure format {unknown[0]!r}; valid: {', '.join(SUPPORTED_FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    crop = None
    if _spills(fig):
        warnings.warn(f"figure {name}: its text does not fit {fig.get_figwidth():.2f} in; saved wider, so it prints "
                      "smaller (shorten display names or draw it at --column double)", stacklevel=2)
        crop = "tight"
    overlapping = overlapping_tick_labels(fig)
    if overlapping:
        warnings.warn(f"figure {name}: tick labels overlap ({', '.join(overlapping[:3])})", stacklevel=2)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, bbox_inches=crop, dpi=PNG_DPI if fmt == "png" else PDF_DPI, metadata=_PINNED_METADATA[fmt])
        paths.append(path)
    plt.close(fig)
    return paths
