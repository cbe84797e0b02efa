"""MinAtar games as gymnasium environments with flat float32 observations."""

from __future__ import annotations

import gymnasium
import numpy as np

# MinAtar has no time limit apart from Freeway's built-in 2500 frames, and a good Breakout
# agent can play forever (the bricks respawn). 10000 steps (4x Freeway's episode) bounds the
# cost of one evaluation episode while lying far beyond the episodes of the DQN agents in
# Young & Tian (2019), whose returns are a few tens of points.
MAX_EPISODE_STEPS = 10_000


class MinAtarEnv(gymnasium.Env):
    """One MinAtar game with the full 6-action set and sticky actions (p=0.1), as in
    Young & Tian (2019). The 10x10xC boolean state is returned flattened as float32.

    ``reset(seed=s)`` reseeds the game's RandomState (which also draws the sticky actions)
    and clears the remembered last action, so the seed and the actions determine the episode.
    """

    metadata = {"render_modes": []}

    def __init__(self, game: str, sticky_action_prob: float = 0.1):
        from minatar import Environment

        self.game = game
        self._game = Environment(env_name=game, sticky_action_prob=sticky_action_prob)
        self.observation_space = gymnasium.spaces.Box(
            0.0, 1.0, shape=(int(np.prod(self._game.state_shape())),), dtype=np.float32
        )
        self.action_space = gymnasium.spaces.Discrete(self._game.num_actions())
        self._needs_reset = True

    def _observation(self) -> np.ndarray:
        return self._game.state().astype(np.float32).ravel()

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._game.seed(seed)
        self._game.last_action = 0  # else a sticky first action could repeat the last episode's
        self._game.reset()
        self._needs_reset = False
        return self._observation(), {}

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("step() after the episode ended; call reset() first")
        reward, terminal = self._game.act(int(action))
        self._needs_reset = bool(terminal)
        return self._observation(), float(reward), bool(terminal), False, {}


def make_minatar_env(game: str) -> gymnasium.Env:
    return gymnasium.wrappers.TimeLimit(MinAtarEnv(game), max_episode_steps=MAX_EPISODE_STEPS)
