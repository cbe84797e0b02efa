"""DeepMind Control suite tasks as gymnasium environments.

Observations are the task's observation dict flattened and concatenated in the order of
``observation_spec()`` (an OrderedDict fixed by the task). Actions in [-1, 1] are rescaled
to the action spec's bounds. Every suite task pays a reward in [0, 1] per step and runs
1000 steps by default.
"""

from __future__ import annotations

import gymnasium
import numpy as np


class DMCEnv(gymnasium.Env):
    """One dm_control suite task (``domain``, ``task``) with gymnasium's API.

    ``reset(seed=s)`` replaces the task's RandomState, the only source of randomness in a
    suite episode (initial state and any task randomisation), so the seed and the actions
    determine the episode.
    """

    metadata = {"render_modes": []}

    def __init__(self, domain: str, task: str):
        from dm_control import suite

        from plasticity_bench.environments.gym_tasks import route_mujoco_warnings

        route_mujoco_warnings()  # after dm_control's import installed its own handler
        self.domain, self.task_name = domain, task
        self._env = suite.load(domain, task)
        self._observation_keys = tuple(self._env.observation_spec().keys())
        size = sum(int(np.prod(spec.shape)) for spec in self._env.observation_spec().values())
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        spec = self._env.action_spec()
        self._action_low = np.asarray(spec.minimum, dtype=np.float64) * np.ones(spec.shape)
        self._action_high = np.asarray(spec.maximum, dtype=np.float64) * np.ones(spec.shape)
        self._action_dtype = spec.dtype
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=spec.shape, dtype=np.float32)
        self._needs_reset = True

    @property
    def dm_env(self):
        """The wrapped ``dm_control.rl.control.Environment``."""
        return self._env

    def _flatten(self, observation) -> np.ndarray:
        return np.concatenate(
            [np.asarray(observation[key], dtype=np.float32).ravel() for key in self._observation_keys]
        )

    def scale_action(self, action) -> np.ndarray:
        """[-1, 1] → [minimum, maximum] of the task's action spec."""
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        scaled = self._action_low + (action + 1.0) * (self._action_high - self._action_low) / 2.0
        return scaled.astype(self._action_dtype)

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)
        time_step = self._env.reset()
        self._needs_reset = False
        return self._flatten(time_step.observation), {}

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("step() after the episode ended; call reset() first")
        time_step = self._env.step(self.scale_action(action))
        reward = 0.0 if time_step.reward is None else float(time_step.reward)
        terminated = truncated = False
        if time_step.last():
            self._needs_reset = True
            # dm_control ends an episode on its time limit with discount 1 and on a true
            # terminal state with discount 0.
            terminated = time_step.discount == 0.0
            truncated = not terminated
        info = {"discount": float(time_step.discount)}
        return self._flatten(time_step.observation), reward, terminated, truncated, info

    def close(self):
        self._env.close()


def make_dmc_env(name: str) -> DMCEnv:
    """``"cheetah-run"`` → DMCEnv; the first '-' splits domain from task."""
    domain, task = name.split("-", 1)
    return DMCEnv(domain, task)
