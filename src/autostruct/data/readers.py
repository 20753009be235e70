"""The built-in dataset readers: fashion-mnist, digits, mnist, cifar10, cifar100, imagefolder.

Each reader finds its files, parses them (see :mod:`autostruct.data.formats`) and returns raw arrays; each
has a status function for ``autostruct info``. ``$AUTOSTRUCT_DATA`` names a data folder that holds either the
files themselves or one sub-folder per dataset (``fashion-mnist/``, ``mnist/``, ``cifar-10-batches-py/``, ...).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autostruct.data.download import DownloadError, data_cache_dir, download_files
from autostruct.data.formats import cifar_arrays, load_images, read_idx, read_pickle_batch, scan_class_folders
from autostruct.data.registry import register_dataset
from autostruct.data.types import RawData
from autostruct.errors import AutostructError

ENV_DATA = "AUTOSTRUCT_DATA"
ENV_OFFLINE = "AUTOSTRUCT_OFFLINE"

# --------------------------------------------------------------------------------------------- IDX datasets
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
#: Debian's package ``dataset-fashion-mnist`` installs the four gz files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
#: Official mirrors (Zalando Research's README): the S3 website, then the GitHub repository's data folder.
FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
#: MD5 of the official gz files, as published in the Fashion-MNIST README.
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

FASHION_MNIST_HELP = (
    "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in "
    f"{DEBIAN_FASHION_MNIST}), or put the four files {', '.join(f + '.gz' for f in IDX_FILES.values())} in a "
    f"folder and set {ENV_DATA}=FOLDER or pass --data-root FOLDER (Python: root=FOLDER). They are at "
    "https://github.com/zalandoresearch/fashion-mnist#get-the-data."
)


def _env_data_dir() -> Path | None:
    value = os.environ.get(ENV_DATA)
    return Path(value).expanduser() if value else None


def _candidates(root: Path | None, subdirs: Sequence[str]) -> list[Path]:
    """Folders to search: ``root`` and its conventional sub-folders if given (only those: an explicit root
    is authoritative), else the same under ``$AUTOSTRUCT_DATA``."""
    base = root if root is not None else _env_data_dir()
    if base is None:
        return []
    return [base, *(base / s for s in subdirs)]


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files (raw or ``.gz``) of an MNIST-style dataset in ``folder``, or ``None`` if incomplete."""
    found = {}
    for key, stem in IDX_FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _first_idx_folder(folders: Sequence[Path]) -> tuple[Path, dict[str, Path]] | None:
    for folder in folders:
        files = find_idx_files(folder)
        if files is not None:
            return folder, files
    return None


def _read_idx_dataset(files: dict[str, Path], class_names: tuple[str, ...], source: str) -> RawData:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise AutostructError(
                f"IDX files in {source} do not match: {files[split + '_x'].name} has shape {list(x.shape)} and "
                f"{files[split + '_y'].name} has {list(y.shape)}; expected images (N, H, W) and N labels."
            )
        if len(y) and int(y.max()) >= len(class_names):
            raise AutostructError(
                f"{files[split + '_y']} holds label {int(y.max())}, but this dataset has {len(class_names)} classes."
            )
    return RawData(
        train_x=arrays["train_x"][:, None],
        train_y=arrays["train_y"].astype(np.int64),
        test_x=arrays["test_x"][:, None],
        test_y=arrays["test_y"].astype(np.int64),
        class_names=class_names,
        source=source,
    )


