"""The rendered structure-rich validation pages (repsr.data.synthetic)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from repsr.data.audit import audit_image
from repsr.data.synthetic import KINDS, render, write_set


def test_a_page_depends_only_on_kind_seed_and_size():
    a = render("text", 3, (96, 72))
    assert a.shape == (72, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render("text", 3, (96, 72)))
    assert not np.array_equal(a, render("text", 4, (96, 72)))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind 'photo'"):
        render("photo", 0)


def test_every_kind_is_structure_rich_and_antialiased(tmp_path):
    """More strong edges than a typical training photo (median edge density ~0.05), yet not aliased: the
    supersampled drawing leaves intermediate grey levels on the edges, which a jagged 1x drawing would not."""
    paths = write_set(tmp_path / "Synthetic", per_kind=1, size=(240, 180))
    assert [p.stem for p in paths] == [f"{k}-0" for k in KINDS]
    for path in paths:
        audit = audit_image(path)
        assert audit.edge_density > 0.05, path.name
        gray = np.asarray(Image.open(path).convert("L"))
        assert len(np.unique(gray)) > 32, path.name


def test_training_pages_take_other_seeds_than_the_validation_pages(tmp_path):
    val = write_set(tmp_path / "val", per_kind=1, size=(96, 72))
    train = write_set(tmp_path / "train", per_kind=2, size=(96, 72), first_seed=1000)
    assert [p.name for p in train[:2]] == ["text-1000.png", "text-1001.png"]
    val_pixels = [np.asarray(Image.open(p)) for p in val]
    for path in train:
        assert not any(np.array_equal(np.asarray(Image.open(path)), v) for v in val_pixels), path.name
