"""Deep Fourier features (Lewandowski et al. 2024, "Plastic learning with deep Fourier
features"): every hidden activation becomes [sin(x), cos(x)] (``networks.layers.Fourier``).

Each unit's pair of outputs is a point on the unit circle, so its gradient never vanishes
for all inputs at once (sin' and cos' are not zero together): the network keeps a linear
regime near every pre-activation, which the paper shows keeps it trainable over a sequence
of tasks. As with CReLU, the pair doubles a layer's outputs, so hidden widths are halved to
keep the network's size; metrics score the 2H outputs and recyclers act on the H incoming
rows with both outgoing columns (``NeuronLayer.copies``). Not for the residual stream,
whose width is fixed.
"""

from __future__ import annotations

from plasticity_bench.methods.crelu import ConcatenatedActivationMethod


class DeepFourierFeatures(ConcatenatedActivationMethod):
    name = "dff"
    activation = "Fourier"
