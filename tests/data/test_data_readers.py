"""mnist, cifar10, cifar100 and imagefolder readers on tiny files written here in the genuine formats."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from autostruct.data import RawData, dataset_status, load_dataset, register_dataset
from autostruct.data import registry as registry_module
from autostruct.data.formats import parse_idx, read_idx
from autostruct.errors import AutostructError


def write_idx(path: Path, arr: np.ndarray) -> Path:
    """IDX as on LeCun's page: 00 00 08 <ndim>, big-endian uint32 dims, unsigned bytes."""
    payload = (
        bytes([0, 0, 0x08, arr.ndim])
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + arr.astype(np.uint8).tobytes()
    )
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def make_mnist(folder: Path, n_train=40, n_test=20, gz=True, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, arr in arrays.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arr)
    return arrays


def denorm(split, data) -> np.ndarray:
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return (split.x * std + mean).round().clamp(0, 255).to(torch.uint8).numpy()


# ------------------------------------------------------------------------------------------------ IDX / MNIST
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reader_from_root_and_subfolder(tmp_path, gz):
    arrays = make_mnist(tmp_path / "mnist", gz=gz)
    for root in (tmp_path, tmp_path / "mnist"):  # the files' folder or its parent
        data = load_dataset("mnist", root=root, val_size=10)
        assert (data.num_classes, data.in_channels, data.image_size, data.dataset_id) == (10, 1, 28, 2)
        assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 20)
        assert data.val.class_counts(10).tolist() == [1] * 10
        assert np.array_equal(denorm(data.test, data)[:, 0], arrays["t10k-images-idx3-ubyte"])
        assert data.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_idx_parser_rejects_bad_files(tmp_path):
    assert parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])).tolist() == [7, 9]
    assert parse_idx(bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 1, 0])).tolist() == [256]  # big-endian int32
    with pytest.raises(AutostructError, match="not an IDX file"):
        parse_idx(b"PK\x03\x04garbage", source="x.zip")
    with pytest.raises(AutostructError, match="truncated"):
        parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), source="short")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    with pytest.raises(AutostructError, match="damaged gzip"):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(AutostructError, match="Cannot read"):
        read_idx(tmp_path / "missing.gz")


def test_idx_cache_sees_rewritten_files(tmp_path):
    path = write_idx(tmp_path / "a-idx1-ubyte", np.array([1, 2, 3], dtype=np.uint8))
    first = read_idx(path)
    assert read_idx(path) is first and not first.flags.writeable
    import os

    write_idx(path, np.array([4, 5], dtype=np.uint8))
    os.utime(path, ns=(first.size, 10**18))  # make sure the mtime differs even on coarse clocks
    assert read_idx(path).tolist() == [4, 5]


