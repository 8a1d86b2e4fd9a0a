"""Official checkpoints: every accepted file format, torch.hub's cache and its hash checks, ``pretrained=``
through adaptconv's and timm's factories, adaptation to other heads and inputs, clear errors, and the official
key lists.

Everything is built locally (no network): a model with randomised weights is saved in the official layout,
then loaded into a freshly built model, whose logits must be bit-identical to the saved model's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
import torch.nn as nn
from helpers import SHARED, randomize_norms
from timm.models import adapt_input_conv
from torch import Tensor

import adaptconv
from adaptconv import CheckpointError, load_official_checkpoint, official_state_dict
from adaptconv.models import official_key_map
from adaptconv.models._builder import STAGE_INDICES
from adaptconv.models.pretrained import PRETRAINED

STATE_DICTS = SHARED / "reference" / "state_dicts"
SMALL = ("rednet26", "scnet50")
X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------


def fresh(name: str, **kwargs) -> nn.Module:
    """A newly built model (seeded differently from the reference, so its weights differ), in eval mode."""
    torch.manual_seed(1)
    return adaptconv.create_model(name, **kwargs).eval()


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict[str, Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(after[k], before[k])]
    assert not changed, f"a failed load changed {len(changed)} tensors, e.g. {changed[:3]}"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def other_prefix(prefix: str) -> str:
    """A hex string of the same length that differs from ``prefix`` in every digit."""
    return "".join("0123456789abcdef"[(int(c, 16) + 1) % 16] for c in prefix)


@dataclasses.dataclass
class Reference:
    """A randomised model, its official-format weights and its outputs on ``X``."""

    name: str
    model: nn.Module  # eval mode; tests must not change it
    official: dict[str, Tensor]
    logits: Tensor
    features: Tensor
    _stages: list[Tensor] | None = None

    def stages(self) -> list[Tensor]:
        if self._stages is None:
            with torch.no_grad():
                self._stages = self.model.forward_intermediates(X, indices=list(STAGE_INDICES), intermediates_only=True)
        return self._stages

    def save(self, path: Path, obj: object | None = None, **kwargs) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.official if obj is None else obj, path, **kwargs)
        return path

    def assert_reproduced_by(self, model: nn.Module, forward: bool = True) -> None:
        """``model`` holds exactly our weights (every parameter and buffer) and gives exactly our logits."""
        model.eval()
        got = model.state_dict()
        assert got.keys() == self.model.state_dict().keys()
        differ = [k for k, v in self.model.state_dict().items() if not torch.equal(got[k], v)]
        assert not differ, f"{len(differ)} tensors differ from the saved ones, e.g. {differ[:3]}"
        if forward:
            with torch.no_grad():
                assert torch.equal(model(X), self.logits)


@pytest.fixture(scope="module")
def references() -> Callable[[str], Reference]:
    """``references(name)``: the reference of model ``name``, built once per module."""
    cache: dict[str, Reference] = {}

    def get(name: str) -> Reference:
        if name not in cache:
            torch.manual_seed(0)
            model = randomize_norms(adaptconv.create_model(name), X)
            with torch.no_grad():
                features = model.forward_features(X)
                logits = model.forward_head(features)
            assert torch.isfinite(logits).all() and logits.std() > 0.1  # well scaled, far from constant
            official = {k: v.clone() for k, v in official_state_dict(model).items()}
            cache[name] = Reference(name, model, official, logits, features)
        return cache[name]

    return get


@pytest.fixture
def hub_dir(tmp_path):
    """torch.hub's folder pointed at an empty temporary folder for the test, restored afterwards."""
    previous = torch.hub.get_dir()
    folder = tmp_path / "hub"
    torch.hub.set_dir(str(folder))
    try:
        yield folder
    finally:
        torch.hub.set_dir(previous)


def cached_files(hub: Path) -> list[str]:
    folder = hub / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def publish(ref: Reference, folder: Path, wrong_hash: bool = False) -> Path:
    """Save ``ref``'s official weights as ``<folder>/<name>-<sha256 prefix>.pth``, the official naming scheme
    (with ``wrong_hash``, a prefix that differs from the file's hash in every digit)."""
    tmp = ref.save(folder / "unnamed.pth")
    prefix = sha256_of(tmp)[:8]
    return tmp.rename(folder / f"{ref.name}-{other_prefix(prefix) if wrong_hash else prefix}.pth")


