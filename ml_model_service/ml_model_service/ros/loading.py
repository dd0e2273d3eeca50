"""A model built from node parameters, within the folders and servers they allow (both nodes load models so)."""

from __future__ import annotations

from ..core.loading.model import Model
from ..core.loading.trust import ModelPolicy
from ..core.settings.typed import ModelSettings


def start_policy(s: ModelSettings) -> ModelPolicy:
    """The folders and servers a node's start-up settings allow (`allowed_paths`, else the bundled models and
    `model_repository`; `allowed_servers` and the start-up model_path's server). A node builds it once, so that
    a caller who changes `model_repository` at run time cannot widen the folders."""
    return ModelPolicy.at_start(s.model_path, s.allowed_paths, s.model_repository, s.allowed_servers)


def load_model(
    s: ModelSettings,
    model_path: str | None = None,
    label_path: str | None = None,
    *,
    policy: ModelPolicy,
    one_thread: bool = False,
) -> Model:
    """A Model built from a node's settings, files only from `policy`'s folders and models on inference servers
    (`grpc://`, `http://`) only from its servers. `one_thread`: when `num_threads` is 0 (automatic), one thread a
    call (a multi-camera node runs one call per core at once: ros/vision/driver.py). Raises ModelLoadError
    (TrustError for a refused file), OSError or ValueError."""
    repository = s.model_repository or None
    if repository is not None:
        policy.check_folder(repository)  # a repository outside the allowed folders is refused
    return Model(
        s.model_path if model_path is None else model_path,
        s.label_path if label_path is None else label_path,
        repository=repository,
        backend=s.backend,
        providers=list(s.execution_providers),
        num_threads=s.num_threads or (1 if one_thread else 0),
        policy=policy,
        server_timeout=s.server_timeout,
        pin_threads=s.pin_threads,
    )
