"""The analysis wing: from run folders to statistics, figures and versioned reports.

- ``vocabulary``: names every analysis module shares (scope columns, baseline, file names,
  method order) and the ``Aggregate`` with its reader and writer. pandas only.
- ``runs``: reading run folders (manifest, eval and metrics tables) and checking them
  against the matrix. Never imports torch.
- ``scores``: final scores, learning-curve areas, normalisation, balancing and the overall scope.
- ``stats``: every rliable call, through one per-method bootstrap helper.
- ``baselines``: which pairs the probability of improvement compares.
- ``aggregate``: the ``plasticity-bench aggregate`` pipeline.
- ``plots``, ``leaderboard``, ``report``: figures, the leaderboard and the versioned report.

This file imports nothing, so importing one light module (``vocabulary``, ``runs``) never
pulls in rliable or matplotlib.
"""