@pytest.fixture(scope="module")
def published(references, tmp_path_factory) -> Callable[[str], Path]:
    """``published(name)``: a file of ``name``'s reference weights, named as ``publish`` does; saved once per
    module (a scnet50 file is 100 MB), so tests must not change it."""
    folder = tmp_path_factory.mktemp("published")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = publish(references(name), folder)
        return cache[name]

    return get


# ------------------------------------------------------------------------------------------------------------
# 1. every accepted format
# ------------------------------------------------------------------------------------------------------------


def _with_module_prefix(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    return {"module." + k: v for k, v in sd.items()}


FORMATS: dict[str, Callable[[Reference], object]] = {
    "plain": lambda ref: ref.official,
    "state_dict_wrapper": lambda ref: {"state_dict": ref.official},
    "model_wrapper": lambda ref: {"model": ref.official},
    "module_prefix": lambda ref: _with_module_prefix(ref.official),
    "ddp_training_file": lambda ref: {
        "epoch": 3,
        "best_acc1": 0.5,
        "state_dict": _with_module_prefix(ref.official),
    },
    "our_key_names": lambda ref: ref.model.state_dict(),
    "mmcls": lambda ref: {
        "meta": {"mmcls_version": "0.12.0", "CLASSES": [f"class {i}" for i in range(1000)], "epoch": 130},
        "state_dict": ref.official,
    },
}
FORMAT_CASES = [(name, fmt) for name in SMALL for fmt in FORMATS if fmt != "mmcls" or name.startswith("rednet")]


@pytest.mark.parametrize("name, fmt", FORMAT_CASES)
def test_every_file_format_reproduces_outputs(references, tmp_path, name, fmt):
    ref = references(name)
    path = ref.save(tmp_path / "ckpt.pth", FORMATS[fmt](ref))
    model = fresh(name)
    assert load_official_checkpoint(model, path) is model
    ref.assert_reproduced_by(model)


def test_mmcls_file_has_the_official_layout(references):
    """The RedNet official weights are mmcls ``ImageClassifier`` files: ``backbone.*`` and ``head.fc.*``."""
    keys = list(references("rednet26").official)
    assert all(k.startswith(("backbone.", "head.fc.")) for k in keys)
    assert keys[-2:] == ["head.fc.weight", "head.fc.bias"]


def test_legacy_serialization_reproduces_outputs(references, tmp_path):
    """Files written by PyTorch < 1.6 (not zip archives), as the 2020 SCNet release may be."""
    ref = references("scnet50")
    path = ref.save(tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    ref.assert_reproduced_by(load_official_checkpoint(fresh("scnet50"), str(path)))


@pytest.mark.parametrize("names", ["official", "ours"])
@pytest.mark.parametrize("name", SMALL)
def test_in_memory_state_dict_reproduces_outputs(references, name, names):
    ref = references(name)
    sd = ref.official if names == "official" else ref.model.state_dict()
    ref.assert_reproduced_by(load_official_checkpoint(fresh(name), dict(sd)))


# ------------------------------------------------------------------------------------------------------------
# 2. file:// URLs through torch.hub's cache
# ------------------------------------------------------------------------------------------------------------


def test_file_url_is_cached_and_hash_checked(references, published, tmp_path, hub_dir):
    ref, path = references("scnet50"), published("scnet50")
    model = fresh("scnet50")
    load_official_checkpoint(model, path.as_uri())
    ref.assert_reproduced_by(model)
    cached = hub_dir / "checkpoints" / path.name
    assert cached.is_file() and sha256_of(cached) == sha256_of(path)
    # a second load is served from the cache: the file is looked up by name, wherever the URL points
    elsewhere = (tmp_path / "nowhere" / path.name).as_uri()
    ref.assert_reproduced_by(load_official_checkpoint(fresh("scnet50"), elsewhere), forward=False)


@pytest.mark.parametrize("where", ["name", "argument"])
def test_download_with_wrong_hash_is_refused_and_not_cached(references, tmp_path, hub_dir, where):
    ref = references("rednet26")
    path = publish(ref, tmp_path / "src", wrong_hash=where == "name")
    kwargs = {"sha256_prefix": other_prefix(path.stem.rsplit("-", 1)[1])} if where == "argument" else {}
    model = fresh("rednet26")
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="hash"):
        load_official_checkpoint(model, path.as_uri(), **kwargs)
    assert cached_files(hub_dir) == []
    assert_unchanged(model, before)


def test_cached_file_with_wrong_hash_is_refused(references, tmp_path, hub_dir):
    """A file put in the cache by hand is checked too (the URL's source does not even exist)."""
    cached = publish(references("rednet26"), hub_dir / "checkpoints", wrong_hash=True)
    model = fresh("rednet26")
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="SHA-256") as err:
        load_official_checkpoint(model, (tmp_path / "nowhere" / cached.name).as_uri())
    assert str(cached) in str(err.value)
    assert_unchanged(model, before)


