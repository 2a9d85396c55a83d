"""Reading runs back: :func:`runs`, :func:`get_run`, :func:`load_model`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from lab import _lab
from lab._lab import LabError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any, Dict, List, Optional, Tuple, Union

__all__ = ["LogLine", "ModelIntegrityError", "Run", "get_run", "load_model", "runs"]


class ModelIntegrityError(LabError):
    """A model file does not match the SHA-256 recorded when it was logged."""


def _time(nanos: "Optional[int]") -> "Optional[datetime]":
    if nanos is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc)


class LogLine(NamedTuple):
    """One line a run printed (see :meth:`Run.logs`)."""

    #: When the line was read, in seconds since the Unix epoch (UTC).
    time: float
    #: ``"stdout"``, ``"stderr"``, or ``"lab"`` for the note of a cut.
    stream: str
    #: The line, without its line ending.
    text: str


class _Tags(dict):
    """A run's tags as ``Run.tags`` gives them: a dict (``json.dumps`` and
    ``dict(...)`` take it) that refuses changes in place, which would change
    nothing stored; assigning ``run.tags = {...}`` does."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("`Run.tags` is read-only: assign a dict to `run.tags` to change the run's tags")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> "tuple":
        # Pickled (and copied) as the plain dict it reads as.
        return (dict, (dict(self),))


