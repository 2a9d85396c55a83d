"""Type stubs for `lab._lab`, the native half of the package (checked by mypy.stubtest)."""

from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union, final

from typing_extensions import disjoint_base

__all__ = [
    "__version__",
    "ATTR_SOURCE",
    "ATTR_ARGV",
    "ATTR_USER",
    "ATTR_HOST",
    "ATTR_PID",
    "ATTR_PYTHON_VERSION",
    "ATTR_PYTHON_EXECUTABLE",
    "ATTR_CWD",
    "ATTR_LAB_VERSION",
    "ATTR_DATASET",
    "ATTR_LAUNCH",
    "ATTR_GIT_COMMIT",
    "ATTR_GIT_BRANCH",
    "ATTR_GIT_DIRTY",
    "ATTR_PACKAGES",
    "ATTR_WRITER",
    "ATTR_GROUP",
    "ATTR_PARENT",
    "ATTR_NAME",
    "ATTR_NOTE",
    "LabError",
    "NotAProjectError",
    "RunNotFoundError",
    "AmbiguousRunError",
    "NoActiveRunError",
    "RunEndedError",
    "ModelNotFoundError",
    "StorageError",
    "ServerError",
    "RunHandle",
    "ExperimentCore",
    "start_run",
    "wait_for_background",
    "finish_uploads",
    "check_name",
    "check_key",
    "check_text",
    "after_fork_in_child",
    "list_runs",
    "select_runs",
    "Listing",
    "get_run",
    "edit_run",
    "metric_history",
    "console",
    "fetch_blob",
    "project_root",
]

__version__: str
# Attribute names (`lab_types::fields::attr`).
ATTR_SOURCE: str
ATTR_ARGV: str
ATTR_USER: str
ATTR_HOST: str
ATTR_PID: str
ATTR_PYTHON_VERSION: str
ATTR_PYTHON_EXECUTABLE: str
ATTR_CWD: str
ATTR_LAB_VERSION: str
ATTR_DATASET: str
ATTR_LAUNCH: str
ATTR_GIT_COMMIT: str
ATTR_GIT_BRANCH: str
ATTR_GIT_DIRTY: str
ATTR_PACKAGES: str
ATTR_WRITER: str
ATTR_GROUP: str
ATTR_PARENT: str
ATTR_NAME: str
ATTR_NOTE: str

class LabError(Exception): ...
class NotAProjectError(LabError): ...
class RunNotFoundError(LabError): ...
class AmbiguousRunError(LabError): ...
class NoActiveRunError(LabError): ...
class RunEndedError(LabError): ...
class ModelNotFoundError(LabError): ...
class StorageError(LabError): ...
class ServerError(LabError): ...

_Path = Union[str, "PathLike[str]"]

@final
class RunHandle:
    @property
    def id(self) -> str: ...
    @property
    def short_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def run_dir(self) -> str: ...
    @property
    def owned(self) -> bool: ...
    @property
    def ended(self) -> bool: ...
    def log_metric(self, key: str, value: Any, step: Optional[int] = None) -> None: ...
    def log_metrics(self, values: Mapping[str, Any], step: Optional[int] = None) -> None: ...
    def log_param(self, key: str, value: Any) -> None: ...
    def log_params(self, values: Mapping[str, Any]) -> None: ...
    def log_attr(self, key: str, value: Any) -> None: ...
    def log_features(self, names: List[Union[str, int]]) -> None: ...
    def set_tag(self, key: str, value: Any) -> None: ...
    def log_note(self, text: str) -> None: ...
    def log_artifact(self, name: str, path: _Path) -> None: ...
    def model_temp_path(self, name: str) -> str: ...
    def add_model(
        self, name: str, file: _Path, format: str, class_name: str, library: str, library_version: str
    ) -> Tuple[str, int, str]: ...
    def log_image(
        self,
        key: str,
        data: bytes,
        height: int,
        width: int,
        channels: int,
        dtype: str,
        step: Optional[int] = None,
    ) -> Tuple[str, int]: ...
    def log_png(self, key: str, data: bytes, step: Optional[int] = None) -> Tuple[str, int]: ...
    def log_table(
        self, key: str, columns: List[str], rows: List[List[Any]], step: Optional[int] = None
    ) -> Tuple[str, int]: ...
    def end(self, status: str, error: Optional[Tuple[str, str, str]] = None) -> List[str]: ...
    def start_capture(self, limit_bytes: int) -> bool: ...
    def stop_capture(self) -> None: ...

@disjoint_base
class ExperimentCore:
    def __new__(cls, *_args: Any, **_kwargs: Any) -> "ExperimentCore": ...
    @property
    def _run(self) -> Optional[RunHandle]: ...
    def _claim(self, outer: Optional[RunHandle] = None) -> None: ...
    def _attach(self, handle: RunHandle) -> None: ...
    def _release(self) -> None: ...
    def log_metric(self, key: str, value: Any, step: Optional[int] = None) -> None: ...
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None: ...

def start_run(
    experiment: str,
    attrs: Dict[str, Any],
    git_dir: Optional[_Path],
    site_dirs: List[_Path],
    system_metrics: bool = True,
    system_metrics_interval: Optional[float] = None,
) -> Tuple[RunHandle, Optional[str]]: ...
def wait_for_background() -> List[str]: ...
def finish_uploads() -> List[str]: ...
def check_name(argument: str, name: Any) -> None: ...
def check_key(argument: str, key: Any) -> None: ...
def check_text(argument: str, value: Any) -> None: ...
def after_fork_in_child() -> None: ...
def list_runs(
    experiment: Optional[str] = None,
    where: Optional[str] = None,
    sort: List[str] = ...,
    status: List[str] = ...,
    limit: Optional[int] = None,
    remote: bool = False,
    after: Optional[str] = None,
) -> List[Dict[str, Any]]: ...
def select_runs(
    experiment: Optional[str] = None,
    where: Optional[str] = None,
    sort: List[str] = ...,
    status: List[str] = ...,
    limit: Optional[int] = None,
    remote: bool = False,
    after: Optional[str] = None,
) -> Listing: ...
@final
class Listing:
    """The runs of one selection, not yet Python objects."""

    def __len__(self) -> int: ...
    @property
    def next(self) -> Optional[str]: ...
    def run(self, index: int) -> Dict[str, Any]: ...
    def columns(self) -> List[Tuple[str, Optional[str], Any]]: ...

def get_run(prefix: str, remote: bool = False) -> Dict[str, Any]: ...
def edit_run(
    run: str,
    name: Optional[str] = None,
    tags: Optional[List[Tuple[str, str]]] = None,
    untag: Optional[List[str]] = None,
    note: Optional[str] = None,
) -> Dict[str, Any]: ...
def metric_history(run_id: str, name: str, remote: bool = False) -> List[Tuple[int, int, float]]: ...
def console(run_id: str, remote: bool = False) -> List[Tuple[int, str, str]]: ...
def fetch_blob(sha256: str, path: str) -> int: ...
def project_root() -> str: ...