# ------------------------------------------------------------------------------------------------------------
# 3. pretrained= through adaptconv's and timm's factories
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def published_scnet50(references, published, hub_dir, monkeypatch) -> tuple[Reference, Path]:
    """scnet50's configuration pointed at a local file:// URL holding the reference weights."""
    ref, path = references("scnet50"), published("scnet50")
    cfg = adaptconv.get_pretrained_config("scnet50")
    prefix = path.stem.rsplit("-", 1)[1]
    patched = dataclasses.replace(cfg, url=path.as_uri(), file_name=path.name, sha256_prefix=prefix)
    monkeypatch.setitem(PRETRAINED, "scnet50", patched)
    return ref, path


@pytest.mark.parametrize("factory", [adaptconv.create_model, timm.create_model], ids=["adaptconv", "timm"])
def test_pretrained_true_downloads_the_configured_url(published_scnet50, hub_dir, factory):
    ref, path = published_scnet50
    torch.manual_seed(1)
    ref.assert_reproduced_by(factory("scnet50", pretrained=True))
    assert cached_files(hub_dir) == [path.name]


@pytest.mark.parametrize("how", ["adaptconv_str", "timm_pathlike", "timm_overlay"])
@pytest.mark.parametrize("name", SMALL)
def test_pretrained_local_file(references, published, hub_dir, name, how):
    ref, path = references(name), published(name)
    torch.manual_seed(1)
    if how == "adaptconv_str":
        model = adaptconv.create_model(name, pretrained=str(path))
    elif how == "timm_pathlike":
        model = timm.create_model(name, pretrained=path)
    else:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    ref.assert_reproduced_by(model)
    assert cached_files(hub_dir) == []  # a local file is read where it is


# ------------------------------------------------------------------------------------------------------------
# 4. adapting to another head, other input channels, feature extraction
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL)
def test_pretrained_with_other_num_classes_loads_the_backbone(references, published, name):
    ref = references(name)
    model = fresh(name, pretrained=published(name), num_classes=10)
    assert model.get_classifier().out_features == 10
    with torch.no_grad():
        assert torch.equal(model.forward_features(X), ref.features)
        assert model.forward_head(ref.features).shape == (2, 10)


