"""Figures a paper can use as they are: display names, distinguishable methods, CI bands, sensitivity."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from plasticity_bench.analysis import plots
from plasticity_bench.analysis.aggregate import aggregate
from plasticity_bench.analysis.display import DisplayNames, parse_label
from plasticity_bench.analysis.stats import mean_intervals
from plasticity_bench.analysis.style import BASELINE_COLOUR, PALETTE, method_styles
from plasticity_bench.analysis.sweeps import sensitivity_series
from plasticity_bench.analysis.vocabulary import AnalysisError

from test_stats import make_runs

REPS = 200
SWEPT = ("none", "regrama[tau=0.01]", "regrama[tau=0.1]", "redo")


# ----------------------------------------------------------------------------- names


def test_builtin_display_names():
    names = DisplayNames()
    assert names.method("regrama") == "ReGraMa" and names.method("layer_norm") == "LayerNorm"
    assert names.method("none") == "None (baseline)" and names.method("redo") == "ReDo"
    assert names.method("regrama[tau=0.1,period=5000]") == "ReGraMa (τ = 0.1, period = 5000)"
    assert names.method("none[rr1]") == "None (replay ratio 1)"
    assert names.method("none[rr025]") == "None (replay ratio 0.25)"
    assert names.method("redo[rr2]") == "ReDo (replay ratio 2)"
    assert names.method("layer_norm+redo[tau=0.02][rr1]") == "LayerNorm + ReDo (τ = 0.02, replay ratio 1)"
    assert names.method("none[warm]") == "None (warm)"
    assert names.method("my_plugin.methods:Mine") == "my_plugin.methods:Mine"
    assert names.metric("grama_inactive_ratio@0.025") == "GraMa-inactive ratio (τ = 0.025)"
    assert names.metric("some_new_metric") == "Some new metric"
    assert names.scope(("dmc_easy", "sac", "mlp")) == "DMC easy / SAC / MLP"
    assert names.scope(("continual_classic", "sac", "mlp")) == "Continual classic control / SAC / MLP"
    assert names.scope(("all", "all", "all")) == "Overall (every suite / algo / arch)"
    assert names.network("critic") == "Critic (Q1, Q2)" and names.network("q") == "Q-network"
    assert names.task("gym:CartPole-v1") == "CartPole-v1" and names.task("dmc:cheetah-run") == "Cheetah run"


def test_config_display_names_override_the_builtin_ones():
    names = DisplayNames.from_config({"display_names": {
        "methods": {"regrama": "ReGraMa (ours)", "none[rr1]": "Baseline, replay ratio 1"},
        "suites": {"dmc_easy": "DMC (easy)"}, "archs": {"mlp": "Plain MLP"}, "metrics": {"srank": "Rank"},
        "tasks": {"gym:CartPole-v1": "Cart-pole"}, "networks": {"critic": "Twin Q"}, "variants": {"rr025": "slow"}}})
    assert names.method("regrama") == "ReGraMa (ours)"
    assert names.method("regrama[tau=0.1]") == "ReGraMa (ours) (τ = 0.1)"
    assert names.method("none[rr1]") == "Baseline, replay ratio 1" and names.method("redo") == "ReDo"
    assert names.scope(("dmc_easy", "sac", "mlp")) == "DMC (easy) / SAC / Plain MLP"
    assert names.metric("srank") == "Rank"
    assert names.task("gym:CartPole-v1") == "Cart-pole" and names.network("critic") == "Twin Q"
    assert names.method("none[rr025]") == "None (slow)"
    assert DisplayNames.from_config({"name": "no display names"}) == DisplayNames()


@pytest.mark.parametrize("given,message", [
    ({"method": {"regrama": "R"}}, "display_names: unknown section 'method'; valid: methods, metrics, suites, "
                                   "algos, archs, tasks, networks, variants"),
    ({"methods": ["regrama"]}, "display_names.methods must map identifiers to names, got ['regrama']"),
    ({"metrics": {"srank": 3}}, "display_names.metrics.srank: 3 is not a name; give a non-empty string"),
])
def test_bad_display_names_name_the_value_and_the_choices(given, message):
    with pytest.raises(AnalysisError, match=re.escape(message)):
        DisplayNames.from_config({"display_names": given})


def test_labels_read_back_into_options_and_variant():
    label = parse_label("layer_norm+regrama[tau=0.1,period=5000][rr1]")
    assert label.components == (("layer_norm", ()), ("regrama", (("tau", "0.1"), ("period", "5000"))))
    assert label.variant == "rr1" and label.text() == "layer_norm+regrama[tau=0.1,period=5000][rr1]"
    assert parse_label("none[rr1]").components == (("none", ()),) and parse_label("none[rr1]").variant == "rr1"


# ----------------------------------------------------------------------------- palette


def test_twenty_methods_get_twenty_distinct_styles_and_the_baseline_is_neutral():
    methods = ["none", "none[rr1]"] + [f"method_{i:02d}" for i in range(18)]
    styles = method_styles(methods)
    pairs = {(s.colour, s.linestyle, s.marker) for s in styles.values()}
    assert len(pairs) == 20
    assert styles["none"].colour == styles["none[rr1]"].colour == BASELINE_COLOUR
    assert styles["none"] != styles["none[rr1]"]
    assert all(style.colour in PALETTE for method, style in styles.items() if not method.startswith("none"))
    # A method's style depends on the set of methods only, never on their order.
    assert method_styles(reversed(methods)) == styles


def _svg_strokes(path) -> dict[str, set[tuple[str, str]]]:
    """method -> the (stroke colour, dash pattern) of its curves in an SVG (curves carry gid method:<label>)."""
    strokes: dict[str, set[tuple[str, str]]] = {}
    for group in ElementTree.parse(path).iter("{http://www.w3.org/2000/svg}g"):
        gid = group.get("id", "")
        if not gid.startswith("method:"):
            continue
        style = group.find("{http://www.w3.org/2000/svg}path").get("style", "")
        colour = re.search(r"stroke: (#[0-9a-f]{6})", style).group(1)
        dashes = re.search(r"stroke-dasharray: ([^;]+)", style)
        strokes.setdefault(gid[len("method:"):], set()).add((colour, dashes.group(1) if dashes else ""))
    return strokes


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """An aggregate of a regrama tau sweep next to none and redo, on mlp and residual (two scopes)."""
    root = tmp_path_factory.mktemp("swept")
    with pytest.MonkeyPatch.context() as patch:
        from test_stats import write_suite

        patch.setenv("PLASTICITY_BENCH_SUITES_DIR", str(write_suite(root / "suites")))
        matrix, runs = make_runs(root, [(m, arch) for m in SWEPT for arch in ("mlp", "residual")])
        return aggregate(matrix, runs, reps=REPS, seed=0)


CONTINUAL_SCOPE = ("continual_classic", "sac", "mlp")
SEGMENT_STEPS = 1000


def with_continual(result):
    """``result`` plus a continual scope: the mlp scope's IQM curves as its whole-sequence
    curves (5 segments of 1000 steps) and per-segment plasticity ratios computed by the
    aggregate's own ``ratio_intervals`` from a toy segment table (none's ratio falls by 0.2
    per segment, every other method's stays at 1, seeds 0.02 apart)."""
    from dataclasses import replace

    from plasticity_bench.analysis.continual import ratio_intervals

    curves = result.sample_efficiency
    sequence = curves[curves["arch"] == "mlp"].assign(suite=CONTINUAL_SCOPE[0], algo=CONTINUAL_SCOPE[1])
    methods = sorted(set(sequence["method"]))
    segments = pd.DataFrame([{"suite": CONTINUAL_SCOPE[0], "algo": CONTINUAL_SCOPE[1], "arch": CONTINUAL_SCOPE[2],
                              "method": method, "task": "continual:toy", "seed": seed, "segment": k,
                              "run_id": f"{method}-{seed}",
                              "plasticity_ratio": (1 - 0.2 * k if method == "none" else 1.0) + 0.02 * seed}
                             for method in methods for seed in range(3) for k in range(5)])
    continual = {"ratios": ratio_intervals(segments, reps=REPS, seed=0, confidence=0.95).to_dict("records"),
                 "leaderboard": [], "segment_steps": [{"suite": CONTINUAL_SCOPE[0], "algo": CONTINUAL_SCOPE[1],
                                                       "arch": CONTINUAL_SCOPE[2], "task": "continual:toy",
                                                       "segment_steps": SEGMENT_STEPS}]}
    return replace(result, sample_efficiency=pd.concat([curves, sequence], ignore_index=True),
                   summary={**result.summary, "continual": continual})


