"""reports/datasets/summarise.py: the `make data-all` wall-time estimate from measured tasks."""

import pytest


@pytest.fixture(scope="module")
def summarise(report_script):
    return report_script("datasets")


def test_two_jobs_take_the_tasks_in_order_on_the_first_free_core(summarise):
    order = ("A", "B", "C", "D")
    # A on core 1 (0-60), B on core 2 (0-30), C on core 2 (30-120), D on core 1 (60-90)
    minutes = {"A": 60.0, "B": 30.0, "C": 90.0, "D": 30.0}
    assert summarise.two_job_hours(minutes, order) == pytest.approx(2.0)
    assert summarise.two_job_hours(minutes, order, jobs=1) == pytest.approx(3.5)
    # a task not measured yet is left out, not counted as zero-length work on a core
    assert summarise.two_job_hours({"A": 60.0}, order) == pytest.approx(1.0)