@pytest.mark.parametrize("name", SMALL)
def test_pretrained_with_one_input_channel_adapts_the_first_conv(references, published, name):
    ref = references(name)
    model = fresh(name, pretrained=published(name), in_chans=1)
    first = adaptconv.get_pretrained_config(name).first_conv + ".weight"
    ours, theirs = model.state_dict(), ref.model.state_dict()
    assert ours[first].shape[1] == 1
    assert torch.equal(ours[first], adapt_input_conv(1, theirs[first]))
    assert all(torch.equal(ours[k], v) for k, v in theirs.items() if k != first)
    # the summed filters see a grey image as the RGB filters see it in three channels
    grey = X.mean(1, keepdim=True)
    with torch.no_grad():
        stem, expected = model.conv1(grey), ref.model.conv1(grey.expand(-1, 3, -1, -1))
        out = model(grey)
    torch.testing.assert_close(stem, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", SMALL)
def test_pretrained_features_only_gives_the_stage_outputs(references, published, name):
    ref = references(name)
    model = fresh(name, pretrained=published(name), features_only=True)
    assert model.feature_info.channels() == [256, 512, 1024, 2048]
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    with torch.no_grad():
        feats = model(X)
    expected = ref.stages()
    assert [f.shape for f in feats] == [e.shape for e in expected]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    assert all(torch.equal(f, e) for f, e in zip(feats, expected, strict=True))
    assert torch.equal(feats[-1], ref.features)


# ------------------------------------------------------------------------------------------------------------
# 5-6. weights that cannot be downloaded
# ------------------------------------------------------------------------------------------------------------


def test_rednet_pretrained_true_asks_for_the_file_then_reads_it_from_the_cache(references, hub_dir):
    ref = references("rednet26")
    target = hub_dir / "checkpoints" / "rednet26.pth"
    with pytest.raises(CheckpointError) as err:
        adaptconv.create_model("rednet26", pretrained=True)
    message = str(err.value)
    assert str(target) in message
    assert "pretrained='/path/to" in message
    assert adaptconv.get_pretrained_config("rednet26").download_page in message

    ref.save(target, FORMATS["mmcls"](ref))
    torch.manual_seed(1)
    ref.assert_reproduced_by(adaptconv.create_model("rednet26", pretrained=True))


@pytest.mark.parametrize("via", ["load_official_checkpoint", "pretrained_true"])
def test_unreachable_url_fails_and_says_where_to_put_the_file(hub_dir, monkeypatch, via):
    url = "http://127.0.0.1:9/scnet50-12345678.pth"  # the discard port: nothing listens there
    cfg = adaptconv.get_pretrained_config("scnet50")
    monkeypatch.setitem(
        PRETRAINED,
        "scnet50",
        dataclasses.replace(cfg, url=url, file_name="scnet50-12345678.pth", sha256_prefix=None),
    )
    model = fresh("scnet50")
    with pytest.raises(CheckpointError) as err:
        if via == "load_official_checkpoint":
            load_official_checkpoint(model, url)
        else:
            adaptconv.create_model("scnet50", pretrained=True)
    message = str(err.value)
    assert url in message and "by hand" in message
    assert str(hub_dir / "checkpoints" / "scnet50-12345678.pth") in message
    assert cached_files(hub_dir) == []


# ------------------------------------------------------------------------------------------------------------
# 7. files that cannot or must not be read
# ------------------------------------------------------------------------------------------------------------


class PickledNote:
    """An arbitrary Python object: only full (unsafe) unpickling can rebuild it."""

    def __init__(self) -> None:
        self.text = "trained for 100 epochs"


def test_file_needing_unsafe_unpickling_is_refused(references, tmp_path):
    ref = references("rednet26")
    path = ref.save(tmp_path / "pickled.pth", {"state_dict": ref.official, "obj": PickledNote()})
    model = fresh("rednet26")
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="weights_only") as err:
        load_official_checkpoint(model, path)
    assert "unsafe" in str(err.value)
    assert_unchanged(model, before)