class Run:
    """One recorded run, as the project's index knows it.

    Attributes mirror what the run recorded; ``params`` hold the latest value
    of each parameter and ``metrics`` the last value of each metric. Runs from
    :func:`runs` carry what a listing needs; the rest (``attrs``, ``argv``,
    ``packages``, ``artifacts``, ``models``) is read on first use.
    """

    # A run from `runs()` not read yet: its listing and its place there.
    _listing: "Tuple[_lab.Listing, int]"

    def __init__(self, data: "Dict[str, Any]") -> None:
        self._fill(data)

    @classmethod
    def _listed(cls, listing: "_lab.Listing") -> "List[Run]":
        """The runs of ``listing``, each holding only its place there: its
        fields are converted the first time one is read (``__getattr__``),
        so a listing of thousands of runs nobody looks into costs little."""
        new = object.__new__
        found = []
        for i in range(len(listing)):
            run = new(cls)
            run._listing = (listing, i)
            found.append(run)
        return found

    def _fill(self, data: "Dict[str, Any]") -> None:
        self._data = data
        self._complete: "Optional[Dict[str, Any]]" = data if data["full"] else None
        #: Whether the run was read from the team server (``remote=True``).
        self.remote: bool = data["remote"]
        self._init_all(data)
        if self.remote and not data["full"]:
            # A server's listing carries less than a local one: the fields
            # it lacks are read with the rest of the run on first use
            # (``__getattr__``).
            for name in Run._NOT_LISTED:
                self.__dict__.pop(name, None)

    # Fields a server's listing does not carry.
    _NOT_LISTED = frozenset(
        ["dataset", "python_version", "git_commit", "git_dirty", "git_branch", "features", "error", "damage", "parent"]
    )

    def __getattr__(self, name: str) -> "Any":
        # Only called for an attribute not set: every field of a run from
        # `runs()` not yet read, and those a server's listing lacks.
        self._read_listed()
        fields = self.__dict__
        if name in fields:
            return fields[name]
        if name in Run._NOT_LISTED and fields.get("remote"):
            self._init_all(self._all())
            return fields[name]
        raise AttributeError(f"'Run' object has no attribute '{name}'")

    def _read_listed(self) -> None:
        """Converts the fields of a run from `runs()`, if not yet done."""
        fields = self.__dict__
        place = fields.get("_listing")
        if place is not None:
            listing, i = place
            # What was assigned to the run before stays, as it would have
            # on a run read whole.
            assigned = {k: v for k, v in fields.items() if k != "_listing"}
            self._fill(listing.run(i))
            fields.update(assigned)
            # Filled, then marked so: another thread reading a field at the
            # same time finds it set, or fills it again alike.
            fields.pop("_listing", None)

    def __getstate__(self) -> "Dict[str, Any]":
        # Pickled (and copied) with every field read, as a run read whole
        # is: the listing it came from stays in this process.
        self._read_listed()
        return dict(self.__dict__)

    def __dir__(self) -> "List[str]":
        self._read_listed()
        return list(super().__dir__())

    def _init_all(self, data: "Dict[str, Any]") -> None:
        attrs = data["attrs"]
        self.id: str = data["id"]
        self.short_id: str = data["short_id"]
        self.experiment: str = data["experiment"]
        self.status: str = data["status"]
        self.start_time = _time(data["start_time"])
        self.end_time = _time(data["end_time"])
        self.source: "Optional[str]" = attrs.get(_lab.ATTR_SOURCE)
        self.user: "Optional[str]" = attrs.get(_lab.ATTR_USER)
        self.host: "Optional[str]" = attrs.get(_lab.ATTR_HOST)
        self.dataset: "Any" = attrs.get(_lab.ATTR_DATASET)
        self.python_version: "Optional[str]" = attrs.get(_lab.ATTR_PYTHON_VERSION)
        self.git_commit: "Optional[str]" = attrs.get(_lab.ATTR_GIT_COMMIT)
        self.git_dirty: "Optional[bool]" = attrs.get(_lab.ATTR_GIT_DIRTY)
        self.git_branch: "Optional[str]" = attrs.get(_lab.ATTR_GIT_BRANCH)
        #: The group the run belongs to (the runs of one sweep), or None.
        self.group: "Optional[str]" = attrs.get(_lab.ATTR_GROUP)
        #: The id of the run this one was started inside, or None.
        self.parent: "Optional[str]" = attrs.get(_lab.ATTR_PARENT)
        self.features: "List[Union[str, int]]" = data["features"]
        self.params: "Dict[str, Any]" = data["params"]
        #: Parameters whose value was no plain Python value and was stored as its ``str()``.
        self.stringified_params: "frozenset[str]" = frozenset(data["stringified_params"])
        # Each metric is a tuple (name, last, last_step, min, max, count).
        self.metrics: "Dict[str, float]" = {m[0]: m[1] for m in data["metrics"]}
        self._name: str = data["name"]
        self._tags: "Dict[str, str]" = data["tags"]
        self.path: str = os.fspath(data["run_dir"])
        error = data["error"]
        self.error: "Optional[Dict[str, str]]" = (
            None
            if error is None
            else {"type": error["type"], "message": error["message"], "traceback": error["traceback"]}
        )
        self.damage: "Optional[str]" = data["damage"]

    @property
    def name(self) -> str:
        """The run's readable name (given at start, renamed, or generated like
        ``brisk-otter-4821``). Assigning renames the run, in any state."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"`name` must be a string: got {type(value).__name__} {value!r}")
        self._edit(name=value)

    @property
    def tags(self) -> "Mapping[str, str]":
        """The run's tags, read-only: assign a dict to replace them (tags it
        lacks are removed), in any state of the run."""
        return _Tags(self._tags)

    @tags.setter
    def tags(self, value: "Mapping[str, Any]") -> None:
        if not isinstance(value, Mapping):
            raise TypeError(f"`tags` must be a dict of str to str: got {type(value).__name__} {value!r}")
        new = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"`tags` keys must be strings: got {type(k).__name__} {k!r}")
            new[k] = v if isinstance(v, str) else str(v)
        gone = [k for k in self._tags if k not in new]
        self._edit(tags=list(new.items()), untag=gone)

    @property
    def note(self) -> str:
        """The run's note, Markdown (``""`` when it has none). Assigning
        replaces it, in any state of the run."""
        return self._all()["note"]

    @note.setter
    def note(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"`note` must be a string: got {type(value).__name__} {value!r}")
        self._edit(note=value)

    def _edit(self, **changes: "Any") -> None:
        if self.remote:
            raise LabError(
                f"run `{self.short_id}` was read from the team server, which this version cannot edit"
                "\n\nhint: edit it in the project it was recorded in (`lab.get_run(...)`), then push or sync it"
            )
        data = _lab.edit_run(self.id, **changes)
        # In team mode the edit is on its way to the server: the process
        # waits for it at exit, as for a run's upload.
        from lab.experiment import _register_exit_wait

        _register_exit_wait()
        self._data = data
        self._complete = data
        self._init_all(data)

    def _all(self) -> "Dict[str, Any]":
        """Everything about the run, read once when first needed."""
        if self._complete is None:
            self._complete = _lab.get_run(self.id, self.remote)
        return self._complete

    @property
    def metric_summaries(self) -> "Dict[str, Dict[str, Any]]":
        """Per metric: ``last``, ``last_step``, ``min``, ``max`` (NaN ignored) and ``count``."""
        # A server's listing has each metric's last value only.
        metrics = self._all()["metrics"] if self.remote else self._data["metrics"]
        return {
            name: {"last": last, "last_step": step, "min": lo, "max": hi, "count": count}
            for name, last, step, lo, hi, count in metrics
        }

    @property
    def attrs(self) -> "Dict[str, Any]":
        """Every attribute the run recorded (``source``, ``argv``, ``packages``, ``writer``, ...)."""
        return self._all()["attrs"]

    @property
    def argv(self) -> "List[str]":
        """The script's arguments."""
        return self.attrs.get(_lab.ATTR_ARGV, [])

    @property
    def packages(self) -> "List[str]":
        """The installed distributions, as ``name==version``."""
        return self.attrs.get(_lab.ATTR_PACKAGES, [])

    @property
    def artifacts(self) -> "Dict[str, str]":
        """Artifact name to its path in the store, for those copied in."""
        return {a["name"]: os.path.join(self.path, a["path"]) for a in self._all()["artifacts"] if a["path"]}

    @property
    def models(self) -> "Dict[str, Dict[str, Any]]":
        """Model name to its metadata (``path``, ``format``, ``class``, ``library``, ``size``, ``sha256``, ...)."""
        return {
            m["name"]: {
                "name": m["name"],
                "path": os.path.join(self.path, m["path"]),
                "format": m["format"],
                "class": m["class"],
                "library": m["library"],
                "library_version": m["library_version"],
                "size": m["size"],
                "sha256": m["sha256"],
                "logged_nanos": m["logged_time"],
            }
            for m in self._all()["models"]
        }

    @property
    def duration(self) -> "Optional[float]":
        """Seconds from start to end, or None while running."""
        if self._data["end_time"] is None:
            return None
        return (self._data["end_time"] - self._data["start_time"]) / 1e9

    def metric_history(self, name: str) -> "List[Tuple[int, float, float]]":
        """Every point of metric ``name`` as ``(step, timestamp, value)``; the
        timestamp is seconds since the Unix epoch (UTC), as ``time.time()``."""
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string: got {type(name).__name__} {name!r:.60}")
        # A run read from the team server: every point, from its journal there.
        return [(s, t / 1e9, v) for s, t, v in _lab.metric_history(self.id, name, self.remote)]

    def logs(self, stream: "Optional[str]" = None, *, lines: bool = False) -> "Union[str, List[LogLine]]":
        """What the run printed on its standard output and error, read from
        its journal (so a running run's output so far; for a run read with
        ``remote=True``, the team server's copy of its journal).

        By default the text, one line per printed line, each ending in
        ``\n``: a progress bar rewritten with carriage returns is the line it
        was left showing, colours are kept as their ANSI escape sequences.
        With ``lines=True``, a list of :class:`LogLine` ``(time, stream,
        text)``: ``time`` in seconds since the Unix epoch (UTC), ``stream``
        ``"stdout"`` or ``"stderr"``, ``text`` without its line ending.

        Where the run printed more than it keeps, one line of stream
        ``"lab"`` says how many lines were left out between the head and
        the tail.

        :param stream: ``"stdout"`` or ``"stderr"`` for only that one.
        """
        if stream not in (None, "stdout", "stderr"):
            raise ValueError(f"`stream` must be None, 'stdout' or 'stderr': got {stream!r:.60}")
        if not isinstance(lines, bool):
            raise TypeError(f"`lines` must be True or False: got {type(lines).__name__} {lines!r:.60}")
        got = [
            LogLine(t / 1e9, s, text)
            for t, s, text in _lab.console(self.id, self.remote)
            if stream is None or s == stream or s == "lab"
        ]
        if lines:
            return got
        return "".join(line.text + "\n" for line in got)

    def __repr__(self) -> str:
        return f"<Run {self.short_id} {self.experiment!r} {self.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def runs(
    experiment: "Optional[str]" = None,
    *,
    where: "Optional[str]" = None,
    sort: "Union[str, List[str], None]" = None,
    status: "Union[str, List[str], None]" = None,
    limit: "Optional[int]" = None,
    as_frame: bool = False,
    remote: bool = False,
    after: "Optional[str]" = None,
) -> "Any":
    """The runs of the current project, newest first.

    :param experiment: only runs of this experiment.
    :param where: only runs for which this query holds, e.g.
        ``"accuracy_score > 0.9 and params.max_depth <= 4"`` (the query
        language of ``lab ls --where``; see docs/query.md). A bad query raises
        ``ValueError`` with the query and a caret under the bad part.
    :param sort: a sort key or a list of them: a metric, parameter, tag or run
        field, smallest first, or largest first with a leading ``-``
        (``"-accuracy_score"``). Runs lacking the key go last.
    :param status: only runs with this status (or any of a list of them).
    :param limit: at most this many runs (a non-negative integer; one larger
        than any project could hold, such as ``2**70``, means no limit).
    :param as_frame: return a pandas DataFrame with one row per run and columns
        ``params.<name>`` and ``metrics.<name>`` (pandas must be installed).
    :param remote: read the team server's copy of the project (the server
        ``lab login`` names, or ``LAB_SERVER`` and ``LAB_TOKEN``) instead of
        the runs here. A server that is not configured, cannot be reached or
        refuses the token raises :class:`lab.errors.ServerError`.
    :param after: only the runs after this cursor, in the listing's order:
        the ``next`` of a :func:`runs_page` with the same ``sort`` (see
        :func:`runs_page`). A cursor that is not one raises ``ValueError``.
    """
    listing = _select(experiment, where, sort, status, limit, remote, after)
    if not as_frame:
        return Run._listed(listing)
    return _frame(listing)


