"""What runs log, by name, without torch: every metric the monitor and the probe write (with a
one-line definition, for ``plasticity-bench list``), the thresholds of the inactive ratios and
the networks (roles) each algorithm's runs log them for. The analysis and the workflow check
configs against these names before anything trains."""

from __future__ import annotations

# Thresholds at which the inactive ratios are logged: 0 (ReDo's strict dormancy and the
# GraMa paper's ReLU proposition), 0.01 (ReGraMa's own threshold), 0.025 and 0.1 (the tau
# values studied by ReDo and GraMa).
MONITOR_TAUS: tuple[float, ...] = (0.0, 0.01, 0.025, 0.1)
SRANK_DELTA = 0.01  # srank's threshold: the smallest k keeping 1 - delta of the singular values' sum

# The networks each algorithm trains, by role name (agents/*.py; tests/test_metric_names.py
# checks them against the agents).
ROLES: dict[str, tuple[str, ...]] = {"sac": ("actor", "critic"), "td3": ("actor", "critic"), "dqn": ("q",),
                                     "sl": ("classifier",)}
# Per-task rows of supervised runs (training/supervised.py), besides the monitor's.
TASK_METRICS = {"task_final_accuracy": "accuracy on the task's samples at the task's end (supervised runs)",
                "task_final_loss": "cross-entropy on the task's samples at the task's end (supervised runs)"}

# Name → one-line definition, for ``plasticity-bench list``; the names are those of the
# ``metric`` column that ``monitor_roles`` writes. Activity metrics: per hidden layer and
# "all" (all neurons); feature metrics: per hidden layer, per penultimate feature matrix and
# "all" (mean over the penultimate ones); parameter metrics: "all" only.
METRICS: dict[str, str] = {
    **{
        f"grama_inactive_ratio@{tau:g}": f"fraction of hidden neurons with GraMa score <= {tau:g} "
        "(GraMa: E|dL/dz_i| over the batch / its layer mean, z = the pre-activation; Liu et al. 2025)"
        for tau in MONITOR_TAUS
    },
    **{
        f"grama_output_inactive_ratio@{tau:g}": f"as grama_inactive_ratio@{tau:g}, with the gradient at the "
        "activation's output h (GraMa variant 'output', the paper's notation read literally; an ablation)"
        for tau in MONITOR_TAUS
    },
    **{
        f"grama_released_inactive_ratio@{tau:g}": f"as grama_inactive_ratio@{tau:g}, with the released code's "
        "score: mean |dL/dW| of the incoming row, |dL/dgamma| under LayerNorm (GraMa variant 'released')"
        for tau in MONITOR_TAUS
    },
    **{
        f"dormant_ratio@{tau:g}": f"fraction of hidden neurons with ReDo score <= {tau:g} "
        "(ReDo: E|h_i| over the batch / its layer mean; Sokar et al. 2023)"
        for tau in MONITOR_TAUS
    },
    **{
        f"dormant_ratio:block_out@{tau:g}": f"as dormant_ratio@{tau:g}, on the residual stream after each "
        "residual block (tensor set block_out; residual nets only)"
        for tau in MONITOR_TAUS
    },
    **{
        f"grama_inactive_ratio:block_out@{tau:g}": f"as grama_inactive_ratio@{tau:g}, with E|dL/dy_i| at the "
        "residual stream after each residual block (tensor set block_out; residual nets only)"
        for tau in MONITOR_TAUS
    },
    **{
        f"dormant_ratio:released_all@{tau:g}": f"as dormant_ratio@{tau:g}, on relu(y) of every Linear and "
        "LayerNorm output, output layers included (tensor set released_all: the released GraMa code's set)"
        for tau in MONITOR_TAUS
    },
    **{
        f"grama_released_inactive_ratio:released_all@{tau:g}": f"as grama_released_inactive_ratio@{tau:g}, on "
        "every Linear (mean |dL/dW| of the row) and LayerNorm (|dL/dgamma|), output layers included "
        "(tensor set released_all)"
        for tau in MONITOR_TAUS
    },
    "dormant_not_grama_ratio@0": "fraction of hidden neurons dormant at tau 0 (ReDo score 0) whose GraMa "
    "score is not 0: exactly 0 in ReLU nets (the GraMa paper's containment proposition)",
    "active_fraction": "mean over batch and hidden neurons of 1[h > 0] (fraction of active units)",
    "srank": f"smallest k with sum_(i<=k) sigma_i / sum sigma >= {1 - SRANK_DELTA:g}, sigma = singular values "
    "of the (batch x features) matrix; 'all' = mean over penultimate layers (Kumar et al. 2021)",
    "effective_rank": "exp(-sum p log p), p = sigma / sum sigma of the (batch x features) matrix; "
    "'all' = mean over penultimate layers",
    "feature_norm": "mean over batch of the L2 norm of a sample's features; 'all' = mean over penultimate layers",
    "weight_magnitude": "sqrt(mean theta^2) over all parameters of the network",
    "weight_drift": "sqrt(mean (theta - theta0)^2), theta0 = parameters at the start of training "
    "(absent when the parameter shapes changed)",
    "grad_norm": "||dL/dtheta||_2 of the network's training loss on the monitor batch",
    "hessian_top_eigenvalue": "dominant eigenvalue of d2L/dtheta2 by power iteration on Hessian-vector "
    "products (only with monitor_hessian=true)",
    **{
        "probe_loss": "L: final MSE of copies of the network fitted for probe_steps full-batch steps of its own "
        "optimizer type to probe_targets random targets a + sin(1e5 f(x; w0)) on probe_batch_size replay inputs "
        "(w0 a fresh init, a the mean output), mean over the targets; at update 0 and every probe_every_updates "
        "updates (Lyle et al. 2023)",
        "probe_initial_loss": "L0: the probe's loss before its first fitting step (mean over the targets)",
        "probe_target_variance": "b: the probe targets' variance, the loss of predicting each output's mean",
        "plasticity": "P = b - L: how much of the probe targets' variance the fit explains; higher = more "
        "plastic (Lyle et al. 2023's plasticity; its fall from update 0 is their plasticity loss)",
        "probe_loss_ratio": "L / L0: the share of the probe's initial loss left after the fit",
    },
}
METRICS.update(TASK_METRICS)
