"""The shared adapter plumbing: OSRL's data arithmetic, the private RNG stream, bad limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from osrl.common.dataset import TransitionDataset, process_bc_dataset
from torch.utils.data import default_collate

from baselines.osrl_common import (
    RecordingLogger,
    TorchRNGStream,
    check_cost_limit,
    dataset_state_stats,
    episode_discounted_sums,
    episode_len,
    scaled,
    transition_columns,
)
from benchmark.data import load_dataset
from benchmark.errors import ConfigError
from benchmark.interface import TrainContext
from benchmark.registry import load
from benchmark.tasks import get_task

OSRL_ADAPTERS = ("bc_safe", "bcq_lag", "bear_lag", "cpq", "coptidice", "cdt")


@pytest.fixture(scope="module")
def data():
    """ToyPointGoal trajectories: both terminals and timeouts occur."""
    dataset = load_dataset("ToyPointGoal").select_episodes(np.arange(120))
    assert dataset.terminals.any() and dataset.timeouts.any()
    return dataset


def test_transition_columns_match_osrl_transition_dataset(data):
    columns = transition_columns(data, with_init=True)
    # done = terminals OR timeouts: a timeout is terminal in OSRL's TD targets
    expected_done = (data.terminals | data.timeouts).astype(np.float32)
    np.testing.assert_array_equal(columns["done"], expected_done)
    assert columns["done"].sum() == data.num_episodes
    osrl = TransitionDataset(
        {k: v.copy() for k, v in data.arrays().items()}, 0.1, 1, state_init=True
    )
    rows = np.arange(0, len(data), 7)
    theirs = default_collate([osrl._TransitionDataset__prepare_sample(int(i)) for i in rows])
    ours = {k: torch.as_tensor(v[rows]) for k, v in columns.items()}
    assert torch.equal(theirs[0], ours["obs"]) and torch.equal(theirs[1], ours["next_obs"])
    assert torch.equal(theirs[2], ours["actions"])
    # OSRL's rewards and costs are float64 after numpy's scalar promotion; ours match bit for bit
    assert theirs[3].dtype == torch.float64
    assert torch.equal(theirs[3], scaled(ours["rewards"], 0.1))
    assert torch.equal(theirs[4], scaled(ours["costs"], 1.0))
    assert torch.equal(theirs[5], ours["done"]) and torch.equal(theirs[6], ours["is_init"])


def test_dataset_state_stats_match_osrl(data):
    osrl = TransitionDataset({k: v.copy() for k, v in data.arrays().items()}, state_init=True)
    theirs = osrl.get_dataset_states()
    ours = dataset_state_stats(data)
    assert ours[0] == theirs[0] == pytest.approx(data.num_episodes / len(data))
    np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_array_equal(ours[2], theirs[2])
    assert ours[1].shape == (1, data.observations.shape[1])


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_episode_cost_returns_match_process_bc_dataset(data, gamma):
    arrays = {k: v.copy() for k, v in data.arrays().items()}
    process_bc_dataset(arrays, 1e9, gamma, "all")
    ours = episode_discounted_sums(data, data.costs, gamma)
    np.testing.assert_array_equal(np.repeat(ours, data.episode_lengths), arrays["cost_returns"])


def test_rng_stream_is_private_and_resumable():
    torch.manual_seed(0)
    stream = TorchRNGStream(torch.device("cpu"))
    outer = torch.get_rng_state()
    with stream.active():
        first = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), outer), "the caller's RNG state is restored"
    torch.manual_seed(0)
    assert torch.equal(first, torch.rand(3)), "the stream starts where the global one was"
    saved = stream.state_dict()
    with stream.active():
        second = torch.rand(3)
    assert not torch.equal(first, second), "the stream advances"
    other = TorchRNGStream(torch.device("cpu"))
    other.load_state_dict(saved)
    with other.active():
        assert torch.equal(torch.rand(3), second)


def test_recording_logger_returns_the_last_values():
    log = RecordingLogger()
    log.store(**{"loss/actor_loss": 1.5, "loss/lagrangian": 2})
    log.store(tab="train", nll=0.25)
    assert log.pop() == {"loss/actor_loss": 1.5, "loss/lagrangian": 2.0, "train/nll": 0.25}
    assert log.pop() == {}


@pytest.mark.parametrize("bad", [0, 0.0, -5, math.nan, math.inf])
def test_check_cost_limit_rejects(bad):
    with pytest.raises(ConfigError, match="positive"):
        check_cost_limit(bad, "x")


def test_episode_len_defaults_to_the_horizon():
    task = get_task("CarRun")
    assert episode_len(0, task) == 200 and episode_len(300, task) == 300
    with pytest.raises(ConfigError):
        episode_len(-1, task)


@pytest.mark.parametrize("name", OSRL_ADAPTERS)
@pytest.mark.parametrize("kappa", [0.0, -10.0])
def test_every_adapter_rejects_a_non_positive_cost_limit(name, kappa):
    entry = load(name)
    task = get_task("ToyVelocity")
    ctx = TrainContext(
        task=task,
        dataset=load_dataset(task),
        cost_limit=kappa,
        seed=0,
        device=torch.device("cpu"),
        cost_limits=(kappa,),
    )
    with pytest.raises(ConfigError, match="cost limit must be a positive"):
        entry.cls(entry.config_cls(steps=1, batch_size=8), ctx)
