"""DRCORL speed: steps/s per stage at the paper's sizes, harness overhead, inference, projections.

All on the current device (CPU, one torch thread, unless a GPU is visible), on a synthetic
dataset with CarGoal1's dimensions (d_s=72, d_a=2) and the paper profile's networks and
batches (score net ~1.66M parameters at batch 2048; critics and policy 2x256 at 256/512):
- per stage: ms per step (process CPU time on a CPU, wall time on a GPU) through `update`
  including batch sampling and the numpy -> torch conversion (what the runner does), against
  a bare torch forward/backward/step of the same networks on a pre-built batch; target
  ratio <= 1.2;
- inference: seconds per 1000 single-state actions of the extracted tanh policy (target
  <= 0.05 s on CPU) and of the diffusion sampler (the poster's efficiency contrast);
- a projected wall time of a `paper` run per task: each stage's steps x its measured time.
  The network sizes do not depend on the task beyond d_s/d_a (small next to the 256-wide
  trunks), so CarGoal1's timings stand for every task; online rollouts (switching=online)
  and evaluation are not included.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from algorithms.drcorl import DRCORL, Config
from algorithms.drcorl.diffusion import TRAIN_T_MIN
from algorithms.drcorl.extraction import EXTRACT_T_MAX, EXTRACT_T_MIN
from benchmark.data.dataset import from_arrays
from benchmark.interface import TrainContext, to_torch
from benchmark.profiles import load_profile, resolve_config
from benchmark.tasks import DSRL_TASKS, get_task

TASK = "CarGoal1"
ROWS = 100_000


def _dataset(obs_dim: int, act_dim: int):
    rng = np.random.default_rng(0)
    n = ROWS
    done = np.zeros(n, dtype=bool)
    done[999::1000] = True
    return from_arrays(
        TASK,
        {
            "observations": rng.standard_normal((n, obs_dim)).astype(np.float32),
            "next_observations": rng.standard_normal((n, obs_dim)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
            "rewards": rng.uniform(0, 0.05, n).astype(np.float32),
            "costs": (rng.uniform(size=n) < 0.02).astype(np.float32),
            "terminals": np.zeros(n, dtype=bool),
            "timeouts": done,
        },
        source="generated",
    )


def _algorithm(device: torch.device, **changes) -> DRCORL:
    task = get_task(TASK)
    config = resolve_config("drcorl", Config, TASK, load_profile("paper"), changes)
    ctx = TrainContext(
        task=task,
        dataset=_dataset(task.obs_dim, task.act_dim),
        cost_limit=task.drcorl_cost_limit,
        seed=0,
        device=device,
    )
    return DRCORL(Config(**config), ctx)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, steps: int, device: torch.device) -> tuple[float, float]:
    """Best of three (wall, process CPU) seconds per call of fn, after a warm-up. On a shared
    CPU the process time is the steadier figure; on a GPU the wall time is the one to read."""
    fn()
    wall = cpu = float("inf")
    for _ in range(3):
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            fn()
        _sync(device)
        wall = min(wall, (time.perf_counter() - start) / steps)
        cpu = min(cpu, (time.process_time() - start_cpu) / steps)
    return wall, cpu


def _pick(timing: tuple[float, float], device: torch.device) -> float:
    return timing[1] if device.type == "cpu" else timing[0]


def _through_update(algo: DRCORL, stage: str, batch_size: int, device) -> callable:
    source = algo.batch_source(stage)
    rng = np.random.default_rng(0)
    return lambda: algo.update(stage, to_torch(source.sample(rng, batch_size), device))


def _fixed_batch(algo: DRCORL, stage: str, batch_size: int, device) -> dict:
    source = algo.batch_source(stage)
    return to_torch(source.sample(np.random.default_rng(1), batch_size), device)


# ------------------------------------------------------------------------ bare torch steps
# The same maths written as plainly as possible: global RNG, nn.Module calls, no metrics.


def _bare_behavior(algo: DRCORL, batch: dict):
    net, opt, sde = algo.score, algo.opts["behavior"], algo.sde
    obs, act = batch["obs"], batch["actions"]

    def step():
        net.train()
        t = torch.rand((act.shape[0], 1), device=act.device) * (1 - TRAIN_T_MIN) + TRAIN_T_MIN
        z = torch.randn_like(act)
        eps = net(sde.alpha(t) * act + sde.sigma(t) * z, t, obs)
        loss = ((eps - z) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _bare_critic_pair(algo: DRCORL, batch: dict, td_actor=None, suffix: str = "_pre"):
    """Both critics: V expectile step, Q step (IQL or TD target), Polyak."""
    c = algo.config
    obs, act, nobs = batch["obs"], batch["actions"], batch["next_obs"]
    notdone = 1 - batch["done"][:, None]
    pairs = [
        (algo.reward_critic, batch["rewards"][:, None], "reward"),
        (algo.cost_critic, batch["costs"][:, None], "cost"),
    ]

    def step():
        if td_actor is not None:
            with torch.no_grad():
                next_act = td_actor(nobs)
        for critic, x, name in pairs:
            qo, vo = algo.opts[f"{name}_q{suffix}"], algo.opts[f"{name}_v{suffix}"]
            with torch.no_grad():
                tq = critic.q_target(obs, act)
                if td_actor is None:
                    y1 = y2 = x + c.gamma * notdone * critic.v(nobs)
                else:
                    t1, t2 = critic.q_target.both(nobs, next_act)
                    y1, y2 = x + c.gamma * notdone * t1, x + c.gamma * notdone * t2
            u = tq - critic.v(obs)
            v_loss = (torch.where(u > 0, c.expectile, 1 - c.expectile) * u**2).mean()
            vo.zero_grad()
            v_loss.backward()
            vo.step()
            q1, q2 = critic.q.both(obs, act)
            q_loss = 0.5 * (((q1 - y1) ** 2).mean() + ((q2 - y2) ** 2).mean())
            qo.zero_grad()
            q_loss.backward()
            qo.step()
            with torch.no_grad():
                for p, tp in zip(critic.q.parameters(), critic.q_target.parameters()):
                    tp.mul_(1 - c.polyak).add_(p, alpha=c.polyak)

    return step


def _bare_policy(algo: DRCORL, obs: torch.Tensor, beta: float):
    actor, score, sde, opt = algo.actor, algo.score, algo.sde, algo.opts["policy"]
    q = algo.reward_critic.q_target
    score.eval()

    def step():
        a = actor(obs)
        t = torch.rand((a.shape[0], 1), device=a.device) * (EXTRACT_T_MAX - EXTRACT_T_MIN)
        t = t + EXTRACT_T_MIN
        sigma = sde.sigma(t)
        with torch.no_grad():
            eps = score(sde.alpha(t) * a.detach() + sigma * torch.randn_like(a), t, obs)
        loss = (sigma**2 * eps * a).sum(-1)
        if beta:
            ad = a.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(q.mean(obs, ad).sum(), ad)
            loss = loss - beta * (g * a).sum(-1)
        loss = loss.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _bare_adapt(algo: DRCORL, batch: dict):
    half = batch["obs"].shape[0] // 2
    critic = _bare_critic_pair(algo, {k: v[:half] for k, v in batch.items()}, algo.actor, "")
    policy = _bare_policy(algo, batch["obs"][half:], beta=0.3)
    states, qc = algo.estimate_obs, algo.cost_critic.q_target

    def step():
        with torch.no_grad():
            float(qc.mean(states, algo.actor(states)).mean())
        critic()
        policy()

    return step


# ------------------------------------------------------------------------ sections


def _stage_rows(device: torch.device, quick: bool) -> tuple[list[dict], dict]:
    rows, per_step = [], {}
    n = {"behavior": 3 if quick else 8, "small": 30 if quick else 100}
    for policy_batch in (256, 512):
        algo = _algorithm(device, policy_batch_size=policy_batch)
        cases = []
        if policy_batch == 256:
            cases += [
                ("behavior", 2048, _bare_behavior, n["behavior"]),
                ("critic", 256, _bare_critic_pair, n["small"]),
            ]
        cases += [
            ("extract", policy_batch, lambda a, b: _bare_policy(a, b["obs"], 0.0), n["small"]),
            ("adapt", 2 * policy_batch, _bare_adapt, n["small"]),
        ]
        for stage, batch_size, bare_fn, steps in cases:
            timing = _timed(_through_update(algo, stage, batch_size, device), steps, device)
            bare_step = bare_fn(algo, _fixed_batch(algo, stage, batch_size, device))
            bare_timing = _timed(bare_step, steps, device)
            harness, bare = _pick(timing, device), _pick(bare_timing, device)
            key = stage if stage in ("behavior", "critic") else f"{stage}@{policy_batch}"
            per_step[key] = harness
            rows.append(
                {
                    "section": "drcorl",
                    "what": f"{stage} step, batch {batch_size} ({TASK} sizes, {device.type})",
                    "steps_per_s": 1.0 / harness,
                    "update_ms": 1000 * harness,
                    "bare_torch_ms": 1000 * bare,
                    "ratio": harness / bare,
                    "target_ratio": 1.2,
                    "update_wall_ms": 1000 * timing[0],
                }
            )
    # A "both" iteration (two surrogate gradients, projection) costs more than a reward one.
    algo = _algorithm(device, warmup_iterations=-1)
    algo._cost_estimate = lambda k: algo.cost_norm  # normalised 1.0: inside the slack band
    both = _pick(_timed(_through_update(algo, "adapt", 512, device), n["small"], device), device)
    per_step["adapt_both@256"] = both
    rows.append(
        {
            "section": "drcorl",
            "what": f"adapt step in the 'both' branch, batch 512 ({device.type})",
            "steps_per_s": 1.0 / both,
            "update_ms": 1000 * both,
        }
    )
    return rows, per_step


def _inference_rows(device: torch.device, quick: bool) -> list[dict]:
    algo = _algorithm(device)
    obs = algo.ctx.dataset.observations[:1]
    act = algo.policy(10.0, 1).act
    calls = 200 if quick else 1000
    policy_wall, policy_cpu = _timed(lambda: act(obs), calls, device)
    rows = [
        {
            "section": "drcorl",
            "what": f"extracted tanh policy, single-state actions ({device.type})",
            "s_per_1000_actions": 1000 * policy_wall,
            "cpu_s_per_1000_actions": 1000 * policy_cpu,
            "target_s": 0.05,
        }
    ]
    for n_steps in (5, 25) if quick else (5, 25, 100):
        calls = 5 if quick else 20
        wall, cpu = _timed(lambda n=n_steps: algo.sample_behavior(obs, n), calls, device)
        rows.append(
            {
                "section": "drcorl",
                "what": f"diffusion sampler, {n_steps} steps, single-state ({device.type})",
                "s_per_1000_actions": 1000 * wall,
                "cpu_s_per_1000_actions": 1000 * cpu,
            }
        )
    return rows


def _projection_rows(per_step: dict, device: torch.device) -> list[dict]:
    profile = load_profile("paper")
    rows = []
    for task in DSRL_TASKS:
        c = resolve_config("drcorl", Config, task.name, profile, {})
        batch = c["policy_batch_size"]
        adapt_reward = per_step[f"adapt@{batch}"]
        # The "both" step was measured at batch 256; scale it by the reward-step ratio.
        adapt_both = per_step["adapt_both@256"] * adapt_reward / per_step["adapt@256"]
        warm = min(c["warmup_iterations"] + 1, c["adapt_iterations"])
        # After the warm-up every iteration is costed as a "both" one: an upper bound.
        seconds = {
            "behavior": c["behavior_steps"] * per_step["behavior"],
            "critic": c["critic_steps"] * per_step["critic"],
            "extract": c["extract_steps"] * per_step[f"extract@{batch}"],
            "adapt": warm * adapt_reward + (c["adapt_iterations"] - warm) * adapt_both,
        }
        rows.append(
            {
                "section": "drcorl",
                "what": f"projected paper run, {task.name} ({device.type}, 1 thread)",
                **{f"{k}_h": v / 3600 for k, v in seconds.items()},
                "total_h": sum(seconds.values()) / 3600,
            }
        )
    return rows


def run(quick: bool) -> list[dict]:
    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows, per_step = _stage_rows(device, quick)
    rows += _inference_rows(device, quick)
    rows += _projection_rows(per_step, device)
    if device.type == "cpu":
        rows.append({"section": "drcorl", "what": "GPU timings", "note": "no GPU visible"})
    return rows
