"""DRCORL: diffusion-regularised constrained offline RL, as its authors' code runs it.

Paper: Guo et al., "Don't Trade Off Safety: Diffusion Regularization for Constrained Offline
RL" (NeurIPS 2025). Code followed: `JamesJunyuGuo/DRCORL` @ 6535c55 as described in
`reference/drcorl.md` (§1 pipeline, §2 hyperparameters, §4 which behaviour we follow).

Stages (each `update` is one step / one iteration):
- `behavior` (phase A): VP-SDE diffusion model of the behaviour policy (diffusion.py).
- `critic` (phase B): IQL reward and cost critics (critics.py).
- `extract` (phase C-a, the authors' "pretrain"): the tanh policy trained by the score
  regulariser alone ("bc" loss, extraction.py).
- `adapt` (phase C-b): per iteration k, beta_k = 0.01 sqrt(k); a cost estimate; one TD step of
  both critics on the current policy; then a reward, "both" (projected) or cost step
  (adaptation.py). Iterations k <= `warmup_iterations` are reward steps: the authors' 500
  "explore" iterations belong to this loop, not to `extract`.
The first three stages do not depend on the cost limit and are shared across cost limits.

The options, and where each departs from the code, are in config.py.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from algorithms.drcorl.adaptation import (
    OnlineBest,
    PIDLagrangian,
    beta_at,
    choose_branch,
    code_adam_deltas,
    pid_threshold,
    project_conflicting,
)
from algorithms.drcorl.config import Config, check_config, reads
from algorithms.drcorl.cost_eval import (
    CostEnsemble,
    combine,
    episode_cost_estimates,
    estimate_states,
    holdout_split,
    policy_eval_step,
)
from algorithms.drcorl.critics import Critic, iql_update, td_update
from algorithms.drcorl.diffusion import VPSDE, BehaviorLoss, ScoreNet, sample
from algorithms.drcorl.extraction import DiracPolicy, numpy_actor, q_guidance, surrogate_loss
from algorithms.drcorl.guidance import (
    CostQ,
    assign,
    cosine,
    ensemble_cost_q,
    flat,
    iql_cost_q,
    unflat,
)
from algorithms.drcorl.rescale import reward_scale
from benchmark.interface import (
    Batch,
    Stage,
    StatelessPolicy,
    TrainContext,
    TransitionSource,
    check_stage,
    torch_actor,
    transition_columns,
    unknown_stage,
)

__all__ = ["DRCORL", "Config"]

COSINE_KEYS = (("cos_grad", "grad/cos"), ("cos_adam_delta", "grad/cos_adam_delta"))
"""(summary counter, logged metric) of the two cosines a "both" iteration measures."""
ONLINE_SEED_BASE = 2_000_000
"""Reset seed of the online-switching episode of iteration k: this + 100000 seed + k, above
the evaluation seeds (1e6 + i, benchmark.evaluate) so no evaluation episode is seen."""
PERIODIC_SEED_OFFSET = 50_000
"""online_best: the code's periodic evaluation episode after iteration k's update resets
with ONLINE_SEED_BASE + 100000 seed + this + k (k < 50000)."""


class DRCORL:
    """DRCORL's four stages behind the suite's `Algorithm` interface (see the module docs)."""

    cost_conditioned = False

    def __init__(self, config: Config, ctx: TrainContext):
        check_config(config, ctx)
        self.config = config
        self.ctx = ctx
        self.device = torch.device(ctx.device)
        data = ctx.dataset
        obs_dim, act_dim = data.observations.shape[1], data.actions.shape[1]
        c = config
        # All of the algorithm's own randomness (diffusion times, noise, dropout) comes from
        # this generator, saved in state_dict, so a resumed run is bit-exact.
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(int(ctx.seed) * 7919 + 17)

        self.sde = VPSDE(c.sde_beta_min, c.sde_beta_max)
        self.score = ScoreNet(
            obs_dim,
            act_dim,
            hidden=c.score_hidden,
            blocks=c.score_blocks,
            expansion=c.score_expansion,
            dropout=c.score_dropout,
            fourier_dim=c.score_fourier_dim,
            cond_dim=c.score_cond_dim,
            fourier_scale=c.score_fourier_scale,
        ).to(self.device)
        self.score.eval()  # dropout only inside the behaviour update
        self.behavior_loss = BehaviorLoss(self.score, self.sde, c.behavior_speedup)
        self.reward_critic = Critic(obs_dim, act_dim, c.critic_hidden, c.critic_layers)
        self.cost_critic = Critic(obs_dim, act_dim, c.critic_hidden, c.critic_layers)
        self.reward_critic.to(self.device)
        self.cost_critic.to(self.device)
        self.actor = DiracPolicy(obs_dim, act_dim, c.policy_hidden, c.policy_layers)
        self.actor.to(self.device)

        adam = torch.optim.Adam
        self.opts: dict[str, torch.optim.Optimizer] = {
            "behavior": torch.optim.AdamW(
                self.score.parameters(), lr=c.behavior_lr, weight_decay=c.behavior_weight_decay
            ),
            "policy": adam(self.actor.parameters(), lr=c.policy_lr),
        }
        for name, critic in (("reward", self.reward_critic), ("cost", self.cost_critic)):
            # Phase C builds fresh optimizers with the run's q_lr / v_lr (drcorl.md §1.3 C0).
            self.opts[f"{name}_q_pre"] = adam(critic.q.parameters(), lr=c.critic_pretrain_lr)
            self.opts[f"{name}_v_pre"] = adam(critic.v.parameters(), lr=c.critic_pretrain_lr)
            self.opts[f"{name}_q"] = adam(critic.q.parameters(), lr=c.q_lr)
            self.opts[f"{name}_v"] = adam(critic.v.parameters(), lr=c.v_lr)

        # Held-out trajectories (offline switching only) never enter a training batch; the
        # cost estimate is read on their states. Without them, on the training data.
        offline = c.switching == "critic"
        self.pe_active = offline and c.cost_signal == "policy_eval"
        train_data, held = holdout_split(data, c.holdout_fraction if offline else 0.0, ctx.seed)
        self.reward_scale = reward_scale(train_data, c.reward_rescale)
        self.columns = transition_columns(train_data)
        self.columns["rewards"] = (train_data.rewards * self.reward_scale).astype(np.float32)
        # The fixed states of the offline cost estimate: drawn from the seed alone (never from
        # the runner's batches), identical for every cost limit.
        self.estimate_obs = estimate_states(
            held if held is not None else train_data,
            c.cost_estimate_states,
            c.cost_estimate_from,
            ctx.seed,
            self.device,
        )
        self.pe: CostEnsemble | None = None
        if self.pe_active:
            self.pe = CostEnsemble(obs_dim, act_dim, c.critic_hidden, c.critic_layers, c.pe_members)
            self.pe.to(self.device)
            self.opts["cost_eval"] = adam(self.pe.members.parameters(), lr=c.pe_lr)
        self.opt_hyper = {
            k: [{h: g[h] for h in ("lr", "weight_decay")} for g in o.param_groups]
            for k, o in self.opts.items()
        }
        # Upper end of the per-step cost, for the ensemble's target clipping.
        self.max_cost = float(train_data.costs.max()) if len(train_data) else 1.0

        # Cost-limit-dependent values live here, never in state_dict (artifact cache).
        self.horizon = int(ctx.task.horizon)
        self.pid_target = pid_threshold(
            float(ctx.cost_limit), c.gamma, self.horizon, c.pid_threshold
        )
        self.selector = OnlineBest(c.cost_threshold)
        self.pid = PIDLagrangian(c.pid_kp, c.pid_ki, c.pid_kd)
        self.counters = {"policy_steps": 0, "adapt_k": 0, "reward": 0, "both": 0, "cost": 0}
        # Sums over every "both" iteration (the log samples only every log_every-th one).
        self.counters.update({"cos_grad_sum": 0.0, "cos_adam_delta_sum": 0.0})
        self.cost_ema: float | None = None
        self.last_online_return = 0.0
        self.last_estimates: dict[str, float] = {}

        stages = [
            Stage("behavior", c.behavior_steps, c.behavior_batch_size, True, reads("behavior")),
            Stage("critic", c.critic_steps, c.critic_batch_size, True, reads("critic")),
            Stage("extract", c.extract_steps, c.policy_batch_size, True, reads("extract")),
        ]
        # `adapt` draws [critic TD | policy step | pe_steps x ensemble TD] in one batch.
        adapt_batch = 2 * c.policy_batch_size
        if self.pe_active:
            # Depends on the extracted policy, not on the cost limit: shared like the others.
            stages.append(
                Stage("cost_eval", c.pe_init_steps, c.pe_batch_size, True, reads("cost_eval"))
            )
            adapt_batch += c.pe_steps_per_iteration * c.pe_batch_size
        stages.append(Stage("adapt", c.adapt_iterations, adapt_batch, False))
        self.stages = tuple(stages)

    # ---------------------------------------------------------------- runner interface
    def batch_source(self, stage: str) -> TransitionSource:
        keys = {
            "behavior": ("obs", "actions"),
            "extract": ("obs",),
            "critic": ("obs", "actions", "rewards", "costs", "next_obs", "done"),
            "adapt": ("obs", "actions", "rewards", "costs", "next_obs", "done"),
        }
        if self.pe_active:
            keys["cost_eval"] = ("obs", "actions", "costs", "next_obs", "done")
        if stage not in keys:
            raise unknown_stage("drcorl", stage, list(keys))
        return TransitionSource({k: self.columns[k] for k in keys[stage]})

    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        check_stage("drcorl", stage, self.stages)
        if stage == "behavior":
            return self._behavior_step(batch)
        if stage == "critic":
            return self._critic_step(batch)
        if stage == "extract":
            loss = self._policy_step(batch["obs"], guidance_fn=None, beta=0.0)
            return {"loss/bc": loss}
        if stage == "cost_eval" and self.pe_active:
            return {"loss/cost_eval_td": self._pe_step(batch)}
        if stage == "adapt":
            return self._adapt_iteration(batch)
        raise unknown_stage("drcorl", stage, self.stages)

    def policy(self, cost_limit: float, num_envs: int) -> StatelessPolicy:
        """The deterministic tanh actor (cost_limit unused: DRCORL trains one per limit)."""
        if self.device.type == "cpu":
            return StatelessPolicy(numpy_actor(self.actor))
        return StatelessPolicy(torch_actor(self.actor, self.device))

    def sample_behavior(self, obs: np.ndarray, n_steps: int = 25, seed: int = 0) -> np.ndarray:
        """Actions drawn from the diffusion behaviour model (one per row of `obs`)."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(len(obs), -1)
        return sample(self.score, self.sde, x, n_steps, gen).cpu().numpy()

    def state_dict(self) -> dict:
        return {
            "score": self.score.state_dict(),
            "reward_critic": self.reward_critic.state_dict(),
            "cost_critic": self.cost_critic.state_dict(),
            "actor": self.actor.state_dict(),
            "opts": {k: o.state_dict() for k, o in self.opts.items()},
            "generator": self.gen.get_state(),
            "counters": dict(self.counters),
            "pid": self.pid.state_dict(),
            "cost_ema": self.cost_ema,
            "selector": self.selector.state_dict(),
            **({"cost_eval": self.pe.state_dict()} if self.pe is not None else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        self.score.load_state_dict(state["score"])
        self.reward_critic.load_state_dict(state["reward_critic"])
        self.cost_critic.load_state_dict(state["cost_critic"])
        self.actor.load_state_dict(state["actor"])
        for key, opt in self.opts.items():
            opt.load_state_dict(state["opts"][key])
            # A shared-stage artifact may come from a variant with other later-stage rates
            # (Stage.reads): the learning rates are this config's, the moments the state's.
            for group, init in zip(opt.param_groups, self.opt_hyper[key]):
                group.update(init)
        self.gen.set_state(state["generator"].cpu())
        self.counters = dict(state["counters"])
        self.pid.load_state_dict(state["pid"])
        self.cost_ema = state["cost_ema"]
        self.selector.load_state_dict(state["selector"])
        if self.pe is not None:
            self.pe.load_state_dict(state["cost_eval"])

    # ---------------------------------------------------------------- stages
    def _behavior_step(self, batch: Batch) -> dict[str, float]:
        self.score.train()
        loss = self.behavior_loss(batch["obs"], batch["actions"], self.gen)
        self.score.eval()
        opt = self.opts["behavior"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss/diffusion": loss.item()}

    def _critic_step(self, batch: Batch) -> dict[str, float]:
        c = self.config
        out = {}
        for name, critic, signal, bug in (
            ("reward", self.reward_critic, batch["rewards"], False),
            ("cost", self.cost_critic, batch["costs"], c.cost_critic_batch_mean_bug),
        ):
            losses = iql_update(
                critic,
                self.opts[f"{name}_q_pre"],
                self.opts[f"{name}_v_pre"],
                batch,
                signal,
                c.gamma,
                c.expectile,
                c.polyak,
                batch_mean_bug=bug,
            )
            out.update({_loss_key(name, k): v.item() for k, v in losses.items()})
        return out

    def _set_policy_lr(self) -> None:
        c = self.config
        progress = min(self.counters["policy_steps"], c.policy_lr_cosine_steps)
        lr = c.policy_lr * 0.5 * (1.0 + math.cos(math.pi * progress / c.policy_lr_cosine_steps))
        for group in self.opts["policy"].param_groups:
            group["lr"] = lr
        self.counters["policy_steps"] += 1

    def _policy_step(self, obs: torch.Tensor, guidance_fn, beta: float) -> float:
        """One Adam step on the surrogate; `guidance_fn(actions)` gives the Q-gradient term."""
        actions = self.actor(obs)
        guidance = guidance_fn(actions) if guidance_fn is not None else None
        loss = surrogate_loss(actions, obs, self.score, self.sde, self.gen, guidance, beta)
        opt = self.opts["policy"]
        self._set_policy_lr()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    def _pe_step(self, batch: Batch) -> float:
        """One TD step of the policy-evaluation ensemble on the current policy."""
        with torch.no_grad():
            next_act = self.actor(batch["next_obs"])
        c = self.config
        opt = self.opts["cost_eval"]
        return policy_eval_step(self.pe, opt, batch, next_act, c.gamma, c.pe_polyak, self.max_cost)

    @torch.no_grad()
    def offline_estimates(self) -> dict[str, float]:
        """Both offline episode-cost estimates of the current policy on the estimate states:
        `iql` (the guiding cost critic's target twins) and, when active, `policy_eval` (the
        ensemble's combined estimate, with its members' mean and std)."""
        obs = self.estimate_obs
        act = self.actor(obs)
        scale = self.horizon * (1.0 - self.config.gamma)
        out = {"iql": scale * self.cost_critic.q_target.mean(obs, act).mean().item()}
        if self.pe is not None:
            members = episode_cost_estimates(self.pe(obs, act), self.horizon, self.config.gamma)
            combined, mean, std = combine(members, self.config.pe_std_coef)
            out.update({"policy_eval": combined, "policy_eval_mean": mean, "policy_eval_std": std})
        return out

    def _cost_estimate(self, k: int) -> float:
        """The raw (episode-cost) estimate the switching rule compares with the limit."""
        if self.config.switching == "online":
            return self._online_episode_cost(k)
        self.last_estimates = self.offline_estimates()
        raw = self.last_estimates[self.config.cost_signal if self.pe is not None else "iql"]
        ema = self.config.cost_estimate_ema
        if self.cost_ema is not None and ema > 0:
            raw = ema * self.cost_ema + (1.0 - ema) * raw
        self.cost_ema = raw
        return raw

    def _adapt_iteration(self, batch: Batch) -> dict[str, float]:
        c = self.config
        k = self.counters["adapt_k"]
        half = c.policy_batch_size
        critic_batch = {key: v[:half] for key, v in batch.items()}
        obs = batch["obs"][half : 2 * half]
        beta = beta_at(k, c.beta_schedule, c.beta_coef)
        pe_losses = []
        if self.pe_active:
            # The ensemble first catches up with the current policy, then is read.
            size = c.pe_batch_size
            for i in range(c.pe_steps_per_iteration):
                start = 2 * half + i * size
                pe_losses.append(
                    self._pe_step({key: v[start : start + size] for key, v in batch.items()})
                )
        raw_cost = self._cost_estimate(k)
        cost = self.ctx.normalise_cost(raw_cost, float(self.ctx.cost_limit))
        branch = choose_branch(
            k, cost, c.warmup_iterations, c.cost_threshold, c.slack_lower, c.slack_upper
        )
        out = {"adapt/beta": beta, "cost/estimate": cost, "cost/estimate_raw": raw_cost}
        if c.switching == "online":
            out["online/return"] = self.last_online_return
        out.update({f"cost/{name}": v for name, v in self.last_estimates.items()})
        if pe_losses:
            out["loss/cost_eval_td"] = float(np.mean(pe_losses))

        with torch.no_grad():
            next_act = self.actor(critic_batch["next_obs"])
        for name, critic, signal in (
            ("reward", self.reward_critic, critic_batch["rewards"]),
            ("cost", self.cost_critic, critic_batch["costs"]),
        ):
            losses = td_update(
                critic,
                self.opts[f"{name}_q"],
                self.opts[f"{name}_v"],
                critic_batch,
                signal,
                next_act,
                c.gamma,
                c.expectile,
                c.polyak,
            )
            out.update({_loss_key(name, key): v.item() for key, v in losses.items()})

        q_r = self.reward_critic.q_target

        def reward_guidance(a: torch.Tensor) -> torch.Tensor:
            return q_guidance(q_r, obs, a)

        cost_guidance = self._cost_guidance_fn(obs, out)
        if branch == "reward":
            out["loss/policy"] = self._policy_step(obs, reward_guidance, beta)
        elif branch == "cost":
            out["loss/policy"] = self._policy_step(obs, cost_guidance, beta)
        else:
            out.update(self._both_step(obs, reward_guidance, cost_guidance, beta))
            for key, logged in COSINE_KEYS:
                self.counters[f"{key}_sum"] = self.counters.get(f"{key}_sum", 0.0) + out[logged]
        self.counters[branch] += 1
        for b in ("reward", "both", "cost"):
            out[f"branch/{b}"] = float(branch == b)
            # Running totals, so a log sampled every N steps still shows every branch taken.
            out[f"branch/{b}_total"] = float(self.counters[b])
        self.counters["adapt_k"] = k + 1
        if c.checkpoint_selection == "online_best":
            self._consider_candidate(k, raw_cost, out)
        return out

    def _consider_candidate(self, k: int, episode_cost: float, out: dict[str, float]) -> None:
        """The code's checkpoint rule after iteration k's update (`safe_policy.py:158-176`):
        the scores are those of the episode run before the update, except at k = 0 and
        k % 10 = 9, where a periodic episode of the updated policy overwrites them."""
        episode_return = self.last_online_return
        if k == 0 or k % 10 == 9:
            seed = ONLINE_SEED_BASE + 100_000 * int(self.ctx.seed) + PERIODIC_SEED_OFFSET + k
            episode_return, episode_cost = self._online_episode(seed)
        norm_reward = float(self.ctx.task.normalise_reward(episode_return))
        norm_cost = self.ctx.normalise_cost(episode_cost, float(self.ctx.cost_limit))
        if self.selector.consider(norm_reward, norm_cost):
            self.ctx.offer_candidate(
                {
                    "return": float(episode_return),
                    "cost": float(episode_cost),
                    "normalised_reward": norm_reward,
                    "normalised_cost": float(norm_cost),
                    "iteration": float(k),
                }
            )
        out["online/best_reward"] = self.selector.best_reward

    def diagnostic_readout(self) -> dict[str, float]:
        """What a diagnostic evaluation records beside the evaluated cost (runner:
        `Trainer._diagnose`): the offline episode-cost estimates of the current policy, and
        the one the switching rule reads, normalised as the rule sees it."""
        if self.config.switching != "critic":
            return {}
        estimates = self.offline_estimates()
        signal = self.config.cost_signal if self.pe is not None else "iql"
        raw = estimates[signal]
        return {
            **{f"estimate_{k}": v for k, v in estimates.items()},
            "estimate": raw,
            "estimate_normalised": self.ctx.normalise_cost(raw, float(self.ctx.cost_limit)),
            "adapt_k": float(self.counters["adapt_k"]),
        }

    def summary(self) -> dict[str, float]:
        """What the record carries beside the evaluation (runner: `algorithm_summary`): the
        final policy's offline cost estimates (episode cost, for calibration against the
        evaluated cost) and the fraction of adaptation iterations on each branch, over all
        of them and over those after the warm-up."""
        out: dict[str, float] = {}
        if self.config.switching == "critic":
            out.update({f"final_estimate_{k}": v for k, v in self.offline_estimates().items()})
            signal = self.config.cost_signal if self.pe is not None else "iql"
            out["final_estimate"] = out[f"final_estimate_{signal}"]
        total = max(self.counters["adapt_k"], 1)
        after = max(self.counters["adapt_k"] - self.config.warmup_iterations - 1, 0)
        warm = min(self.counters["adapt_k"], self.config.warmup_iterations + 1)
        for b in ("reward", "both", "cost"):
            out[f"branch_{b}"] = self.counters[b] / total
            # every warm-up iteration (k <= warmup) is a reward step
            n_after = self.counters[b] - (warm if b == "reward" else 0)
            out[f"branch_{b}_after_warmup"] = n_after / after if after else 0.0
        out["adapt_iterations"] = float(self.counters["adapt_k"])
        if self.counters["both"]:
            for key in ("cos_grad", "cos_adam_delta"):
                out[f"mean_{key}"] = self.counters.get(f"{key}_sum", 0.0) / self.counters["both"]
        return out

    def _cost_q(self) -> CostQ:
        """The cost critic a cost step follows and the PID reads (`cost_guidance`)."""
        if self.config.cost_guidance == "policy_eval":
            return ensemble_cost_q(self.pe, self.config.pe_std_coef)
        return iql_cost_q(self.cost_critic)

    def _cost_guidance_fn(self, obs: torch.Tensor, out: dict[str, float]):
        """The guidance of a cost step: -g_c, or g_r - lambda g_c under a Lagrangian, with
        g_c the action-gradient of the critic `cost_guidance` names."""
        c = self.config
        q_r, q_c = self.reward_critic.q_target, self._cost_q()
        if c.lagrangian == "none":
            return lambda a: -q_guidance(q_c, obs, a)

        def lagrangian_guidance(a: torch.Tensor) -> torch.Tensor:
            if c.lagrangian == "pid":
                with torch.no_grad():
                    error = self._pid_q(obs, a) - self.pid_target
                lam = self.pid.update(error)
            else:
                lam = c.lagrangian_lambda
            out["lagrangian/lambda"] = lam
            return q_guidance(q_r, obs, a) - lam * q_guidance(q_c, obs, a)

        return lagrangian_guidance

    def _pid_q(self, obs: torch.Tensor, act: torch.Tensor) -> float:
        """mean Q_c(s, a) over the batch: from the critic the cost step follows, or, under
        cost_guidance=iql, from the one `pid_signal` names."""
        if self.config.cost_guidance == "policy_eval":
            return self._cost_q()(obs, act).mean().item()
        if self.config.pid_signal == "policy_eval":
            return self.pe.target(obs, act).mean().item()
        return self.cost_critic.q_target.mean(obs, act).mean().item()

    def _both_step(self, obs, reward_guidance, cost_guidance, beta: float) -> dict[str, float]:
        params = list(self.actor.parameters())
        opt = self.opts["policy"]
        if self.config.manipulation == "adam_delta":
            # The code: two Adam steps from the same start, combine the parameter deltas;
            # Adam's moments, step count and the lr schedule advance twice.
            start = [p.detach().clone() for p in params]
            loss_r = self._policy_step(obs, reward_guidance, beta)
            grad_r = flat([p.grad for p in params])  # the raw gradient, kept after the step
            delta_r = flat([p.detach() - s for p, s in zip(params, start)])
            assign(params, start)
            loss_c = self._policy_step(obs, cost_guidance, beta)
            grad_c = flat([p.grad for p in params])
            delta_c = flat([p.detach() - s for p, s in zip(params, start)])
            combined = project_conflicting(delta_r, delta_c)
            assign(params, unflat(flat(start) + combined, params))
            return {
                "loss/policy": 0.5 * (loss_r + loss_c),
                "grad/cos": cosine(grad_r, grad_c),
                "grad/cos_adam_delta": cosine(delta_r, delta_c),
            }
        actions = self.actor(obs)
        loss_r = surrogate_loss(
            actions, obs, self.score, self.sde, self.gen, reward_guidance(actions), beta
        )
        loss_c = surrogate_loss(
            actions, obs, self.score, self.sde, self.gen, cost_guidance(actions), beta
        )
        grad_r = flat(torch.autograd.grad(loss_r, params, retain_graph=True))
        grad_c = flat(torch.autograd.grad(loss_c, params))
        combined = project_conflicting(grad_r, grad_c)
        # What the code's two Adam steps would have combined, from the same Adam state.
        delta_r, delta_c = code_adam_deltas(opt, params, grad_r, grad_c)
        for p, g in zip(params, unflat(combined, params)):
            p.grad = g
        self._set_policy_lr()
        opt.step()
        return {
            "loss/policy": 0.5 * (loss_r.item() + loss_c.item()),
            "grad/cos": cosine(grad_r, grad_c),
            "grad/cos_adam_delta": cosine(delta_r, delta_c),
        }

    def _online_episode_cost(self, k: int) -> float:
        """switching=online only: the cost of ONE episode of the current policy in the real
        environment, as the authors' code does every iteration (drcorl.md §0.2), run by the
        runner through `ctx.rollout` (only under a protocol that allows it, checked at
        construction)."""
        seed = ONLINE_SEED_BASE + 100_000 * int(self.ctx.seed) + k
        self.last_online_return, cost = self._online_episode(seed)
        return cost

    def _online_episode(self, seed: int) -> tuple[float, float]:
        """(return, cost) of one runner-run episode of the current policy."""
        episode = self.ctx.rollout(torch_actor(self.actor, self.device), [seed])
        return float(episode.returns[0]), float(episode.costs[0])


def _loss_key(critic: str, loss: str) -> str:
    """`loss/reward_q`, `loss/cost_v`: one critic's loss under the `group/name` convention."""
    return f"loss/{critic}_{loss.removesuffix('_loss')}"
