"""Fidelity of the six osrl-lib adapters: OSRL's own loop vs the adapter, same seed, same data.

"OSRL's own loop" is what OSRL's `examples/train/train_*.py` do, minus W&B and evaluation:
seed, build the model and trainer with the script's keyword arguments, feed batches that
OSRL's own data code builds (`TransitionDataset` / `process_bc_dataset` / `SequenceDataset`
samples collated by torch's `default_collate`, exactly what its DataLoader does) and call
`trainer.train_one_step`. The adapter gets the same rows through the suite's path (its batch
source's columns, `interface.to_torch`, `update`). After 20 steps every parameter, every
optimiser moment and every extra state tensor must be *bit-identical*: the adapters use
osrl-lib's trainers and reproduce OSRL's data arithmetic exactly, and their private RNG stream
starts where OSRL's global one would after building the model. Only the sampling of row
indices differs (the suite's runner draws them), so both paths here use the same indices.

Also checked: an exact resume (train, checkpoint, train on; versus a fresh instance built
under another global seed that loads the checkpoint, with the global RNG disturbed).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from osrl.algorithms import (
    BC,
    BCQL,
    BEARL,
    CDT,
    CPQ,
    BCQLTrainer,
    BCTrainer,
    BEARLTrainer,
    CDTTrainer,
    COptiDICE,
    COptiDICETrainer,
    CPQTrainer,
)
from osrl.common.dataset import SequenceDataset, TransitionDataset, process_bc_dataset
from torch.utils.data import default_collate

from baselines.osrl_common import RecordingLogger
from benchmark.data import load_dataset
from benchmark.data.toy import generate_dataset
from benchmark.interface import TrainContext, to_torch
from benchmark.registry import load
from benchmark.tasks import get_task

SEED = 7
STEPS = 20
BATCH = 64
SMALL_NETS = {"a_hidden_sizes": [32, 32], "c_hidden_sizes": [32, 32], "vae_hidden_sizes": 32}
SMALL = {
    "bc_safe": {"a_hidden_sizes": [32, 32]},
    "bcq_lag": SMALL_NETS,
    "bear_lag": {**SMALL_NETS, "start_update_policy_step": 8},
    "cpq": SMALL_NETS,
    "coptidice": {"a_hidden_sizes": [32, 32], "c_hidden_sizes": [32, 32]},
    "cdt": {
        "embedding_dim": 16,
        "num_layers": 1,
        "num_heads": 2,
        "lr_warmup_steps": 5,
        "deg": 1,
        "max_reward": 200.0,
        "max_rew_decrease": 20.0,
    },
}
TRANSITION = ("bcq_lag", "bear_lag", "cpq", "coptidice")


def transition_data():
    """150 ToyPointGoal trajectories: both terminals and timeouts occur."""
    data = load_dataset("ToyPointGoal").select_episodes(np.arange(150))
    assert data.terminals.any() and data.timeouts.any()
    return get_task("ToyPointGoal"), data


def sequence_data():
    """ToyVelocity trajectories, enough for OSRL's grid filter to keep several bins."""
    return get_task("ToyVelocity"), generate_dataset("ToyVelocity", episodes=400, seed=1)


def build_adapter(name, task, data, cost_limit=10.0):
    entry = load(name)
    config = entry.config_cls(**SMALL[name], batch_size=BATCH, steps=STEPS)
    ctx = TrainContext(
        task=task,
        dataset=data,
        cost_limit=cost_limit,
        seed=SEED,
        device=torch.device("cpu"),
        cost_limits=(cost_limit,),
    )
    return config, entry.cls(config, ctx)


