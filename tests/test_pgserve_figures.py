"""The reload bench's arithmetic (bench/pgserve.py) on hand-made numbers."""

from __future__ import annotations

from bench.pgserve import reload_figures, wrk_totals


def test_each_worker_is_measured_from_the_commit_and_from_the_return() -> None:
    # commit heard at 1000.0 s; import_layer returned 3.4 s later
    workers = {
        4312: {
            "heard_at": 1000.004,
            "swapped_at": 1001.9,
            "update_s": 1.896,
            "new_data_at": 1002.0,
        },
        4301: {
            "heard_at": 1000.012,
            "swapped_at": 1002.5,
            "update_s": 2.488,
            "new_data_at": 1002.75,
        },
    }
    figures = reload_figures(1000.0, 1003.4, workers)
    assert figures["import_return_s"] == 3.4
    assert figures["workers"] == [  # by worker id
        {
            "worker": 4301,
            "notify_s": 0.012,
            "update_s": 2.488,
            "swap_s": 2.5,
            "probe_s": 2.75,
            "probe_from_return_s": -0.65,  # seen before the import returned
        },
        {
            "worker": 4312,
            "notify_s": 0.004,
            "update_s": 1.896,
            "swap_s": 1.9,
            "probe_s": 2.0,
            "probe_from_return_s": -1.4,
        },
    ]
    assert figures["max_reload_lag_s"] == 2.5
    assert figures["max_probe_lag_s"] == 2.75
    assert figures["max_probe_lag_from_return_s"] == -0.65


def test_a_worker_that_never_swapped_leaves_no_maximum() -> None:
    workers = {
        1: {"heard_at": 10.5, "swapped_at": 11.0, "update_s": 0.5, "new_data_at": 11.25},
        2: {"new_data_at": None},  # its /health had no snapshot: it never reloaded
    }
    figures = reload_figures(10.0, 12.0, workers)
    assert figures["workers"][1] == {
        "worker": 2,
        "notify_s": None,
        "update_s": None,
        "swap_s": None,
        "probe_s": None,
        "probe_from_return_s": None,
    }
    assert figures["workers"][0]["swap_s"] == 1.0
    assert figures["max_reload_lag_s"] is None and figures["max_probe_lag_s"] is None


def test_wrk_totals_add_every_kind_of_socket_error() -> None:
    output = """Running 30s test @ http://127.0.0.1:8000/collections/buildings/items
  2 threads and 8 connections
  21345 requests in 30.02s, 1.95GB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:    711.03
"""
    assert wrk_totals(output) == {"requests": 21345, "non_2xx": 5, "socket_errors": 10}
    clean = "  120 requests in 1.00s, 9.1MB read\nRequests/sec: 120.0\n"
    assert wrk_totals(clean) == {"requests": 120, "non_2xx": 0, "socket_errors": 0}