def _frame(listing: "_lab.Listing") -> "Any":
    """The table pandas makes of one dict per run of ``listing`` (the same
    columns, in the same order, the same dtypes, with NaN where a run lacks
    a parameter or metric), made a column at a time: a column of numbers or
    times arrives as the bytes of a numpy array, with no Python object per
    cell; the others as lists of their cells, which pandas reads as it
    reads the dicts' values."""
    import pandas as pd

    if not len(listing):
        return pd.DataFrame([])
    import numpy as np

    columns = {}
    for name, dtype, data in listing.columns():
        if dtype is None:
            columns[name] = data
        elif dtype == "datetime64[us]":
            columns[name] = _utc_times(pd, np.frombuffer(data, dtype))
        else:
            columns[name] = np.frombuffer(data, dtype)
    return pd.DataFrame(columns)


def _utc_times(pd: "Any", values: "Any") -> "Any":
    """``values`` (numpy ``datetime64[us]``, UTC) as the column pandas makes
    of the same times as ``datetime`` objects in UTC (NaT for None)."""
    from datetime import datetime, timezone

    times = pd.DatetimeIndex(values).tz_localize(timezone.utc)
    # The resolution pandas gives such a column (microseconds, or
    # nanoseconds before pandas 3).
    want = pd.Series([datetime(2000, 1, 1, tzinfo=timezone.utc)]).dtype
    if times.dtype != want:
        times = times.astype(want)
    return times.array


