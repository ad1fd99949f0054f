"""fanout.ChunkPool: chunks run in forked workers, results come back, failures are loud."""

from __future__ import annotations

import os

import pytest

from linkpay.services.fanout import ChunkFailed, ChunkPool


def double(chunk: int) -> tuple[int, int, int]:
    return chunk, chunk * 2, os.getpid()


def test_with_one_worker_the_chunks_run_here_in_order():
    results = list(ChunkPool(double, workers=1).map(range(5)))
    assert [(c, d) for c, d, _ in results] == [(n, n * 2) for n in range(5)]
    assert {pid for _, _, pid in results} == {os.getpid()}


def test_a_single_chunk_does_not_start_workers():
    (result,) = ChunkPool(double, workers=4).map([21])
    assert result == (21, 42, os.getpid())


def test_no_chunks_no_results():
    assert list(ChunkPool(double, workers=2).map([])) == []


def test_workers_run_every_chunk_once_in_other_processes():
    results = list(ChunkPool(double, workers=2).map(range(20)))
    assert sorted((c, d) for c, d, _ in results) == [(n, n * 2) for n in range(20)]
    assert os.getpid() not in {pid for _, _, pid in results}


def test_each_worker_runs_on_start_first(tmp_path):
    def mark():
        (tmp_path / f"started-{os.getpid()}").touch()

    def work(chunk):
        assert (tmp_path / f"started-{os.getpid()}").exists()
        return chunk

    assert sorted(ChunkPool(work, workers=2, on_start=mark).map(range(6))) == list(range(6))


def test_an_error_in_a_worker_is_raised_here_with_its_traceback():
    def work(chunk):
        if chunk == 3:
            raise ValueError("chunk three is bad")
        return chunk

    with pytest.raises(ChunkFailed, match="ValueError: chunk three is bad"):
        list(ChunkPool(work, workers=2).map(range(8)))


def test_a_worker_that_dies_is_reported():
    def work(chunk):
        if chunk == 2:
            os._exit(3)  # killed mid-chunk, as by the OOM killer
        return chunk

    with pytest.raises(ChunkFailed, match="died"):
        list(ChunkPool(work, workers=2).map(range(6)))
