"""A model built from node parameters, within the folders and servers they allow (both nodes load models so)."""

from __future__ import annotations

from ..core.loading.model import Model
from ..core.loading.trust import ModelPolicy
from ..core.settings.tables import default_of, value_of


def load_model(
    params: dict, model_path: str | None = None, label_path: str | None = None, *, policy: ModelPolicy | None = None
) -> Model:
    """A Model built from node parameters (shared with the vision node's in-process mode).

    Files load only from the allowed folders: `policy`, else the one `params` describe
    (`allowed_paths`; empty = the bundled models and `model_repository`; models on inference servers
    (`grpc://`, `http://`) only from `allowed_servers` or the start-up model_path's server). A node should build its
    policy once at start-up (`ModelPolicy.from_params`) and pass it, so that a caller who changes
    `model_repository` at run time cannot widen the folders. Raises ModelLoadError (TrustError for a
    refused file), OSError or ValueError."""
    policy = policy or ModelPolicy.from_params(params)
    repository = params.get("model_repository") or None
    if repository is not None:
        policy.check_folder(repository)  # a repository outside the allowed folders is refused
    return Model(
        params["model_path"] if model_path is None else model_path,
        params["label_path"] if label_path is None else label_path,
        repository=repository,
        backend=params["backend"],
        providers=params["execution_providers"],
        # a multi-camera node runs one call per core at once (ros/vision/driver.py): each call on one thread
        num_threads=params["num_threads"] or (1 if params.get("cameras") else 0),
        policy=policy,
        server_timeout=float(params.get("server_timeout") or default_of("server_timeout")),
        pin_threads=bool(value_of(params, "pin_threads")),
    )