def _fashion_folders(root: Path | None, system_dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    subdirs = ("fashion-mnist", "FashionMNIST/raw")
    if root is not None:
        return _candidates(root, subdirs)
    return [*_candidates(None, subdirs), *(Path(d) for d in system_dirs), data_cache_dir() / "fashion-mnist"]


def read_fashion_mnist(
    root: Path | None,
    *,
    download: bool | None = None,
    mirrors: Sequence[str] = FASHION_MNIST_MIRRORS,
    checksums: dict[str, str | None] | None = None,
    system_dirs: Sequence[str | os.PathLike[str]] = (DEBIAN_FASHION_MNIST,),
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> RawData:
    """Zalando's Fashion-MNIST: 60k/10k 28x28 grey images of 10 clothing classes (IDX files).

    Looked up in ``root`` if given (only there), else ``$AUTOSTRUCT_DATA`` (or its ``fashion-mnist/``),
    ``system_dirs`` (Debian's folder), and the download cache; if none has the files, they are downloaded from
    ``mirrors`` into ``cache_dir`` (default ``<data cache>/fashion-mnist``) unless ``download`` is False or
    ``$AUTOSTRUCT_OFFLINE`` is set.
    """
    folders = _fashion_folders(root, system_dirs)
    if cache_dir is not None and root is None:
        folders.append(Path(cache_dir))
    hit = _first_idx_folder(folders)
    if hit is None:
        if root is not None:
            raise AutostructError(
                f"Fashion-MNIST files not found in '{root}' (looked in {', '.join(map(str, folders))}). "
                "Leave the root out to use the installed or downloaded copy, or: " + FASHION_MNIST_HELP
            )
        if download is None:
            download = not os.environ.get(ENV_OFFLINE)
        looked = ", ".join(map(str, folders))
        if not download:
            raise AutostructError(
                f"Fashion-MNIST not found (looked in {looked}) and downloads are off. {FASHION_MNIST_HELP}"
            )
        dest = Path(cache_dir) if cache_dir is not None else data_cache_dir() / "fashion-mnist"
        try:
            download_files(
                checksums if checksums is not None else FASHION_MNIST_MD5, dest, mirrors, progress=progress
            )
        except DownloadError as exc:
            raise AutostructError(
                f"Fashion-MNIST not found (looked in {looked}) and the download failed "
                f"({'; '.join(exc.failures)}). {FASHION_MNIST_HELP}"
            ) from None
        hit = _first_idx_folder([dest])
        if hit is None:  # the checksum table named other files than the four IDX files
            raise AutostructError(f"Downloaded files in '{dest}' are not the four Fashion-MNIST IDX files.")
    folder, files = hit
    return _read_idx_dataset(files, FASHION_MNIST_CLASSES, str(folder))


def _fashion_status(root: Path | None) -> str:
    folders = _fashion_folders(root, (DEBIAN_FASHION_MNIST,))
    hit = _first_idx_folder(folders)
    if hit is not None:
        return f"found: {hit[0]}"
    if root is not None:
        return f"not in {root}; without --data-root it is looked up elsewhere or downloaded"
    if os.environ.get(ENV_OFFLINE):
        return f"not found ({ENV_OFFLINE} set, no download): sudo apt-get install dataset-fashion-mnist"
    return "not found: downloaded on first use (or: sudo apt-get install dataset-fashion-mnist)"


def _fashion_sources(
    root: Path | None,
    *,
    system_dirs: Sequence[str | os.PathLike[str]] = (DEBIAN_FASHION_MNIST,),
    cache_dir: str | os.PathLike[str] | None = None,
    **_: object,
) -> list[Path] | None:
    folders = _fashion_folders(root, system_dirs)
    if cache_dir is not None and root is None:
        folders.append(Path(cache_dir))
    hit = _first_idx_folder(folders)
    return None if hit is None else list(hit[1].values())


register_dataset("fashion-mnist", read_fashion_mnist, index=0, status=_fashion_status, sources=_fashion_sources)


MNIST_HELP = (
    "Put the four files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte (raw or .gz) in a folder and pass --data-root FOLDER (Python: root=FOLDER), or set "
    f"{ENV_DATA} to a folder that holds them in mnist/. Debian/Ubuntu: `sudo apt-get install mnist` "
    "(files in /usr/share/mnist)."
)
MNIST_SUBDIRS = ("mnist", "MNIST/raw")


def read_mnist(root: Path | None) -> RawData:
    """LeCun's MNIST: 60k/10k 28x28 grey digits (IDX files, raw or gz, from a root)."""
    folders = _candidates(root, MNIST_SUBDIRS)
    if not folders:
        raise AutostructError(f"Dataset 'mnist' is read from disk and needs a root. {MNIST_HELP}")
    hit = _first_idx_folder(folders)
    if hit is None:
        raise AutostructError(
            f"MNIST files not found (looked in {', '.join(map(str, folders))}). {MNIST_HELP}"
        )
    folder, files = hit
    return _read_idx_dataset(files, tuple(str(i) for i in range(10)), str(folder))


def _mnist_status(root: Path | None) -> str:
    folders = _candidates(root, MNIST_SUBDIRS)
    hit = _first_idx_folder(folders)
    if hit is not None:
        return f"found: {hit[0]}"
    return f"not found: needs --data-root (or {ENV_DATA}) with the MNIST IDX files"


def _mnist_sources(root: Path | None) -> list[Path] | None:
    hit = _first_idx_folder(_candidates(root, MNIST_SUBDIRS))
    return None if hit is None else list(hit[1].values())


register_dataset("mnist", read_mnist, index=2, status=_mnist_status, sources=_mnist_sources)


# ------------------------------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are counts 0..16, so uint8 is exact and gets the fast statistics path.
    x = bunch.images.astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def read_digits(root: Path | None) -> RawData:
    """scikit-learn's 8x8 digits: 1797 grey images of 10 classes, always available (no test set of its own:
    a fixed stratified 20% is carved as test)."""
    x, y = _digits_arrays()
    return RawData(x, y, None, None, tuple(str(i) for i in range(10)), source="scikit-learn load_digits")


def _digits_status(root: Path | None) -> str:
    import sklearn

    return f"built in (scikit-learn {sklearn.__version__})"


def _digits_sources(root: Path | None) -> list[Path] | None:
    # The file scikit-learn reads, found without importing scikit-learn (which actors then never need).
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    return [path] if path.is_file() else None


register_dataset("digits", read_digits, index=1, status=_digits_status, sources=_digits_sources)


# -------------------------------------------------------------------------------------------------- CIFAR
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


def _cifar_help(dirname: str, files: str) -> str:
    return (
        f"Download the 'python version' from {CIFAR_URL}, extract it (it makes {dirname}/ with {files}) and pass "
        f"--data-root to that folder or its parent (Python: root=...), or set {ENV_DATA} to the parent."
    )


def _find_cifar(root: Path | None, dirname: str, required: Sequence[str]) -> Path | None:
    for folder in _candidates(root, (dirname,)):
        if all((folder / f).is_file() for f in required):
            return folder
    return None


CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def read_cifar10(root: Path | None) -> RawData:
    """CIFAR-10: 50k/10k 32x32 colour images of 10 classes (the python pickle batches from a root)."""
    help_ = _cifar_help("cifar-10-batches-py", "data_batch_1..5 and test_batch")
    if root is None and _env_data_dir() is None:
        raise AutostructError(f"Dataset 'cifar10' is read from disk and needs a root. {help_}")
    folder = _find_cifar(root, "cifar-10-batches-py", CIFAR10_FILES)
    if folder is None:
        raise AutostructError(f"CIFAR-10 batches not found in '{root or _env_data_dir()}'. {help_}")
    parts = [cifar_arrays(read_pickle_batch(folder / f), "labels", str(folder / f)) for f in CIFAR10_FILES]
    names = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        meta = read_pickle_batch(folder / "batches.meta")
        names = tuple(_text(n) for n in meta.get("label_names", names))
    return RawData(
        train_x=np.concatenate([p[0] for p in parts[:-1]]),
        train_y=np.concatenate([p[1] for p in parts[:-1]]),
        test_x=parts[-1][0],
        test_y=parts[-1][1],
        class_names=names,
        source=str(folder),
    )


def read_cifar100(root: Path | None) -> RawData:
    """CIFAR-100: 50k/10k 32x32 colour images of 100 fine classes (the python pickles ``train``, ``test``)."""
    help_ = _cifar_help("cifar-100-python", "train, test and meta")
    if root is None and _env_data_dir() is None:
        raise AutostructError(f"Dataset 'cifar100' is read from disk and needs a root. {help_}")
    folder = _find_cifar(root, "cifar-100-python", ("train", "test"))
    if folder is None:
        raise AutostructError(f"CIFAR-100 files not found in '{root or _env_data_dir()}'. {help_}")
    train_x, train_y = cifar_arrays(read_pickle_batch(folder / "train"), "fine_labels", str(folder / "train"))
    test_x, test_y = cifar_arrays(read_pickle_batch(folder / "test"), "fine_labels", str(folder / "test"))
    names = tuple(f"class_{i}" for i in range(100))
    if (folder / "meta").is_file():
        meta = read_pickle_batch(folder / "meta")
        names = tuple(_text(n) for n in meta.get("fine_label_names", names))
    return RawData(train_x, train_y, test_x, test_y, names, source=str(folder))


def _text(value: object) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _cifar_status(dirname: str, required: Sequence[str]):  # noqa: ANN202
    def status(root: Path | None) -> str:
        folder = _find_cifar(root, dirname, required)
        if folder is not None:
            return f"found: {folder}"
        return f"not found: needs --data-root (or {ENV_DATA}) with {dirname}/ from {CIFAR_URL}"

    return status


def _cifar_sources(dirname: str, required: Sequence[str], meta: str):  # noqa: ANN202
    def sources(root: Path | None) -> list[Path] | None:
        folder = _find_cifar(root, dirname, required)
        if folder is None:
            return None
        return [folder / f for f in (*required, meta) if (folder / f).is_file()]

    return sources


register_dataset(
    "cifar10", read_cifar10, index=3, status=_cifar_status("cifar-10-batches-py", CIFAR10_FILES),
    sources=_cifar_sources("cifar-10-batches-py", CIFAR10_FILES, "batches.meta"),
)
register_dataset(
    "cifar100", read_cifar100, index=4, status=_cifar_status("cifar-100-python", ("train", "test")),
    sources=_cifar_sources("cifar-100-python", ("train", "test"), "meta"),
)


# -------------------------------------------------------------------------------------------- imagefolder
IMAGEFOLDER_HELP = (
    "Lay the images out as ROOT/train/<class>/*.png|jpg and ROOT/test/<class>/... (or ROOT/<class>/... and "
    "a test split is carved), then pass --data-root ROOT (Python: root=ROOT)."
)


def _imagefolder_layout(root: Path) -> tuple[Path, Path | None]:
    if (root / "train").is_dir():
        test = root / "test"
        return root / "train", test if test.is_dir() else None
    return root, None


def read_imagefolder(root: Path | None, *, image_size: int = 32) -> RawData:
    """Images in one folder per class, decoded to RGB and resized to ``image_size`` x ``image_size``.

    ``root/train/<class>/`` and ``root/test/<class>/`` if ``root/train`` exists (test optional), else
    ``root/<class>/``. Without a test folder a fixed stratified 20% is carved as test. Class indices follow
    the sorted folder names of the training folder. Images are resized to a square without cropping.
    """
    if root is None:
        raise AutostructError(f"Dataset 'imagefolder' needs a root. {IMAGEFOLDER_HELP}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 8 <= image_size <= 512:
        raise AutostructError(f"imagefolder image_size must be an integer in [8, 512], got {image_size!r}.")
    if not root.is_dir():
        raise AutostructError(f"Image folder '{root}' does not exist. {IMAGEFOLDER_HELP}")
    train_dir, test_dir = _imagefolder_layout(root)
    train = scan_class_folders(train_dir)
    train = {k: v for k, v in train.items() if v}
    if not train:
        raise AutostructError(
            f"No class folders with images (png, jpg, ...) in '{train_dir}'. {IMAGEFOLDER_HELP}"
        )
    names = tuple(train)
    train_x, train_y = _folder_arrays(train, names, image_size)
    test_x = test_y = None
    if test_dir is not None:
        test = {k: v for k, v in scan_class_folders(test_dir).items() if v}
        extra = sorted(set(test) - set(names))
        if extra:
            raise AutostructError(
                f"Test classes {extra} in '{test_dir}' have no training folder in '{train_dir}'. "
                "Use the same class folder names in train/ and test/."
            )
        if test:
            test_x, test_y = _folder_arrays(test, names, image_size)
    return RawData(train_x, train_y, test_x, test_y, names, source=str(root))


def _folder_arrays(folders: dict[str, list[Path]], names: tuple[str, ...], image_size: int):  # noqa: ANN202
    paths = [p for name in folders for p in folders[name]]
    labels = np.concatenate([np.full(len(folders[n]), names.index(n), dtype=np.int64) for n in folders])
    return load_images(paths, image_size), labels


def _imagefolder_status(root: Path | None) -> str:
    if root is None:
        return "needs --data-root: a folder of class folders of images"
    if not root.is_dir():
        return f"not found: {root}"
    train_dir, test_dir = _imagefolder_layout(root)
    n = sum(1 for v in scan_class_folders(train_dir).values() if v)
    if n == 0:
        return f"not an image folder: no class folders with images in {train_dir}"
    return f"found: {root} ({n} classes{', with test/' if test_dir else ''})"


def _imagefolder_sources(root: Path | None, **_: object) -> list[Path] | None:
    if root is None or not root.is_dir():
        return None
    folders = [d for d in _imagefolder_layout(root) if d is not None]
    return [p for d in folders for paths in scan_class_folders(d).values() for p in paths]


register_dataset(
    "imagefolder", read_imagefolder, index=5, status=_imagefolder_status, sources=_imagefolder_sources
)
