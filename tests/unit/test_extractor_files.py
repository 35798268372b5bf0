"""The torch-free checks on an uploaded Inception weights file, and the feature cache's files."""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from app.domain.errors import Invalid
from app.domain.extractors import REQUIRED_KEYS, inspect_torch_file, is_official
from app.persistence.feature_cache import CacheKey, FeatureCache, images_digest


def state_dict_like_inception() -> dict[str, torch.Tensor]:
    """A tiny stand-in with the key names the check looks for (the real network is 95 MB)."""
    return {key: torch.zeros(2) for key in REQUIRED_KEYS} | {
        "Mixed_6a.branch3x3.bn.running_mean": torch.ones(3)
    }


def test_a_torch_file_with_inceptions_keys_passes_in_both_formats(tmp_path):
    torch.save(state_dict_like_inception(), tmp_path / "new.pth")
    torch.save(state_dict_like_inception(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert inspect_torch_file(tmp_path / "new.pth") == "zip"
    assert inspect_torch_file(tmp_path / "old.pth") == "legacy"


class Payload:
    """Unpickling this would call os.system: a weights file must never need it."""

    def __reduce__(self):
        return (os.system, ("echo owned",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"just some text, not weights", "not a PyTorch weights file"),
        (b"PK\x03\x04 a broken zip", "damaged or not a PyTorch"),
        ("resnet", "not the Inception-v3 state dict"),
        ("payload", "refers to code besides tensors"),
        ("zip-without-pickle", "no single data.pkl"),
    ],
)
def test_anything_else_is_refused(tmp_path, content, message):
    path = tmp_path / "upload.pth"
    if content == "resnet":
        torch.save({"conv1.weight": torch.zeros(2), "fc.weight": torch.zeros(2)}, path)
    elif content == "payload":
        with zipfile.ZipFile(path, "w") as z:  # laid out like torch.save's zip, with a hostile pickle
            z.writestr("archive/data.pkl", pickle.dumps({**dict.fromkeys(REQUIRED_KEYS), "x": Payload()}, 2))
    elif content == "zip-without-pickle":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("notes.txt", "hello")
    else:
        path.write_bytes(content)
    with pytest.raises(Invalid, match=message):
        inspect_torch_file(path)


class Layer:
    """A torch module class where a tensor belongs: the opcode check lets torch names through."""

    def __reduce__(self):
        return (torch.nn.Linear, (1, 1))


@pytest.mark.parametrize(("payload", "named"), [(Payload, "posix.system"), (Layer, "Linear")])
def test_loading_a_hostile_file_names_what_it_holds_and_never_advises_trusting_it(tmp_path, payload, named):
    from app.ml.metrics.inception import load_inception

    path = tmp_path / "evil.pth"
    torch.save({**state_dict_like_inception(), "x": payload()}, path)
    with pytest.raises(ValueError, match="tensors only") as refused:
        load_inception(path.read_bytes())
    message = str(refused.value)
    assert named in message and "refers to code besides tensors" in message
    assert "weights_only" not in message and "safe_globals" not in message and "trust" not in message


def test_official_means_the_published_hash_prefix():
    assert is_official("6726825d" + "0" * 56) and not is_official("0" * 64)


def key(set_id: int = 1, shas: tuple[str, ...] = ("a" * 64, "b" * 64), extractor: str = "e" * 64) -> CacheKey:
    return CacheKey(set_id, images_digest(shas), 299, "grey to RGB, TF bilinear", extractor)


def test_feature_cache_round_trip_and_keys(tmp_path):
    cache = FeatureCache(tmp_path)
    features = np.arange(12, dtype=np.float32).reshape(2, 6)
    assert cache.get(key()) is None
    path = cache.put(key(), features)
    got = cache.get(key())
    assert got is not None and got.dtype == np.float32 and np.array_equal(got, features)
    # Another order of images, another extractor or another set: another entry.
    assert cache.get(key(shas=("b" * 64, "a" * 64))) is None
    assert cache.get(key(extractor="f" * 64)) is None and cache.get(key(set_id=2)) is None
    # Only the finished file is left in the folder (the write went through a renamed temporary file).
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_damaged_or_misplaced_entry_is_a_miss(tmp_path):
    cache = FeatureCache(tmp_path)
    path = cache.put(key(), np.ones((2, 3)))
    other = cache.path(key(extractor="f" * 64))
    other.write_bytes(path.read_bytes())  # an entry whose stored key is not the one asked for
    assert cache.get(key(extractor="f" * 64)) is None
    path.write_bytes(path.read_bytes()[:50])  # truncated
    assert cache.get(key()) is None