def seed_all(seed: int) -> None:
    """OSRL's `seed_all` (and the suite runner's `seed_everything`)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def osrl_build(name, cfg, task, data, cost_limit):
    """The model and trainer exactly as OSRL's train script builds them from its config."""
    obs_dim, act_dim = data.observations.shape[1], data.actions.shape[1]
    common = dict(state_dim=obs_dim, action_dim=act_dim, max_action=1.0)
    length = task.horizon
    log = RecordingLogger()
    if name == "bc_safe":
        model = BC(**common, a_hidden_sizes=cfg.a_hidden_sizes, episode_len=length)
        trainer = BCTrainer(
            model, None, logger=log, actor_lr=cfg.actor_lr, bc_mode="safe", cost_limit=cost_limit
        )
    elif name == "bcq_lag":
        model = BCQL(
            **common,
            a_hidden_sizes=cfg.a_hidden_sizes,
            c_hidden_sizes=cfg.c_hidden_sizes,
            vae_hidden_sizes=cfg.vae_hidden_sizes,
            sample_action_num=cfg.sample_action_num,
            PID=cfg.pid,
            gamma=cfg.gamma,
            tau=cfg.tau,
            lmbda=cfg.lmbda,
            beta=cfg.beta,
            phi=cfg.phi,
            num_q=cfg.num_q,
            num_qc=cfg.num_qc,
            cost_limit=cost_limit,
            episode_len=length,
        )
        trainer = BCQLTrainer(
            model,
            None,
            logger=log,
            actor_lr=cfg.actor_lr,
            critic_lr=cfg.critic_lr,
            vae_lr=cfg.vae_lr,
            reward_scale=cfg.reward_scale,
            cost_scale=cfg.cost_scale,
        )
    elif name == "bear_lag":
        model = BEARL(
            **common,
            a_hidden_sizes=cfg.a_hidden_sizes,
            c_hidden_sizes=cfg.c_hidden_sizes,
            vae_hidden_sizes=cfg.vae_hidden_sizes,
            sample_action_num=cfg.sample_action_num,
            gamma=cfg.gamma,
            tau=cfg.tau,
            beta=cfg.beta,
            lmbda=cfg.lmbda,
            mmd_sigma=cfg.mmd_sigma,
            target_mmd_thresh=cfg.target_mmd_thresh,
            start_update_policy_step=cfg.start_update_policy_step,
            num_q=cfg.num_q,
            num_qc=cfg.num_qc,
            PID=cfg.pid,
            cost_limit=cost_limit,
            episode_len=length,
        )
        # train_bearl.py passes no alpha_lr: the trainer default (1e-3) applies
        trainer = BEARLTrainer(
            model,
            None,
            logger=log,
            actor_lr=cfg.actor_lr,
            critic_lr=cfg.critic_lr,
            vae_lr=cfg.vae_lr,
            reward_scale=cfg.reward_scale,
            cost_scale=cfg.cost_scale,
        )
    elif name == "cpq":
        model = CPQ(
            **common,
            a_hidden_sizes=cfg.a_hidden_sizes,
            c_hidden_sizes=cfg.c_hidden_sizes,
            vae_hidden_sizes=cfg.vae_hidden_sizes,
            sample_action_num=cfg.sample_action_num,
            gamma=cfg.gamma,
            tau=cfg.tau,
            beta=cfg.beta,
            num_q=cfg.num_q,
            num_qc=cfg.num_qc,
            qc_scalar=cfg.qc_scalar,
            cost_limit=cost_limit,
            episode_len=length,
        )
        trainer = CPQTrainer(
            model,
            None,
            logger=log,
            actor_lr=cfg.actor_lr,
            critic_lr=cfg.critic_lr,
            alpha_lr=cfg.alpha_lr,
            vae_lr=cfg.vae_lr,
            reward_scale=cfg.reward_scale,
            cost_scale=cfg.cost_scale,
        )
    elif name == "coptidice":
        arrays = {k: v.copy() for k, v in data.arrays().items()}
        stats = TransitionDataset(arrays, cfg.reward_scale, cfg.cost_scale, state_init=True)
        init_proportion, obs_std, act_std = stats.get_dataset_states()
        model = COptiDICE(
            **common,
            f_type=cfg.f_type,
            init_state_propotion=init_proportion,
            observations_std=obs_std,
            actions_std=act_std,
            a_hidden_sizes=cfg.a_hidden_sizes,
            c_hidden_sizes=cfg.c_hidden_sizes,
            gamma=cfg.gamma,
            alpha=cfg.alpha,
            cost_ub_epsilon=cfg.cost_ub_epsilon,
            num_nu=cfg.num_nu,
            num_chi=cfg.num_chi,
            cost_limit=cost_limit,
            episode_len=length,
        )
        trainer = COptiDICETrainer(
            model,
            None,
            logger=log,
            actor_lr=cfg.actor_lr,
            critic_lr=cfg.critic_lr,
            scalar_lr=cfg.scalar_lr,
            reward_scale=cfg.reward_scale,
            cost_scale=cfg.cost_scale,
        )
    else:
        model = CDT(
            **common,
            embedding_dim=cfg.embedding_dim,
            seq_len=cfg.seq_len,
            episode_len=length,
            num_layers=cfg.num_layers,
            num_heads=cfg.num_heads,
            attention_dropout=cfg.attention_dropout,
            residual_dropout=cfg.residual_dropout,
            embedding_dropout=cfg.embedding_dropout,
            time_emb=cfg.time_emb,
            use_rew=cfg.use_rew,
            use_cost=cfg.use_cost,
            cost_transform=cfg.cost_transform,
            add_cost_feat=cfg.add_cost_feat,
            mul_cost_feat=cfg.mul_cost_feat,
            cat_cost_feat=cfg.cat_cost_feat,
            action_head_layers=cfg.action_head_layers,
            cost_prefix=cfg.cost_prefix,
            stochastic=cfg.stochastic,
            init_temperature=cfg.init_temperature,
            target_entropy=-act_dim,
        ).to("cpu")
        trainer = CDTTrainer(
            model,
            None,
            logger=log,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            betas=cfg.betas,
            clip_grad=cfg.clip_grad,
            lr_warmup_steps=cfg.lr_warmup_steps,
            reward_scale=cfg.reward_scale,
            cost_scale=cfg.cost_scale,
            loss_cost_weight=cfg.loss_cost_weight,
            loss_state_weight=cfg.loss_state_weight,
            cost_reverse=False,
            no_entropy=cfg.no_entropy,
        )
    return model, trainer


