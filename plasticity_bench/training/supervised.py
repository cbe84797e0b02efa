"""Continual supervised learning (algorithm ``sl``): the positive control of plasticity loss.

Lyle et al. (ICML 2023) show loss of plasticity without any RL: a network memorises random
labels, then the labels are re-drawn and it memorises again, task after task, and its
accuracy after a fixed budget per task falls. Here (task ``sl:digits-random-labels``, data
in ``environments/supervised.py``): ``steps / task_steps`` tasks on the same ``samples``
digits, each with fresh uniform labels; each task trains ``task_steps`` gradient steps of
cross entropy on minibatches of ``batch_size`` samples drawn uniformly with replacement.
Between tasks the network and its Adam state carry over unchanged: that carry-over is what
loses plasticity, and what a method has to repair.

A run is the RL ``Trainer`` with another data source, trained by the same loop
(training/stack.py): its "replay buffer" holds the current task's labelled samples
(``Batch.obs`` = pixels, ``Batch.actions`` = labels; ``rewards`` and ``terminations`` are 0
and ``next_obs`` repeats ``obs``, transitions being meaningless here), and a step's
collection relabels them when a new task starts. So the methods' ``sample_batch``, the
monitor (``monitor_roles``), the plasticity probe, the checkpoints, the health checks and
the manifest are the RL trainer's own. Every step is one gradient step: ``env_steps`` and
``updates`` both count them. The classifier's network does not stack (its seeds train on
their own modules in one process).

Records (one folder per run, as for RL):
- ``eval.parquet``: one row per task, at its last step: ``return`` = the task's final
  accuracy on all its samples (memorisation is the task, so there is no held-out set),
  ``episodes`` = 1;
- ``metrics.parquet``: per task ``task_final_accuracy`` and ``task_final_loss`` (network
  ``classifier``, layer ``all``), the monitor's metrics every ``monitor_every_updates`` steps and the
  methods' statistics;
- ``train.parquet`` and TensorBoard event files as for RL (training_log.py), without the
  episode charts: ``losses/classifier_loss`` and ``charts/SPS`` (gradient steps per second);
- ``checkpoint.pt`` every ``checkpoint_every_steps`` steps. A task's labels are a function of the
  run seed and the task index, and every other draw comes from the checkpointed RNGs, so a
  resumed run continues exactly as the uninterrupted run (on CPU).

At the last step of a task the task is scored after the monitor and before the methods act,
so a method that resets on that step (``reset`` with ``period = task_steps``) starts the
next task afresh without erasing the score of this one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plasticity_bench.agents.classifier import ROLE, Classifier
from plasticity_bench.environments import split_task
from plasticity_bench.environments.supervised import CLASSES, task_inputs, task_labels
from plasticity_bench.replay import ReplayBuffer
from plasticity_bench.training.run import Trainer

SUPERVISED_PACKAGES = ("plasticity-bench", "torch", "numpy", "scikit-learn", "pandas")


def labelled_samples(inputs: torch.Tensor, device: torch.device) -> ReplayBuffer:
    """A buffer holding every input once, labels to be set per task (``relabel``)."""
    buffer = ReplayBuffer(len(inputs), (inputs.shape[1],), (), discrete=True, device=device)
    for x in inputs:
        buffer.add(x, 0, 0.0, x, False)
    return buffer


def relabel(buffer: ReplayBuffer, labels: torch.Tensor) -> None:
    buffer.actions.copy_(labels.to(buffer.actions.device))


class SupervisedTrainer(Trainer):
    """The Trainer's records, checkpoints, monitor and methods on the task sequence above."""

    packages = SUPERVISED_PACKAGES

    def build(self) -> None:
        """The Trainer's state without environments: the task's inputs in a buffer of labelled
        samples and the classifier."""
        inputs = task_inputs(split_task(self.spec.task)[1], self.hp["samples"])
        self.build_agent(lambda network, hooks: Classifier(inputs.shape[1], CLASSES, self.hp, network, self.device,
                                                           hooks=hooks))
        self.replay = labelled_samples(inputs, self.device)
        self.labelled_task = -1  # the task whose labels the buffer holds

    @property
    def task_index(self) -> int:
        """The task that the next gradient step trains on."""
        return self.env_steps // self.hp["task_steps"]

    # ---- a step of the loop (training/stack.py) -------------------------------------
    def start_episode(self) -> None:
        self.obs = None  # no environment: the data is the buffer

    def policy_acts(self) -> bool:
        return False  # a step takes no action

    def collect_step(self, action=None) -> bool:
        """The step's data: the buffer relabelled when a new task starts. Every step is a
        boundary where a checkpoint may be taken (returns True)."""
        if self.labelled_task != self.task_index:
            relabel(self.replay, task_labels(self.spec.seed, self.task_index, self.hp["samples"]))
            self.labelled_task = self.task_index
        return True

    def updates_due(self) -> int:
        return 1  # a step is one gradient step

    def evaluation_due(self) -> bool:
        return False  # a task is scored in after_update, before the methods act

    def after_update(self) -> None:
        """The step's count, the monitor and the probe when due, the task's score at its last
        step, then the methods: a method that resets on that step (``reset`` with
        ``period = task_steps``) starts the next task afresh without erasing this one's score."""
        self.env_steps = self.updates
        self.measure_when_due()
        if self.env_steps % self.hp["task_steps"] == 0:
            self.score_task()
        self.let_methods_act()

    @torch.no_grad()
    def score_task(self) -> None:
        """The finished task's trainability: loss and accuracy on all its samples."""
        self.check_finite()
        network = self.agent.roles[ROLE].network
        logits = network(self.replay.obs)
        labels = self.replay.actions
        loss, accuracy = torch.stack([F.cross_entropy(logits, labels),
                                      (logits.argmax(dim=1) == labels).float().mean()]).tolist()  # one host sync
        self.records.add_metrics(self.env_steps, [{"network": ROLE, "layer": "all", "metric": metric, "value": value}
                                                  for metric, value in (("task_final_accuracy", accuracy),
                                                                        ("task_final_loss", loss))])
        self.evaluate([accuracy])

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.labelled_task = (self.env_steps - 1) // self.hp["task_steps"]  # the buffer's labels come back with it