def test_continual_figures_are_drawn_for_continual_scopes_in_the_pages_order(swept, tmp_path):
    """plot_all draws the plasticity ratio and the return over the sequence for the continual
    scope only, right after its ranking (the page shows a scope's figures in this order), and
    no sample-efficiency curve there (the return over the sequence is that curve with the
    segment ends); a stationary scope keeps its sample-efficiency curve."""
    toy = with_continual(swept)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        drawn = plots.plot_all(toy, tmp_path, formats=["svg"])
    kinds = [figure.kind for figure in drawn if figure.scope is not None and tuple(figure.scope) == CONTINUAL_SCOPE]
    assert kinds == ["plasticity_ratio", "sequence_returns"]  # the toy scope has no leaderboard rows of its own
    order = [figure.kind for figure in drawn]
    assert (max(i for i, kind in enumerate(order) if kind == "interval_estimates") < order.index("plasticity_ratio")
            < order.index("sequence_returns") < order.index("performance_profile"))
    others = {(figure.kind, tuple(figure.scope)) for figure in drawn if figure.scope is not None}
    assert ("sample_efficiency", ("toy", "sac", "mlp")) in others
    assert not {kind for kind, scope in others if scope != CONTINUAL_SCOPE} & {"plasticity_ratio", "sequence_returns"}
    sequence = next(figure for figure in drawn if figure.kind == "sequence_returns")
    text = sequence.paths[0].read_text()
    # one dotted grey line per segment end inside the sequence: 1000, 2000, 3000, 4000
    assert len(re.findall(r"stroke: #999999", text)) == 4
    assert "segment ends" not in sequence.caption and "dotted lines mark each segment" in sequence.caption
    ratio = next(figure for figure in drawn if figure.kind == "plasticity_ratio")
    assert "below 1 = lost plasticity" in ratio.caption
    assert f">{plots.DisplayNames().task('continual:toy')}<" in ratio.paths[0].read_text()


