"""gymnasium tasks (MuJoCo v5 and classic control) under the package's conventions."""

from __future__ import annotations

import logging

import gymnasium
import numpy as np

logger = logging.getLogger(__name__)

# MuJoCo's default warning handler prints to stdout and appends to ./MUJOCO_LOG.TXT in
# whatever directory the job runs in. This one is the compiler's deprecation notice for
# `settotalmass` in models bundled with gymnasium and dm_control: nothing a user can act on.
_UNACTIONABLE_MUJOCO_WARNINGS = ("compiler attribute 'settotalmass' is deprecated",)


def _mujoco_warning(message: str) -> None:
    if any(known in message for known in _UNACTIONABLE_MUJOCO_WARNINGS):
        logger.debug("MuJoCo: %s", message)
    else:
        logger.warning("MuJoCo: %s", message)


def route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings to Python logging instead of stdout and MUJOCO_LOG.TXT.

    Call after importing dm_control, which installs its own handler at import time.
    """
    import mujoco

    mujoco.set_mju_user_warning(_mujoco_warning)


class FlatFloat32Observation(gymnasium.ObservationWrapper):
    """Observations as flat float32 vectors."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gymnasium.spaces.Box):
            raise TypeError(f"expected a Box observation space, got {space}")
        self.observation_space = gymnasium.spaces.Box(
            low=space.low.astype(np.float32).ravel(),
            high=space.high.astype(np.float32).ravel(),
            dtype=np.float32,
        )

    def observation(self, observation):
        return np.asarray(observation, dtype=np.float32).ravel()


class UnitBoxAction(gymnasium.ActionWrapper):
    """Actions in [-1, 1] rescaled affinely to the wrapped env's finite bounds."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        space = env.action_space
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"cannot rescale to unbounded action space {space}")
        self._low, self._half_range = low, (high - low) / 2.0
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=space.shape, dtype=np.float32)

    def action(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        return (self._low + (action + 1.0) * self._half_range).astype(self.env.action_space.dtype)


def make_gymnasium_env(name: str) -> gymnasium.Env:
    """``gymnasium.make(name)`` keeping its registered TimeLimit, with flat float32
    observations and, for Box actions, actions in [-1, 1]."""
    if name in gymnasium.registry and "mujoco" in str(gymnasium.registry[name].entry_point):
        route_mujoco_warnings()
    env = FlatFloat32Observation(gymnasium.make(name))
    space = env.action_space
    if isinstance(space, gymnasium.spaces.Box):
        if not (np.all(space.low == -1.0) and np.all(space.high == 1.0) and space.dtype == np.float32):
            env = UnitBoxAction(env)
    return env
