"""`surge hit` with the open-model timing of `surge run`: gamma arrivals and rate shapes."""

from __future__ import annotations

from conftest import assert_no_traceback, surge_json


def test_hit_with_gamma_arrivals_keeps_the_rate(test_server):
    rc, data, err = surge_json("hit", test_server + "/", "--rate", "200", "-d", "3s", "-c", "10", "-w", "1",
                               "--arrival", "gamma:cv=2", "--seed", "3")
    assert rc == 0, err
    assert data["model"] == "hit" and data["open_model"]
    assert abs(data["iterations"]["started"] - 600) <= 60  # mean rate kept: 200/s over 3 s, bursts or not


def test_hit_follows_a_trace_shape_for_its_length(test_server, tmp_path):
    trace = tmp_path / "rates.csv"
    trace.write_text("t_s,rate\n0,50\n2,50\n2.001,150\n4,150\n")
    rc, data, err = surge_json("hit", test_server + "/", "--shape", f"trace:{trace}", "-c", "10", "-w", "1")
    assert rc == 0, err
    assert 3.8 <= data["duration_s"] <= 5.0  # the trace sets the length, not the 10 s default
    assert abs(data["iterations"]["started"] - 400) <= 40  # 2 s at 50/s + 2 s at 150/s


def test_hit_rejects_a_bad_arrival_in_one_line(test_server):
    rc, _, err = surge_json("hit", test_server + "/", "--rate", "10", "--arrival", "gamma:cv=-1")
    assert rc == 2
    assert_no_traceback(err)
