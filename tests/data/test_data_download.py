"""The Fashion-MNIST download path, offline: a local http.server (and file://) serves files written here."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from autostruct.data import load_dataset
from autostruct.data.download import DownloadError, download_files
from autostruct.errors import AutostructError

STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def write_fashion_like(folder: Path, n_train=30, n_test=10) -> dict[str, str]:
    """Four gzipped IDX files shaped like Fashion-MNIST's; returns {file name: md5}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        (np.arange(n_test) % 10).astype(np.uint8),
    ]
    sums = {}
    for stem, arr in zip(STEMS, arrays, strict=True):
        header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
        blob = gzip.compress(header + arr.tobytes())
        (folder / f"{stem}.gz").write_bytes(blob)
        sums[f"{stem}.gz"] = hashlib.md5(blob).hexdigest()
    return sums


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve(folder: Path):
    handler = functools.partial(_Quiet, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"  # nothing listens once the socket closes


@pytest.fixture
def no_local_copy(monkeypatch):
    monkeypatch.delenv("AUTOSTRUCT_DATA", raising=False)
    monkeypatch.delenv("AUTOSTRUCT_OFFLINE", raising=False)


def test_download_from_second_mirror_then_reuse_cache(tmp_path, no_local_copy):
    sums = write_fashion_like(tmp_path / "mirror")
    cache = tmp_path / "cache"
    opts = dict(checksums=sums, cache_dir=cache, system_dirs=(), progress=False, val_size=10)
    with serve(tmp_path / "mirror") as url:
        data = load_dataset("fashion-mnist", mirrors=[closed_port_url(), url], **opts)
    assert (len(data.train), len(data.val), len(data.test), data.image_size) == (20, 10, 10, 28)
    assert sorted(p.name for p in cache.iterdir()) == sorted(sums)  # no temp files left
    # Served from the cache now: the mirrors are gone.
    again = load_dataset("fashion-mnist", mirrors=[closed_port_url()], **opts)
    assert again.train.x.shape == data.train.x.shape


def test_download_over_file_urls(tmp_path, no_local_copy):
    sums = write_fashion_like(tmp_path / "mirror")
    got = download_files(sums, tmp_path / "dest", [(tmp_path / "mirror").as_uri()], progress=True)
    assert sorted(got) == sorted(sums) and all(p.is_file() for p in got.values())


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, no_local_copy):
    sums = write_fashion_like(tmp_path / "mirror")
    bad = {name: "0" * 32 for name in sums}
    with serve(tmp_path / "mirror") as url, pytest.raises(AutostructError) as info:
        load_dataset(
            "fashion-mnist",
            mirrors=[url],
            checksums=bad,
            cache_dir=tmp_path / "cache",
            system_dirs=(),
            progress=False,
        )
    message = str(info.value)
    assert "download failed" in message and "checksum mismatch" in message
    assert "sudo apt-get install dataset-fashion-mnist" in message and "AUTOSTRUCT_DATA" in message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_unreachable_mirrors_and_offline_give_install_instructions(tmp_path, no_local_copy, monkeypatch):
    with pytest.raises(AutostructError, match=r"download failed.*apt-get install dataset-fashion-mnist"):
        load_dataset(
            "fashion-mnist", mirrors=[closed_port_url()], cache_dir=tmp_path, system_dirs=(), progress=False
        )
    with pytest.raises(
        AutostructError, match=r"downloads are off.*apt-get install dataset-fashion-mnist.*--data-root"
    ):
        load_dataset("fashion-mnist", download=False, cache_dir=tmp_path, system_dirs=())
    monkeypatch.setenv("AUTOSTRUCT_OFFLINE", "1")
    with pytest.raises(AutostructError, match="downloads are off"):
        load_dataset("fashion-mnist", cache_dir=tmp_path, system_dirs=())
    with pytest.raises(DownloadError) as info:
        download_files({"x.gz": None}, tmp_path / "d", [closed_port_url(), closed_port_url()], progress=False)
    assert len(info.value.failures) == 2


def test_explicit_root_and_env_var_are_searched(tmp_path, no_local_copy, monkeypatch):
    with pytest.raises(AutostructError, match=r"Fashion-MNIST files not found in .*Leave the root out"):
        load_dataset("fashion-mnist", root=tmp_path)
    write_fashion_like(tmp_path / "data" / "fashion-mnist")
    assert len(load_dataset("fashion-mnist", root=tmp_path / "data", val_size=0).train) == 30
    monkeypatch.setenv("AUTOSTRUCT_DATA", str(tmp_path / "data"))
    assert len(load_dataset("fashion-mnist", val_size=0, system_dirs=(), download=False).test) == 10