def index_batches(n_rows: int) -> list[np.ndarray]:
    rng = np.random.default_rng(123)
    return [rng.integers(0, n_rows, size=BATCH) for _ in range(STEPS)]


def assert_same_state(adapter, model, extra: dict[str, torch.Tensor]) -> None:
    ours = adapter.model.state_dict()
    theirs = model.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), f"parameter {key} differs"
    for name, optimizer in adapter._optimizers().items():
        owner = model if hasattr(model, name) else None
        other = getattr(owner, name) if owner is not None else extra["optimizers"][name]
        a, b = optimizer.state_dict(), other.state_dict()
        for slot in a.get("state", {}):
            for k, v in a["state"][slot].items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][slot][k])), (
                    f"{name} {k} differs"
                )
    for name, tensor in adapter._tensors().items():
        assert torch.equal(tensor, getattr(model, name)), f"{name} differs"


@pytest.mark.parametrize("name", TRANSITION)
def test_transition_adapter_matches_osrl_loop(name):
    task, data = transition_data()
    cost_limit = 10.0

    seed_all(SEED)
    cfg, adapter = build_adapter(name, task, data, cost_limit)
    columns = adapter.batch_source("train").columns
    batches = index_batches(len(data))
    our_stats = [
        adapter.update(
            "train", to_torch({k: v[i] for k, v in columns.items()}, torch.device("cpu"))
        )
        for i in batches
    ]

    seed_all(SEED)
    model, trainer = osrl_build(name, cfg, task, data, cost_limit)
    arrays = {k: v.copy() for k, v in data.arrays().items()}
    osrl_data = TransitionDataset(
        arrays, cfg.reward_scale, cfg.cost_scale, state_init=name == "coptidice"
    )
    prepare = osrl_data._TransitionDataset__prepare_sample
    for rows in batches:
        batch = default_collate([prepare(int(i)) for i in rows])
        if name == "coptidice":
            trainer.train_one_step(batch)
        else:
            trainer.train_one_step(*batch)
    assert_same_state(adapter, model, {})
    if hasattr(model, "controller"):
        assert float(adapter.model.controller.error_integral) == float(
            model.controller.error_integral
        )
    ours = {k.split("/", 1)[-1]: v for k, v in our_stats[-1].items()}  # the suite's group/name
    assert ours == {k.split("/", 1)[-1]: v for k, v in trainer.logger.last.items()}