def test_continual_figures_keep_to_the_methods_asked_for(swept, tmp_path):
    toy = with_continual(swept)
    look = plots.aggregate_look(toy)
    drawn = plots.plot_all(toy, tmp_path, figures=["plasticity_ratio", "sequence_returns"], formats=["svg"],
                           look=look, methods=["none", "redo"])
    assert sorted(figure.kind for figure in drawn) == ["plasticity_ratio", "sequence_returns"]
    for figure in drawn:
        text = figure.paths[0].read_text()
        assert set(re.findall(r'id="method:([^"]+)"', text)) == {"none", "redo"}, figure.kind
    assert plots.plot_all(swept, tmp_path, figures=["plasticity_ratio", "sequence_returns"]) == []


def test_a_method_has_the_same_style_in_every_figure(swept, tmp_path):
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as <text>, to read the labels
        drawn = plots.plot_all(swept, tmp_path, figures=["sample_efficiency", "task_curves", "metric_curves"],
                               formats=["svg"])
    styles = method_styles(SWEPT)
    svgs = [path for figure in drawn for path in figure.paths]
    assert len(svgs) == 3 * 2 + 2  # per scope: sample efficiency, task curves, one metric (two stored)
    for svg in svgs:
        strokes = _svg_strokes(svg)
        assert set(strokes) == set(SWEPT), svg.name
        for method, seen in strokes.items():
            assert {colour for colour, _ in seen} == {styles[method].colour.lower()}, (svg.name, method)
        text = svg.read_text()
        assert "ReGraMa (τ = 0.01)" in text and ">regrama[" not in text  # display names, not identifiers
    # Dashed lines mark the second cycle of colours; here every method is on the first: solid.
    assert all(dashes == "" for svg in svgs for seen in _svg_strokes(svg).values() for _, dashes in seen)