def _truncated(ref: Reference, path: Path) -> None:
    data = ref.save(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(ref: Reference, path: Path) -> None:
    path.write_bytes(b"")


def _html_page(ref: Reference, path: Path) -> None:
    """What a browser saves from a share link that needs a log-in (RedNet's weights are behind such links)."""
    path.write_bytes(b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body></body></html>\n")


def _not_a_state_dict(ref: Reference, path: Path) -> None:
    ref.save(path, [1, 2, 3])


def _mixed_values(ref: Reference, path: Path) -> None:
    ref.save(path, {**ref.official, "epoch": 130})


@pytest.mark.parametrize(
    "make, match",
    [
        (_truncated, "not a readable PyTorch checkpoint"),
        (_empty, "not a readable PyTorch checkpoint"),
        (_html_page, None),  # the message is checked by a test below
        (_not_a_state_dict, "does not hold a state_dict"),
        (_mixed_values, "does not hold a state_dict"),
        (None, "not found"),
    ],
    ids=["truncated", "empty", "html_page", "not_a_state_dict", "mixed_values", "missing_path"],
)
def test_unreadable_file_raises_checkpoint_error(references, tmp_path, make, match):
    ref = references("rednet26")
    path = tmp_path / "bad.pth"
    if make is not None:
        make(ref, path)
    model = fresh("rednet26")
    before = snapshot(model)
    with pytest.raises(CheckpointError, match=match):
        load_official_checkpoint(model, path)
    assert_unchanged(model, before)


def test_text_file_raises_checkpoint_error(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"this is not a checkpoint\n" * 100)
    with pytest.raises(CheckpointError):
        load_official_checkpoint(fresh("rednet26"), path)


def test_html_page_is_not_called_a_pickle_with_objects(references, tmp_path):
    path = tmp_path / "rednet26.pth"
    _html_page(references("rednet26"), path)
    with pytest.raises(CheckpointError) as err:
        load_official_checkpoint(fresh("rednet26"), path)
    assert "unsafe" not in str(err.value) and "weights_only=False" not in str(err.value)


# ------------------------------------------------------------------------------------------------------------
# 8. checkpoints that do not fit
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scnet101() -> nn.Module:
    torch.manual_seed(0)
    return adaptconv.create_model("scnet101").eval()


@pytest.mark.parametrize(
    "source, target, words",
    [
        ("scnet101", "scnet50", ["unexpected"]),
        ("scnet50", "scnet101", ["missing"]),
        ("rednet26", "scnet50", ["missing", "unexpected"]),
    ],
)
def test_other_architecture_is_reported_in_grouped_lines(references, scnet101, source, target, words):
    sd = official_state_dict(scnet101) if source == "scnet101" else references(source).official
    model = scnet101 if target == "scnet101" else fresh(target)
    before = snapshot(model)
    with pytest.raises(CheckpointError) as err:
        load_official_checkpoint(model, sd)
    message = str(err.value)
    for word in words:
        assert f"\n{word} (" in message
    assert "*" in message
    if source.startswith("scnet"):
        assert "layer3.*." in message  # 23 vs 6 blocks in stage 3, one line per tensor pattern
    assert len(message.splitlines()) < 40
    assert_unchanged(model, before)


def _official_key(ref: Reference) -> tuple[str, str]:
    """(official key, our key) of a 4-d weight in stage 2."""
    ours = {official: key for key, official in official_key_map(ref.model).items()}
    official = next(k for k, v in ref.official.items() if "layer2.0." in k and v.ndim == 4)
    return official, ours[official]


@pytest.mark.parametrize("name", SMALL)
def test_wrong_shape_names_the_key_and_both_shapes(references, name):
    ref = references(name)
    official, ours = _official_key(ref)
    shape = tuple(ref.official[official].shape)
    bad_shape = (shape[0] + 1, *shape[1:])
    sd = {**ref.official, official: torch.zeros(bad_shape)}
    model = fresh(name)
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="wrong shape") as err:
        load_official_checkpoint(model, sd)
    lines = [line for line in str(err.value).splitlines() if ours in line]
    assert lines, str(err.value)
    assert str(bad_shape) in lines[0] and str(shape) in lines[0]
    assert_unchanged(model, before)


@pytest.mark.parametrize("name", SMALL)
def test_missing_key_is_named(references, name):
    ref = references(name)
    official, ours = _official_key(ref)
    sd = {k: v for k, v in ref.official.items() if k != official}
    model = fresh(name)
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="missing") as err:
        load_official_checkpoint(model, sd)
    assert ours in str(err.value)
    assert "unexpected" not in str(err.value)
    assert_unchanged(model, before)


# ------------------------------------------------------------------------------------------------------------
# 9. the official key lists
# ------------------------------------------------------------------------------------------------------------

needs_reference = pytest.mark.skipif(
    not STATE_DICTS.is_dir(), reason=f"the official key lists are not on this machine ({STATE_DICTS})"
)


@needs_reference
def test_reference_lists_every_model():
    assert sorted(p.stem for p in STATE_DICTS.glob("*.json")) == sorted(adaptconv.list_models())


@needs_reference
@pytest.mark.parametrize("name", adaptconv.list_models())
def test_official_state_dict_matches_the_reference(name):
    reference = json.loads((STATE_DICTS / f"{name}.json").read_text())
    assert reference["model"] == name
    model = adaptconv.create_model(name)
    mapping = official_key_map(model)
    assert len(set(mapping.values())) == len(mapping)  # one official key for each of ours
    assert [[k, list(v.shape)] for k, v in official_state_dict(model).items()] == reference["keys"]
    assert sum(p.numel() for p in model.parameters()) == reference["num_params"]


# ------------------------------------------------------------------------------------------------------------
# a URL the user gives is not the official file
# ------------------------------------------------------------------------------------------------------------


def test_explicit_url_is_not_cached_as_the_official_file(references, tmp_path, hub_dir):
    ref = references("rednet26")
    path = ref.save(tmp_path / "src" / "my-finetuned.pth")
    adaptconv.create_model("rednet26", pretrained=path.as_uri())
    assert "rednet26.pth" not in cached_files(hub_dir)


def test_model_without_released_weights_says_so():
    with pytest.raises(CheckpointError, match="released no pretrained weights"):
        adaptconv.create_model("scnet101_v1d", pretrained=True)