def test_bc_safe_matches_osrl_loop():
    task, data = transition_data()
    cost_limit = 10.0
    seed_all(SEED)
    cfg, adapter = build_adapter("bc_safe", task, data, cost_limit)
    columns = adapter.batch_source("train").columns

    arrays = {k: v.copy() for k, v in data.arrays().items()}
    process_bc_dataset(arrays, cost_limit, cfg.gamma, "safe")
    np.testing.assert_array_equal(columns["obs"], arrays["observations"])
    np.testing.assert_array_equal(columns["actions"], arrays["actions"])
    assert 0 < len(columns["obs"]) < len(data)

    batches = index_batches(len(columns["obs"]))
    for rows in batches:
        adapter.update("train", to_torch({k: v[rows] for k, v in columns.items()}, "cpu"))

    seed_all(SEED)
    model, trainer = osrl_build("bc_safe", cfg, task, data, cost_limit)
    prepare = TransitionDataset(arrays)._TransitionDataset__prepare_sample
    for rows in batches:
        obs, _, act, _, _, _ = default_collate([prepare(int(i)) for i in rows])
        trainer.train_one_step(obs, act)
    assert_same_state(adapter, model, {})


def test_cdt_matches_osrl_sequence_dataset_and_loop():
    task, data = sequence_data()
    seed_all(SEED)
    cfg, adapter = build_adapter("cdt", task, data, cost_limit=20.0)
    source = adapter.batch_source("train")
    assert adapter.augmentation_info["filtered"], "OSRL's own grid filter applies to this data"
    assert adapter.augmentation_info["relabelled"] > 0

    # OSRL's SequenceDataset with the global generators seeded as our local ones
    arrays = {k: v.copy() for k, v in data.arrays().items()}
    random.seed(SEED)
    np.random.seed(SEED)
    osrl_data = SequenceDataset(
        arrays,
        seq_len=cfg.seq_len,
        reward_scale=cfg.reward_scale,
        cost_scale=cfg.cost_scale,
        deg=cfg.deg,
        max_rew_decrease=cfg.max_rew_decrease,
        beta=cfg.beta,
        augment_percent=cfg.augment_percent,
        max_reward=cfg.max_reward,
        min_reward=cfg.min_reward,
        cost_sample=True,
        cost_transform=lambda x: 70 - x,
    )
    assert len(osrl_data.dataset) == len(source)
    np.testing.assert_array_equal(osrl_data.sample_prob, source.probabilities)
    for k, traj in enumerate(osrl_data.dataset):
        assert len(traj["returns"]) == source.lengths[k]
        assert traj["returns"][0] == source.initial_returns[k]
        assert traj["cost_returns"][0] == source.initial_costs[k]

    rng = np.random.default_rng(5)
    picks = []
    for _ in range(STEPS):
        k = rng.choice(len(source), size=BATCH, p=source.probabilities)
        picks.append((k, rng.integers(0, source.lengths[k])))
    prepare = osrl_data._SequenceDataset__prepare_sample
    osrl_batches = [
        default_collate([prepare(int(a), int(b)) for a, b in zip(k, s)]) for k, s in picks
    ]
    our_batches = [source.windows(k, s) for k, s in picks]
    names = ["states", "actions", "returns", "costs_return", "time_steps", "mask", "episode_cost"]
    for theirs, ours in zip(osrl_batches, our_batches):
        for i, key in enumerate([*names, "costs"]):
            np.testing.assert_array_equal(theirs[i].numpy(), ours[key], err_msg=key)

    for batch in our_batches:
        adapter.update("train", to_torch(batch, torch.device("cpu")))

    seed_all(SEED)
    model, trainer = osrl_build("cdt", cfg, task, data, 20.0)
    for batch in osrl_batches:
        trainer.train_one_step(*batch)
    extra = {
        "optimizers": {
            "optim": trainer.optim,
            "scheduler": trainer.scheduler,
            "log_temperature_optimizer": trainer.log_temperature_optimizer,
        }
    }
    assert_same_state(adapter, model, extra)