class RunsPage(NamedTuple):
    """One page of a listing: its runs, and the cursor of the next page."""

    #: The page's runs, as :func:`runs` returns them.
    runs: "List[Run]"
    #: ``after`` for the next page, or None when no run follows.
    next: "Optional[str]"


def runs_page(
    experiment: "Optional[str]" = None,
    *,
    where: "Optional[str]" = None,
    sort: "Union[str, List[str], None]" = None,
    status: "Union[str, List[str], None]" = None,
    limit: int,
    after: "Optional[str]" = None,
    remote: bool = False,
) -> RunsPage:
    """One page of the runs :func:`runs` lists with the same arguments: at
    most ``limit`` runs after the cursor ``after`` (from the first run when
    None), and the cursor of the next page::

        page = lab.runs_page(sort="-accuracy", limit=100)
        while True:
            for run in page.runs: ...
            if page.next is None:
                break
            page = lab.runs_page(sort="-accuracy", limit=100, after=page.next)

    Runs logged or removed between pages neither shift nor repeat the
    others. With ``remote=True``, the pages of the team server's copy of
    the project (see :func:`runs`).
    """
    if limit is None:
        raise TypeError("`limit` must be a non-negative integer: got None")
    listing = _select(experiment, where, sort, status, limit, remote, after)
    return RunsPage(Run._listed(listing), listing.next)