def test_mnist_missing_root_and_files(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOSTRUCT_DATA", raising=False)
    with pytest.raises(AutostructError, match=r"'mnist' is read from disk and needs a root.*--data-root"):
        load_dataset("mnist")
    with pytest.raises(AutostructError, match=r"MNIST files not found .*t10k-labels-idx1-ubyte"):
        load_dataset("mnist", root=tmp_path)
    make_mnist(tmp_path / "data" / "mnist")
    monkeypatch.setenv("AUTOSTRUCT_DATA", str(tmp_path / "data"))
    assert load_dataset("mnist", val_size=0).num_classes == 10
    assert dataset_status()["mnist"] == f"found: {tmp_path / 'data' / 'mnist'}"


def test_mnist_inconsistent_files(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(AutostructError, match=r"do not match.*t10k-images"):
        load_dataset("mnist", root=tmp_path)


# -------------------------------------------------------------------------------------------------- CIFAR
def cifar_batch(rng, n, label_key, n_classes):
    return {
        b"batch_label": b"testing batch 1 of 1",
        label_key: [int(v) for v in np.arange(n) % n_classes],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def dump(obj, path: Path, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def test_cifar10_reader(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [cifar_batch(rng, 20, b"labels", 10) for _ in range(6)]
    for i, batch in enumerate(batches[:5]):
        dump(batch, folder / f"data_batch_{i + 1}")
    dump(batches[5], folder / "test_batch", protocol=pickle.HIGHEST_PROTOCOL)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    dump({b"label_names": [n.encode() for n in names], b"num_vis": 3072}, folder / "batches.meta")

    data = load_dataset("cifar10", root=tmp_path, val_size=20, classes=[3, 5])
    assert (data.in_channels, data.image_size, data.num_classes) == (3, 32, 2)
    assert data.class_names == ("cat", "dog") and data.classes == (3, 5)
    assert len(data.train) + len(data.val) == 20 and len(data.test) == 4
    # The first kept test image is test_batch row 3 (label 3), laid out as 3x32x32 (channel planes).
    expected = batches[5][b"data"][3].reshape(3, 32, 32)
    assert np.array_equal(denorm(data.test, data)[0], expected)
    assert len(data.mean) == 3
    full = load_dataset("cifar10", root=folder, val_size=0)
    assert (len(full.train), len(full.test), full.dataset_id) == (100, 20, 3)


def test_cifar100_reader_and_missing_files(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train = cifar_batch(rng, 200, b"fine_labels", 100)
    train[b"coarse_labels"] = [v // 5 for v in train[b"fine_labels"]]
    dump(train, folder / "train")
    dump(cifar_batch(rng, 100, b"fine_labels", 100), folder / "test")
    dump({b"fine_label_names": [f"n{i}".encode() for i in range(100)]}, folder / "meta")
    data = load_dataset("cifar100", root=tmp_path, val_size=0)
    assert (data.num_classes, data.dataset_id, len(data.train), len(data.test)) == (100, 4, 200, 100)
    assert data.class_names[42] == "n42" and int(data.train.y.max()) == 99
    assert dataset_status(tmp_path)["cifar100"] == f"found: {folder}"

    (folder / "test").unlink()
    with pytest.raises(AutostructError, match=r"CIFAR-100 files not found.*cifar-100-python"):
        load_dataset("cifar100", root=tmp_path)


def test_cifar_needs_root_and_refuses_code_in_pickles(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOSTRUCT_DATA", raising=False)
    with pytest.raises(AutostructError, match=r"'cifar10' is read from disk and needs a root.*cifar\.html"):
        load_dataset("cifar10")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        dump(cifar_batch(rng, 2, b"labels", 10), folder / name)
    dump({b"data": Path("evil"), b"labels": []}, folder / "data_batch_2")  # pickles a class: refused
    with pytest.raises(AutostructError, match=r"data_batch_2' is not a CIFAR python batch.*refusing"):
        load_dataset("cifar10", root=tmp_path)


# -------------------------------------------------------------------------------------------- imagefolder
COLORS = {"cat": (255, 0, 0), "dog": (0, 255, 0), "owl": (0, 0, 255)}


def make_imagefolder(root: Path, counts: dict[str, int]) -> None:
    from PIL import Image

    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            size = (10 + i, 12)  # odd, non-square sizes: every image is resized
            if i == 1:  # a grey JPEG still comes out as RGB
                Image.new("L", size, 128).save(root / cls / f"{i}.jpg")
            else:
                Image.new("RGB", size, COLORS[cls]).save(root / cls / f"{i}.png")


def test_imagefolder_train_test_layout(tmp_path):
    make_imagefolder(tmp_path / "train", {"cat": 5, "dog": 5, "owl": 5})
    make_imagefolder(tmp_path / "test", {"cat": 2, "dog": 2, "owl": 2})
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    data = load_dataset("imagefolder", root=tmp_path, val_size=3, image_size=16)
    assert (data.num_classes, data.in_channels, data.image_size, data.dataset_id) == (3, 3, 16, 5)
    assert data.class_names == ("cat", "dog", "owl")
    assert (len(data.train), len(data.val), len(data.test)) == (12, 3, 6)
    pixels = denorm(data.test, data)
    for img, label in zip(pixels, data.test.y.tolist(), strict=True):
        colour = tuple(int(v) for v in img[:, 8, 8])
        assert colour in (COLORS[data.class_names[label]], (128, 128, 128))
    assert dataset_status(tmp_path)["imagefolder"].startswith(f"found: {tmp_path} (3 classes")


def test_imagefolder_flat_layout_carves_fixed_test(tmp_path):
    make_imagefolder(tmp_path, {"cat": 5, "dog": 5})
    a = load_dataset("imagefolder", root=tmp_path, val_size=2, seed=0)
    b = load_dataset("imagefolder", root=tmp_path, val_size=2, seed=1)
    assert a.image_size == 32 and (len(a.train), len(a.val), len(a.test)) == (6, 2, 2)
    assert sorted(a.test.y.tolist()) == [0, 1]
    assert np.array_equal(denorm(a.test, a), denorm(b.test, b))


def test_imagefolder_errors(tmp_path):
    with pytest.raises(AutostructError, match=r"'imagefolder' needs a root.*ROOT/train/<class>"):
        load_dataset("imagefolder")
    with pytest.raises(AutostructError, match=r"does not exist"):
        load_dataset("imagefolder", root=tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(AutostructError, match=r"No class folders with images"):
        load_dataset("imagefolder", root=tmp_path / "empty")
    make_imagefolder(tmp_path / "d" / "train", {"cat": 2})
    make_imagefolder(tmp_path / "d" / "test", {"dog": 1})
    with pytest.raises(AutostructError, match=r"Test classes \['dog'\].*no training folder"):
        load_dataset("imagefolder", root=tmp_path / "d")
    make_imagefolder(tmp_path / "e", {"cat": 2})
    (tmp_path / "e" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AutostructError, match=r"Cannot read image .*broken\.png"):
        load_dataset("imagefolder", root=tmp_path / "e")
    with pytest.raises(AutostructError, match=r"image_size must be an integer in \[8, 512\]"):
        load_dataset("imagefolder", root=tmp_path / "e", image_size=4)


# ------------------------------------------------------------------------------------------ user datasets
def test_register_user_dataset(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    rng = np.random.default_rng(0)

    @register_dataset("toy-scans", status=lambda root: "synthetic")
    def read_toy(root, *, size: int = 12):
        x = rng.normal(size=(60, 2, size, size)).astype(np.float32)
        return RawData(x, np.arange(60) % 3, None, None, ("a", "b", "c"), source="memory")

    data = load_dataset("toy-scans", val_size=6, size=10)
    assert 100 <= data.dataset_id < 1000 and data.in_channels == 2 and data.image_size == 10
    assert (len(data.train), len(data.val), len(data.test)) == (42, 6, 12)
    assert dataset_status()["toy-scans"] == "synthetic"
    with pytest.raises(AutostructError, match=r"has no option 'sise'. Valid options: size"):
        load_dataset("toy-scans", sise=3)
    with pytest.raises(AutostructError, match="already used by 'toy-scans'"):
        register_dataset("other", lambda root: None, index=data.dataset_id)
    with pytest.raises(
        AutostructError, match=r"index 7 of 'low' is out of range: user datasets take 100\.\.999"
    ):
        register_dataset("low", lambda root: None, index=7)
    with pytest.raises(AutostructError, match="already registered"):
        register_dataset("digits", lambda root: None)
