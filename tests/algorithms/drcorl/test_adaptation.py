"""DRCORL's switching rule, beta schedule, projection and PID Lagrangian."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from algorithms.drcorl.adaptation import (
    PIDLagrangian,
    beta_at,
    choose_branch,
    pid_threshold,
    project_conflicting,
)

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
vectors = st.integers(2, 12).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=finite), arrays(np.float64, n, elements=finite)
    )
)


@settings(max_examples=300, deadline=None)
@given(vectors)
def test_projection_of_conflicting_directions_agrees_with_both(pair):
    g_r, g_c = (torch.as_tensor(v) for v in pair)
    assume(torch.linalg.norm(g_r) > 1e-3 and torch.linalg.norm(g_c) > 1e-3)
    assume(torch.dot(g_r, g_c) < 0)
    combined = project_conflicting(g_r, g_c)
    tol = (
        1e-9
        * float(torch.linalg.norm(g_r) * torch.linalg.norm(g_c))
        * (1 + float(torch.linalg.norm(combined)))
    )
    assert float(torch.dot(combined, g_r)) >= -tol
    assert float(torch.dot(combined, g_c)) >= -tol


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_aligned_directions_are_averaged(pair):
    g_r, g_c = (torch.as_tensor(v) for v in pair)
    assume(torch.dot(g_r, g_c) >= 0)
    assert torch.allclose(project_conflicting(g_r, g_c), 0.5 * (g_r + g_c))


def test_projection_removes_the_conflicting_component():
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # g_r - proj_{g_c} g_r = (0.5, 0.5); g_c - proj_{g_r} g_c = (0, 1); mean (0.25, 0.75)
    assert torch.allclose(project_conflicting(g_r, g_c), torch.tensor([0.25, 0.75]))


def test_branch_order_warmup_then_slack_band():
    kw = {"warmup": 500, "threshold": 1.0, "slack_lower": 0.5, "slack_upper": 0.5}
    assert choose_branch(500, 100.0, **kw) == "reward", "k <= warm-up ignores the cost"
    assert choose_branch(501, 0.5, **kw) == "reward"
    assert choose_branch(501, 0.51, **kw) == "both"
    assert choose_branch(501, 1.5, **kw) == "both"
    assert choose_branch(501, 1.51, **kw) == "cost"
    asym = {**kw, "slack_lower": 0.2, "slack_upper": 0.0}
    assert choose_branch(501, 0.9, **asym) == "both"
    assert choose_branch(501, 1.01, **asym) == "cost"


def test_beta_schedules():
    assert beta_at(0, "sqrt", 0.01) == 0.0
    assert math.isclose(beta_at(500, "sqrt", 0.01), 0.2236, rel_tol=1e-3)
    assert math.isclose(beta_at(8000, "sqrt", 0.01), 0.894, rel_tol=1e-3)
    assert math.isclose(beta_at(0, "sqrt_offset", 0.01), 0.2)
    assert beta_at(123, "constant", 0.02) == 0.02


def test_pid_threshold_is_the_authors_intended_value():
    assert math.isclose(pid_threshold(10.0, 0.99, 1000), 1.0, rel_tol=1e-3)
    assert math.isclose(pid_threshold(30.0, 0.99, 200), 12.99, rel_tol=1e-3)


def test_pid_lambda_grows_under_violation_and_stays_zero_when_satisfied():
    pid = PIDLagrangian(0.1, 0.003, 0.001)
    assert all(pid.update(-1.0) == 0.0 for _ in range(5))
    lams = [pid.update(2.0) for _ in range(10)]
    assert lams[0] > 0 and all(b > a for a, b in zip(lams[1:], lams[2:]))
    restored = PIDLagrangian(0.1, 0.003, 0.001)
    restored.load_state_dict(pid.state_dict())
    assert restored.update(2.0) == pid.update(2.0)