def test_legends_sit_outside_the_axes(swept, tmp_path):
    drawn = plots.plot_all(swept, tmp_path, figures=["sample_efficiency", "task_curves", "run_curves",
                                                     "performance_profile", "metric_curves", "sensitivity"],
                           formats=["svg"])
    svg = "{http://www.w3.org/2000/svg}g"
    for path in (p for figure in drawn for p in figure.paths):
        figure = next(g for g in ElementTree.parse(path).iter(svg) if g.get("id") == "figure_1")
        axes = [g for g in figure.findall(svg) if g.get("id", "").startswith("axes_")]
        assert [g.get("id") for g in figure.findall(svg) if g.get("id", "").startswith("legend_")], path.name
        assert not [g for ax in axes for g in ax.iter(svg) if g.get("id", "").startswith("legend_")], path.name



def test_a_long_legend_wraps_into_balanced_rows_below_the_axes_within_the_width():
    from matplotlib import pyplot as plt
    from plasticity_bench.analysis.style import COLUMN_WIDTH, Look, legend_below, paper_style

    methods = ["none", "layer_norm", "redo", "regrama", "shrink_perturb", "plasticity_injection", "cbp"]
    look = Look.of(methods)
    with paper_style():
        fig, axes = look.figure(COLUMN_WIDTH, 2.8)
        for method in methods:
            axes[0][0].plot([0, 1], [0, 1], **look.styles[method].line())
        legend = legend_below(fig, [look.handle(m) for m in methods])
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box, axes_box = legend.get_window_extent(renderer), axes[0][0].get_tightbbox(renderer)
        assert box.y1 <= axes_box.y0 + 1 and box.x0 >= 0 and box.x1 <= fig.get_figwidth() * fig.dpi
        columns = legend._ncols
        rows = -(-len(methods) // columns)
        last_row = len(methods) - (rows - 1) * columns
        assert 1 < columns < len(methods) and last_row >= columns / 2  # no entry stranded under full rows
        plt.close(fig)


# ----------------------------------------------------------------------------- CI bands


def test_curve_bands_are_seeded_bootstrap_cis_of_the_mean_over_runs():
    rng = np.random.default_rng(1)
    values = rng.normal(size=6)
    long = pd.DataFrame({"group": "g", "run_id": [f"r{i}" for i in range(6)], "task": "t", "step": 10,
                         "value": values})
    out = mean_intervals(long, ["group"], ["step"], reps=500, seed=3, confidence=0.9)
    row = out.iloc[0]
    # The same resamples drawn by hand: one task, so one stratum of 6 runs.
    draws = np.random.default_rng(3).integers(0, 6, size=(500, 6))
    low, high = np.percentile(values[draws].mean(axis=1), [5, 95])
    assert row["mean"] == pytest.approx(values.mean()) and row["runs"] == 6
    assert (row["low"], row["high"]) == pytest.approx((low, high))
    assert row["std"] == pytest.approx(values.std(ddof=1))
    assert mean_intervals(long, ["group"], ["step"], reps=500, seed=3, confidence=0.9).equals(out)


def test_metric_curves_of_an_aggregate_carry_their_ci(swept):
    curves = swept.metric_curves
    assert {"mean", "low", "high", "std", "runs"} <= set(curves.columns)
    assert ((curves["low"] <= curves["mean"] + 1e-12) & (curves["mean"] <= curves["high"] + 1e-12)).all()
    assert (curves["high"] > curves["low"]).any()
    tasks = swept.task_curves
    assert set(tasks["task"]) == {"gym:TaskA-v0", "gym:TaskB-v0"} and (tasks["runs"] == 3).all()
    assert len(swept.run_curves) == swept.scores.shape[0] * 5  # five eval steps per run


# ----------------------------------------------------------------------------- sensitivity


def test_sensitivity_series_are_labels_differing_in_one_option():
    labels = ["none", "none[rr1]", "regrama[tau=0.01,period=1000]", "regrama[tau=0.1,period=1000]",
              "regrama[tau=0.01,period=5000]", "regrama[tau=0.1,period=5000]", "layer_norm+redo[tau=10]",
              "layer_norm+redo[tau=2]", "reset[period=100]"]
    found = {(s.fixed, s.option): (s.values, s.labels) for s in sensitivity_series(labels)}
    assert set(found) == {("regrama[period=1000]", "tau"), ("regrama[period=5000]", "tau"),
                          ("regrama[tau=0.01]", "period"), ("regrama[tau=0.1]", "period"),
                          ("layer_norm+redo", "tau")}
    assert found[("layer_norm+redo", "tau")] == (("2", "10"), ("layer_norm+redo[tau=2]", "layer_norm+redo[tau=10]"))


def test_sensitivity_figure_only_for_swept_entries(swept, tmp_path):
    drawn = plots.plot_all(swept, tmp_path, figures=["sensitivity"], formats=["png"])
    assert [(figure.kind, figure.scope) for figure in drawn] == [("sensitivity", None)]
    assert [p.name for p in drawn[0].paths] == ["sensitivity_regrama_tau.png"]
    assert drawn[0].caption.startswith("Sensitivity of ReGraMa to τ (0.01, 0.1): IQM")
    unswept = aggregate_without(swept, ["regrama[tau=0.01]"])
    assert plots.plot_all(unswept, tmp_path / "none", figures=["sensitivity"], formats=["png"]) == []


def aggregate_without(result, methods):
    from dataclasses import replace

    return replace(result, interval_estimates=result.interval_estimates[
        ~result.interval_estimates["method"].isin(methods)])


# ----------------------------------------------------------------------------- config


def test_the_schema_takes_display_names_and_method_options_and_adds_nothing_to_other_configs():
    import copy
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    root = Path(__file__).resolve().parents[1]
    schema = str(root / "workflow" / "schemas" / "config.schema.yaml")
    smoke = yaml.safe_load((root / "workflow" / "config" / "smoke.yaml").read_text())
    validated = copy.deepcopy(smoke)
    validate(validated, schema)
    assert "display_names" not in validated  # no default: existing configs keep their hash
    # The snippet of docs/reports.md.
    config = {**copy.deepcopy(smoke), "methods": ["none", "regrama[tau=0.1,period=5000]"],
              "sweep": {"regrama": {"tau": [0.01, 0.1]}},
              "display_names": {"methods": {"regrama[tau=0.1,period=5000]": "ReGraMa (paper settings)"},
                                "metrics": {"srank": "Feature rank"}, "suites": {"classic_control": "Classic control"}}}
    validate(config, schema)
    with pytest.raises(Exception, match="method"):
        validate({**config, "display_names": {"method": {"regrama": "R"}}}, schema)


# ----------------------------------------------------------------------------- print size

CLAIMS_CSV = Path(__file__).resolve().parents[1] / "reports" / "v0.1.0-d7cf4599-b62e90a" / "claims.csv"


def smallest_printed_text(svg_path, intended_inches: float) -> tuple[float, float]:
    """(smallest font size in points once the figure is scaled to ``intended_inches``, the file's
    width in inches). SVG user units are points; text keeps its size with svg.fonttype none."""
    root = ElementTree.parse(svg_path).getroot()
    width = float(root.get("width").removesuffix("pt"))
    sizes = [float(size) for size in re.findall(r"font-size: ([0-9.]+)px", Path(svg_path).read_text())]
    assert sizes, f"{svg_path} has no text"
    return min(sizes) * intended_inches * 72 / width, width / 72


def draw_every_figure(result, out, **look_options):
    from dataclasses import replace

    claims = pd.read_csv(CLAIMS_CSV, keep_default_na=False, na_values=[""])
    with_claims = replace(with_continual(result), claims=claims)
    look = plots.aggregate_look(with_claims, **look_options)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        return plots.plot_all(with_claims, out, formats=["svg"], look=look)


@pytest.mark.parametrize("column", [None, "single", "double"])
def test_every_figure_prints_its_smallest_text_at_8pt_or_more_at_its_width(swept, tmp_path, column):
    """Each figure's file is exactly as wide as the column it is drawn for (so a paper prints it
    at 100%) and no text in it is smaller than 8 pt there."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a figure saved wider than intended warns: fail on it
        drawn = draw_every_figure(swept, tmp_path, column=column)
    kinds = {figure.kind for figure in drawn}
    assert kinds == set(plots.FIGURES), set(plots.FIGURES) - kinds
    for figure in drawn:
        assert figure.width in (3.25, 6.75) and (column is None or figure.width == {"single": 3.25,
                                                                                    "double": 6.75}[column])
        for path in figure.paths:
            printed, width = smallest_printed_text(path, figure.width)
            assert width == pytest.approx(figure.width, abs=0.01), path.name
            assert printed >= 8.0, (path.name, printed)


def test_the_print_size_check_catches_small_text(tmp_path):
    from matplotlib import pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        for name, width, tick_size in (("small", 3.25, 6), ("wide", 6.75, 8)):
            fig, ax = plt.subplots(figsize=(width, 2))
            ax.set_title("a title", fontsize=8)
            ax.tick_params(labelsize=tick_size)
            fig.savefig(tmp_path / f"{name}.svg")
            plt.close(fig)
    assert smallest_printed_text(tmp_path / "small.svg", 3.25) == pytest.approx((6, 3.25))
    # 8 pt text in a 6.75 in figure, printed in a 3.25 in column: 3.85 pt.
    assert smallest_printed_text(tmp_path / "wide.svg", 3.25)[0] == pytest.approx(8 * 3.25 / 6.75)


def test_palette_colours_stand_out_from_white_and_from_their_own_ci_band():
    from plasticity_bench.analysis.style import BAND_ALPHA, KEY_COLOUR

    def luminance(rgb):
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def contrast(a, b):
        high, low = sorted((luminance(a), luminance(b)), reverse=True)
        return (high + 0.05) / (low + 0.05)

    for colour in (*PALETTE, BASELINE_COLOUR, KEY_COLOUR):
        rgb = matplotlib.colors.to_rgb(colour)
        band = tuple(BAND_ALPHA * c + (1 - BAND_ALPHA) for c in rgb)  # the band over a white axes
        assert contrast(rgb, (1, 1, 1)) >= 3 and contrast(rgb, band) >= 3, colour
    assert len(set(PALETTE)) == len(PALETTE) and BASELINE_COLOUR not in PALETTE


def test_probability_of_improvement_compares_each_method_with_the_baseline_only(swept, tmp_path):
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        drawn = plots.plot_all(swept, tmp_path, figures=["probability_of_improvement"], formats=["svg"])
    poi = swept.probability_of_improvement
    assert (poi["baseline"] != "none").any()  # the aggregate also holds best-baseline pairs
    for figure in drawn:
        text = figure.paths[0].read_text()
        assert "P(method &gt; None (baseline))" in text and " vs " not in text
        assert ">None (baseline)<" not in text  # the baseline is no row of its own


def test_a_subset_of_methods_keeps_the_colours_of_the_full_figures(swept, tmp_path):
    look = plots.aggregate_look(swept)
    drawn = plots.plot_all(swept, tmp_path, figures=["sample_efficiency"], formats=["svg"], look=look,
                           methods=["none", "redo"])
    for figure in drawn:
        strokes = _svg_strokes(figure.paths[0])
        assert set(strokes) == {"none", "redo"}
        assert strokes["redo"] == {(look.styles["redo"].colour.lower(), "")}
    with pytest.raises(plots.PlotError, match="unknown method 'rdo'; the aggregate holds: none, "):
        plots.plot_all(swept, tmp_path, methods=["rdo"])