def _select(
    experiment: "Any", where: "Any", sort: "Any", status: "Any", limit: "Any", remote: "Any", after: "Any"
) -> "_lab.Listing":
    """The listing of :func:`runs`, its arguments checked."""
    if experiment is not None and not isinstance(experiment, str):
        raise TypeError(f"`experiment` must be a string or None: got {type(experiment).__name__} {experiment!r}")
    if where is not None and not isinstance(where, str):
        raise TypeError(f"`where` must be a query string or None: got {type(where).__name__} {where!r}")
    sort_keys = _strings("sort", sort)
    statuses = _strings("status", status)
    limit = _limit(limit)
    if not isinstance(remote, bool):
        raise TypeError(f"`remote` must be True or False: got {type(remote).__name__} {remote!r:.60}")
    if after is not None and not isinstance(after, str):
        raise TypeError(f"`after` must be a cursor string or None: got {type(after).__name__} {after!r:.60}")
    return _lab.select_runs(experiment, where, sort_keys, statuses, limit, remote, after)


def _limit(limit: "Any") -> "Optional[int]":
    """``limit`` as an int, or None for no limit."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not hasattr(limit, "__index__"):
        raise TypeError(f"`limit` must be a non-negative integer or None: got {type(limit).__name__} {limit!r:.60}")
    import operator

    n = operator.index(limit)
    if n < 0:
        raise ValueError(f"`limit` must be a non-negative integer or None: got {n}")
    # More than any project holds: no limit (and no overflow on the way).
    return n if n < 2**63 else None


def _strings(argument: str, value: "Union[str, List[str], None]") -> "List[str]":
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"`{argument}` must be a string, a list of strings or None: got {type(value).__name__} {value!r}")


def get_run(run_id: str, *, remote: bool = False) -> Run:
    """The run whose id starts with ``run_id`` (any unique prefix, e.g. the
    8 digits ``lab ls`` shows); with ``remote=True``, the team server's copy
    of it (see :func:`runs`)."""
    if not isinstance(run_id, str):
        raise TypeError(f"`run_id` must be a string: got {type(run_id).__name__} {run_id!r}")
    if not isinstance(remote, bool):
        raise TypeError(f"`remote` must be True or False: got {type(remote).__name__} {remote!r:.60}")
    return Run(_lab.get_run(run_id, remote))


def _model_cache() -> Path:
    """Where model files fetched from the team server are kept, by SHA-256:
    ``$XDG_CACHE_HOME/lab/models``, else ``~/.cache/lab/models``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "lab" / "models"


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_model(run: "Union[Run, str]", name: str) -> "Any":
    """Load the model ``name`` logged by ``run`` (a :class:`Run` or an id prefix),
    after checking the file still has the SHA-256 recorded when it was logged."""
    if not isinstance(run, (Run, str)):
        raise TypeError(f"`run` must be a Run or a run id: got {type(run).__name__} {run!r:.60}")
    _lab.check_text("name", name)
    if isinstance(run, str):
        run = get_run(run)
    model = run.models.get(name)
    if model is None:
        known = ", ".join(sorted(run.models)) or "none"
        raise _lab.ModelNotFoundError(f"run `{run.short_id}` has no model named `{name}`; it has: {known}")
    if run.remote:
        # This machine's copy of the run when there is one, else the file
        # fetched from the server into the user's cache (by its SHA-256,
        # checked as it arrives).
        try:
            run = get_run(run.id)
            model = run.models.get(name) or model
        except (_lab.RunNotFoundError, _lab.NotAProjectError):
            pass
        if run.remote:
            path = _model_cache() / model["sha256"]
            if not path.is_file() or _sha256(str(path)) != model["sha256"]:
                _lab.fetch_blob(model["sha256"], str(path))
            model = dict(model, path=str(path))
    path = model["path"]
    try:
        actual = _sha256(path)
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"the file of model `{name}` of run `{run.short_id}` is missing: {path}"
        ) from None
    if actual != model["sha256"]:
        raise ModelIntegrityError(
            f"model `{name}` of run `{run.short_id}` has changed since it was logged: "
            f"SHA-256 {actual} instead of {model['sha256']}: {path}"
        )
    from lab._models import load

    return load(path, model["format"], model["class"])
