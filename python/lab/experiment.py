"""The training-script side of Lab: :class:`Experiment`.

One decorator and a few ``log_*`` calls record a run::

    e = Experiment()

    @e.start_run
    def train():
        e.log_features(feature_names)
        e.log_parameter("max_depth", 4)
        e.log_metric("accuracy_score", 0.97)
        e.log_model("GridSearchCV", clf)

Every ``log_*`` call returns only once its record is in the operating system's
hands, so a run killed one instant later keeps it.
"""

from __future__ import annotations

import os
import sys
import threading
from lab import _lab
from lab._lab import ExperimentCore, LabError, NoActiveRunError, RunHandle

# `typing` costs milliseconds to import; annotations here are strings anyway.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar

    T = TypeVar("T")

__all__ = ["Experiment", "LabWarning"]


class LabWarning(UserWarning):
    """Something Lab could not do for a run that still went on (an artifact that vanished)."""


_waiter_registered = False


def _wait_at_exit() -> None:
    problems = _lab.wait_for_background()
    # Runs stream to a team server while they train; what is left gets a
    # short grace here, and `lab sync` (or the next run) sends the rest.
    problems += _lab.finish_uploads()
    for p in problems:
        print(f"lab: {p}", file=sys.stderr)


def _register_exit_wait() -> None:
    """Waits at exit for the background work of this process's runs, and
    their uploads (runs, edits) to a team server."""
    global _waiter_registered
    if not _waiter_registered:
        import atexit

        atexit.register(_wait_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_lab.after_fork_in_child)
        _waiter_registered = True


def _source() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    if path in ("", "-", "<stdin>"):
        return "<stdin>" if path else "<interactive>"
    if path.startswith("<"):
        return path
    if path == "-c":
        return "<command>"
    if "ipykernel" in path or "ipython" in os.path.basename(path).lower():
        return "<notebook>"
    return os.path.abspath(path)


def _user() -> str:
    for var in ("USER", "LOGNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        uid = os.getuid()
    except AttributeError:
        return ""
    return _user_named(uid)


_USER_NAMES: dict = {}


def _user_named(uid: int) -> str:
    """The name of user ``uid``, looked up once per process: each run read
    the password database again."""
    name = _USER_NAMES.get(uid)
    if name is None:
        try:
            import pwd

            name = pwd.getpwuid(uid).pw_name
        except (ImportError, KeyError):
            name = ""
        _USER_NAMES[uid] = name
    return name


def _host() -> str:
    try:
        return os.uname().nodename
    except AttributeError:
        import platform

        return platform.node()


def _valid_text(text: str) -> str:
    """``text`` as valid Unicode. Arguments, paths and environment variables
    hold bytes that are not UTF-8 as lone surrogates (``'\\udcff'``), which
    no record can store: they are kept as escapes (``'\\xff'``)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_key(text: str) -> bool:
    try:
        _lab.check_key("name", text)
    except ValueError:
        return False
    return True


#: What a run keeps of its console when nothing else is asked: 8 MiB.
CAPTURE_LIMIT_BYTES = 8 << 20


def _check_limit(argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{argument}` must be a number of bytes: got {type(value).__name__} {value!r}")
    if value < 0 or value >= 1 << 63:
        raise ValueError(f"`{argument}` must be a number of bytes from 0 to 2**63-1: got {value}")
    return value


def _capture_settings(capture: bool, limit: Optional[int]) -> Optional[int]:
    """The console bound of a run about to start, or None not to capture."""
    switch = os.environ.get("LAB_CAPTURE", "").strip().lower()
    if switch in ("0", "false", "no", "off"):
        return None
    if switch not in ("", "1", "true", "yes", "on"):
        raise ValueError(f"`LAB_CAPTURE` must be 0 or 1: got {switch!r}")
    if not capture:
        return None
    if limit is not None:
        return limit
    env = os.environ.get("LAB_CAPTURE_LIMIT", "").strip()
    if not env:
        return CAPTURE_LIMIT_BYTES
    try:
        return _check_limit("LAB_CAPTURE_LIMIT", int(env))
    except (TypeError, ValueError):
        raise ValueError(f"`LAB_CAPTURE_LIMIT` must be a number of bytes: got {env!r}") from None


def _flush_console() -> None:
    """Hands what Python holds in its buffers to fds 1 and 2, so that a run's
    capture starts and ends where the script's output does."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a closed or replaced stream: nothing to hand over
            pass


def _no_run(method: str) -> NoActiveRunError:
    return NoActiveRunError(
        f"`{method}` was called outside a run; start one by decorating the training "
        "function with `@e.start_run`, or log inside `with e.start_run():`"
    )


def _error_tuple(exc_type: type, exc: BaseException, tb: Any) -> tuple:
    """``(type name, message, traceback)`` of the exception a run ends with.

    Never raises, whatever the exception: one whose ``__str__`` raises is
    ``<unprintable …>``, one whose traceback cannot be formatted gets a plain
    one. ``RunHandle.end`` keeps the head and tail of long texts.
    """
    try:
        short = exc_type.__name__
        name = exc_type.__qualname__
    except Exception:
        short = name = "<unknown exception type>"
    try:
        module = exc_type.__module__
    except Exception:
        module = None
    if isinstance(module, str) and module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {short} object>"
    try:
        import traceback

        text = "".join(traceback.format_exception(exc_type, exc, tb))
    except Exception:
        text = _plain_traceback(tb, name, message)
    return (name, message, text)


def _plain_traceback(tb: Any, name: str, message: str) -> str:
    """A traceback without what ``traceback.format_exception`` choked on."""
    try:
        import traceback

        frames = "".join(traceback.format_tb(tb))
    except Exception:
        frames = "  (the frames could not be formatted)\n"
    return f"Traceback (most recent call last):\n{frames}{name}: {message}\n"


def _outcome(exc_type: Any, exc: Any, tb: Any) -> tuple:
    """The status and error a run ends with when its block or function left
    with ``exc`` (None when it returned)."""
    if exc_type is None:
        return "finished", None
    if issubclass(exc_type, KeyboardInterrupt):
        return "interrupted", _error_tuple(exc_type, exc, tb)
    if issubclass(exc_type, SystemExit):
        try:
            code = exc.code
            clean = code is None or (isinstance(code, int) and int(code) == 0)
        except Exception:
            clean = False
        if clean:
            return "finished", None
    return "failed", _error_tuple(exc_type, exc, tb)


class _Options:
    """What a run is started with besides the experiment's settings: its
    name, group, parent run and tags, checked before anything is written."""

    __slots__ = ("name", "group", "parent", "tags")

    def __init__(self, name: Any = None, group: Any = None, parent: Any = None, tags: Any = None) -> None:
        if name is not None:
            _check_label("name", name)
        if group is not None:
            _check_label("group", group)
        self.name: Optional[str] = name
        self.group: Optional[str] = group
        self.parent: Optional[str] = None if parent is None else _parent_id(parent)
        self.tags: Dict[str, str] = _check_tags(tags)


#: The most characters a run's group (or name) may have.
MAX_LABEL_CHARS = 200


def _check_label(argument: str, value: Any) -> None:
    """Raises unless ``value`` can name a group: text of 1 to 200 characters,
    valid Unicode, no control characters."""
    if not isinstance(value, str):
        raise TypeError(f"`{argument}` must be a string or None: got {type(value).__name__} {value!r:.60}")
    if not value.strip():
        raise ValueError(f"`{argument}` must not be empty or blank: got {value!r}")
    if len(value) > MAX_LABEL_CHARS:
        raise ValueError(
            f"`{argument}` must be at most {MAX_LABEL_CHARS} characters: got {len(value)} ({value[:40]!r}...)"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"`{argument}` must not hold control characters (newlines, tabs): got {value!r:.80}")
    _lab.check_text(argument, value)


def _parent_id(parent: Any) -> str:
    """The full id of the run ``parent`` names: a ``lab.Run`` (anything with
    an ``id``), a full id, or a prefix of one."""
    ident = getattr(parent, "id", parent)
    if not isinstance(ident, str):
        raise TypeError(
            "`parent` must be a run id, a `lab.Run` or None: "
            f"got {type(parent).__name__} {parent!r:.60}"
        )
    if len(ident) == 32 and all(c in "0123456789abcdef" for c in ident):
        return ident
    from lab.run import get_run

    try:
        return get_run(ident).id
    except LabError as e:
        raise ValueError(f"`parent` names no run of this project: got {ident!r:.60} ({e})") from None


def _check_tags(tags: Any) -> Dict[str, str]:
    """``tags`` as the tags a run starts with, every key checked."""
    if tags is None:
        return {}
    if not hasattr(tags, "items") or isinstance(tags, (str, bytes)):
        raise TypeError(f"`tags` must be a dict of tag names to values or None: got {type(tags).__name__} {tags!r:.60}")
    out: Dict[str, str] = {}
    for key, value in tags.items():
        _lab.check_key("key", key)
        text = str(value)
        _lab.check_text("tags", text)
        out[key] = text
    return out


def _run_name(run: RunHandle) -> str:
    """What an inner run's group defaults to: the outer run's name, or its
    short id for a run that has none."""
    name = getattr(run, "name", None)
    return name if isinstance(name, str) and name else run.short_id


#: The runs this process has live, innermost last, per thread: a run started
#: inside another (of any Experiment) is that run's child.
_live = threading.local()


def _live_runs() -> List[Tuple["Experiment", RunHandle]]:
    runs = getattr(_live, "runs", None)
    if runs is None:
        runs = _live.runs = []
    return runs


def _outer_run() -> Optional[Tuple["Experiment", RunHandle]]:
    """The innermost run this thread started that is still live here."""
    runs = _live_runs()
    while runs:
        experiment, run = runs[-1]
        if not run.ended and run.owned:
            return experiment, run
        runs.pop()  # ended behind our back, or a forked parent's
    return None


class _RunScope:
    """What ``e.start_run`` returns: a context manager for a block, and a
    decorator that runs the function at once as one run."""

    def __init__(self, experiment: "Experiment", options: Optional[_Options] = None) -> None:
        self._experiment = experiment
        self._options = options if options is not None else _Options()
        self._run: Optional[RunHandle] = None
        self._outer: Optional[RunHandle] = None

    def __enter__(self) -> "Experiment":
        self._run, self._outer = self._experiment._begin(self._options)
        return self._experiment

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        run, self._run = self._run, None
        outer, self._outer = self._outer, None
        if run is not None:
            try:
                self._experiment._finish(run, exc_type, exc, tb)
            finally:
                self._experiment._leave(run, outer)
        return False

    def __call__(self, func: Callable[[], T]) -> Callable[..., T]:
        if not callable(func):
            raise TypeError(
                f"`start_run` decorates a function: got {type(func).__name__} {func!r}"
            )
        experiment, options = self._experiment, self._options
        with _RunScope(experiment, options):
            func()

        def run_again(*args: Any, **kwargs: Any) -> T:
            """Calls the decorated function again, as a new run."""
            with _RunScope(experiment, options):
                return func(*args, **kwargs)

        run_again.__name__ = getattr(func, "__name__", "run")
        run_again.__qualname__ = getattr(func, "__qualname__", "run")
        run_again.__doc__ = getattr(func, "__doc__", None)
        run_again.__wrapped__ = func  # type: ignore[attr-defined]
        return run_again


def _sweep_parameters(signature: Any, args: tuple, kwargs: dict) -> Dict[str, Any]:
    """The arguments of one call of a swept function that are plain values
    (numbers, strings, booleans, None), by parameter name; ``**kwargs``
    entries under their own names."""
    import inspect
    import numbers

    if signature is None:
        return {}
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    found: Dict[str, Any] = {}
    for key, value in bound.arguments.items():
        kind = signature.parameters[key].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            found.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            found[key] = value
    return {
        k: v
        for k, v in found.items()
        if _is_key(k) and (v is None or isinstance(v, (str, bool, numbers.Real)))
    }


def _sweep_name(template: str, signature: Any, args: tuple, kwargs: dict) -> str:
    """``template`` filled in with one call's arguments (``"lr={lr}"``)."""
    if signature is None:
        arguments = dict(kwargs)
    else:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
    try:
        return template.format(**arguments)
    except (KeyError, IndexError) as e:
        raise ValueError(
            f"`name` {template!r} names {e} which is no argument of the function: "
            f"it has {', '.join(arguments) or 'none'}"
        ) from None
    except (ValueError, AttributeError) as e:
        raise ValueError(f"`name` {template!r} is no format string for the arguments: {e}") from None


class Experiment(ExperimentCore):
    """A group of runs of one training script.

    :param name: the experiment's name; by default the script's file name
        without its extension.
    :param dataset: a description of the data the runs train on (a name, a path,
        a dict of facts); stored with every run.
    :param system_metrics: whether each run records system metrics (``sys/...``:
        CPU and memory of the process and its children, the machine's memory,
        disk and network throughput, each GPU's utilisation, memory,
        temperature and power). ``LAB_SYSTEM_METRICS=0`` turns them off too.
    :param system_metrics_interval: seconds between two samples (0.1 to
        86400); by default ``LAB_SYSTEM_METRICS_INTERVAL``, else 5.
    :param capture: record what each run prints on its standard output and
        error (Python's and native code's), as ``lab logs`` and
        ``Run.logs()`` show it. On by default; the environment variable
        ``LAB_CAPTURE=0`` turns it off for every experiment.
    :param capture_limit: the most bytes of console text a run keeps; past
        it, the first and last halves are kept and the cut is noted. By
        default ``LAB_CAPTURE_LIMIT`` or 8 MiB.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        dataset: Any = None,
        *,
        system_metrics: bool = True,
        system_metrics_interval: Optional[float] = None,
        capture: bool = True,
        capture_limit: Optional[int] = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string or None: got {type(name).__name__} {name!r}")
        if name is not None:
            _lab.check_key("name", name)
        if not isinstance(system_metrics, bool):
            raise TypeError(
                "`system_metrics` must be True or False: "
                f"got {type(system_metrics).__name__} {system_metrics!r:.60}"
            )
        if system_metrics_interval is not None:
            if isinstance(system_metrics_interval, bool) or not isinstance(
                system_metrics_interval, (int, float)
            ):
                raise TypeError(
                    "`system_metrics_interval` must be a number of seconds or None: "
                    f"got {type(system_metrics_interval).__name__} {system_metrics_interval!r:.60}"
                )
            if not 0.1 <= system_metrics_interval <= 86400:
                raise ValueError(
                    "`system_metrics_interval` must be a number of seconds from 0.1 to 86400: "
                    f"got {system_metrics_interval!r}"
                )
        if not isinstance(capture, bool):
            raise TypeError(f"`capture` must be True or False: got {type(capture).__name__} {capture!r}")
        if capture_limit is not None:
            _check_limit("capture_limit", capture_limit)
        self.name = name
        self.dataset = dataset
        self.system_metrics = system_metrics
        self.system_metrics_interval = (
            None if system_metrics_interval is None else float(system_metrics_interval)
        )
        self.capture = capture
        self.capture_limit = capture_limit

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, dataset={self.dataset!r})"

    @property
    def run_id(self) -> Optional[str]:
        """The id of the current run, or of the last one if none is running."""
        return self._run.id if self._run is not None else None

    def start_run(
        self,
        func: Optional[Callable[[], Any]] = None,
        *,
        name: Optional[str] = None,
        group: Optional[str] = None,
        parent: Any = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> Any:
        """Start a run.

        As a decorator, ``@e.start_run`` runs the function at once as one run
        (and the name it decorates becomes a function that runs it again as a
        new run). As ``with e.start_run():`` the block is the run.

        :param name: the run's readable name; by default one is generated
            (``brisk-otter-4821``), unique in the project. Names need not be
            unique: a name given twice names both runs, and ``lab show NAME``
            then lists them. ``@e.start_run(name="baseline")`` and
            ``with e.start_run(name="baseline"):`` both take it.

        An exception inside the run marks it ``failed`` with the error and
        traceback, and is raised again unchanged; ``KeyboardInterrupt`` marks
        it ``interrupted``.

        :param name: the run's name.
        :param group: the group the run belongs to (the runs of one sweep or
            one cross-validation): text of 1 to 200 characters. A run started
            inside another live run of this thread is, unless given one, in
            the group named after the outer run.
        :param parent: the run this one belongs under: a ``lab.Run``, an id
            or an id prefix. A run started inside another run of this thread
            has that run as its parent unless given one.
        :param tags: tags the run starts with, ``{name: value}`` (values kept
            as text).
        """
        scope = _RunScope(self, _Options(name, group, parent, tags))
        if func is None:
            return scope
        return scope(func)

    def sweep(
        self,
        func: Optional[Callable[..., T]] = None,
        *,
        group: Optional[str] = None,
        name: Optional[str] = None,
    ) -> Any:
        """Decorate a training function so that each call of it is a new run.

        Nothing runs at decoration. Every call starts a run, logs the
        call's arguments that are numbers, strings, booleans or None as
        parameters, runs the function and returns what it returns; an
        exception ends that run ``failed`` and reaches the caller. All runs
        of the decorated function share one group: ``group`` when given,
        else ``<function name>-<6 hex digits>`` drawn once per decoration
        (``wrapper.group`` tells which). ``name`` may be a format string over
        the arguments, ``name="lr={lr}"``.
        """
        if group is not None:
            _check_label("group", group)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a format string or None: got {type(name).__name__} {name!r:.60}")

        def decorate(f: Callable[..., T]) -> Callable[..., T]:
            if not callable(f):
                raise TypeError(f"`sweep` decorates a function: got {type(f).__name__} {f!r:.60}")
            import functools
            import inspect

            try:
                signature: Any = inspect.signature(f)
            except (TypeError, ValueError):  # a builtin without one: no arguments are logged
                signature = None
            label = getattr(f, "__name__", "sweep")
            if group is not None:
                the_group = group
            else:
                the_group = f"{label[:MAX_LABEL_CHARS - 7] or 'sweep'}-{os.urandom(3).hex()}"
                try:
                    _check_label("group", the_group)
                except ValueError:  # a function named with control characters
                    the_group = f"sweep-{the_group[-6:]}"
            experiment = self

            @functools.wraps(f)
            def call(*args: Any, **kwargs: Any) -> T:
                run_name = None if name is None else _sweep_name(name, signature, args, kwargs)
                params = _sweep_parameters(signature, args, kwargs)
                with _RunScope(experiment, _Options(run_name, the_group)):
                    if params:
                        experiment.log_parameters(params)
                    return f(*args, **kwargs)

            call.group = the_group  # type: ignore[attr-defined]
            return call

        if func is None:
            return decorate
        return decorate(func)

    # -- lifecycle ---------------------------------------------------------

    def _begin(self, options: _Options) -> Tuple[RunHandle, Optional[RunHandle]]:
        """Starts a run and makes it the experiment's; of two threads starting
        runs at once, exactly one does and the other raises ``LabError``.
        Returns the run and, when it nests in a run of this experiment, that
        outer run (which becomes the experiment's run again when it ends)."""
        found = _outer_run()
        outer = found[1] if found is not None and found[0] is self else None
        self._claim(outer)
        try:
            run = self._start(options, None if found is None else found[1])
        except BaseException:
            self._release()
            raise
        self._attach(run)
        _live_runs().append((self, run))
        return run, outer

    def _leave(self, run: RunHandle, outer: Optional[RunHandle]) -> None:
        """Forgets ``run`` as live in this thread; the run it nested in, of
        this experiment, is the experiment's run again."""
        runs = _live_runs()
        for i in range(len(runs) - 1, -1, -1):
            if runs[i][1] is run:
                del runs[i]
                break
        if outer is not None and not outer.ended:
            self._attach(outer)

    def _start(self, options: _Options, outer: Optional[RunHandle]) -> RunHandle:
        source = _valid_text(_source())
        name = self.name
        if name is not None:
            # A plain attribute: checked again, as it may have changed since `__init__`.
            if not isinstance(name, str):
                raise TypeError(f"`name` must be a string or None: got {type(name).__name__} {name!r}")
            _lab.check_key("name", name)
        else:
            stem = os.path.splitext(os.path.basename(source))[0]
            name = stem if source[:1] != "<" and _is_key(stem) else "default"
        attrs: dict = {
            _lab.ATTR_SOURCE: source,
            _lab.ATTR_ARGV: [_valid_text(a) for a in sys.argv[1:]],
            _lab.ATTR_USER: _valid_text(_user()),
            _lab.ATTR_HOST: _valid_text(_host()),
            _lab.ATTR_PID: os.getpid(),
            _lab.ATTR_PYTHON_VERSION: sys.version.split()[0],
            _lab.ATTR_PYTHON_EXECUTABLE: _valid_text(sys.executable),
            _lab.ATTR_CWD: _valid_text(os.getcwd()),
            _lab.ATTR_LAB_VERSION: _lab.__version__,
        }
        if self.dataset is not None:
            attrs[_lab.ATTR_DATASET] = self.dataset
        if options.name is not None:
            attrs[_lab.ATTR_NAME] = options.name
        parent = options.parent if options.parent is not None else None if outer is None else outer.id
        group = options.group if options.group is not None else None if outer is None else _run_name(outer)
        if group is not None:
            attrs[_lab.ATTR_GROUP] = group
        if parent is not None:
            attrs[_lab.ATTR_PARENT] = parent
        if os.environ.get("LAB_LAUNCH"):
            # Set by `lab run`, which lists the runs its script made.
            attrs[_lab.ATTR_LAUNCH] = _valid_text(os.environ["LAB_LAUNCH"])
        git_dir = os.path.dirname(source) if source[:1] != "<" else os.getcwd()
        site_dirs = [p for p in sys.path if p]
        limit = _capture_settings(self.capture, self.capture_limit)
        run, created = _lab.start_run(
            name,
            attrs,
            git_dir,
            site_dirs,
            self.system_metrics is not False,
            self.system_metrics_interval,
        )
        if created is not None:
            where = "" if os.environ.get("LAB_PROJECT") else " (set LAB_PROJECT to keep them elsewhere)"
            print(
                f"lab: {created} is now a Lab project; runs are kept in "
                f"{os.path.join(created, '.lab')}{where}",
                file=sys.stderr,
            )
        _register_exit_wait()
        for key, value in options.tags.items():
            run.set_tag(key, value)
        if limit is not None:
            _flush_console()
            try:
                run.start_capture(limit)
            except Exception as e:  # the training goes on, unrecorded
                import warnings

                warnings.warn(f"the console of run {run.short_id} is not recorded: {e}", LabWarning, stacklevel=4)
        return run

    def _finish(self, run: RunHandle, exc_type: Any, exc: Any, tb: Any) -> None:
        if run.ended or not run.owned:
            # Nothing to end, or a forked child leaving a block of its parent's run.
            return
        status, error = _outcome(exc_type, exc, tb)
        _flush_console()
        try:
            problems = run.end(status, error)
        except Exception as end_error:
            if exc_type is None:
                raise
            # The user's own exception matters more: say ours and let theirs go on.
            print(f"lab: could not end run {run.short_id}: {end_error}", file=sys.stderr)
            return
        if problems:
            import warnings

            for p in problems:
                warnings.warn(p, LabWarning, stacklevel=3)

    def _live(self, method: str) -> Any:
        run = self._run
        if run is None:
            raise _no_run(method)
        return run

    # -- logging -----------------------------------------------------------

    def log_features(self, names: Iterable[Any]) -> None:
        """Log the feature names (or column indices) the model trains on.

        Accepts a list, tuple, range, numpy array or pandas Index.
        """
        run = self._live("log_features")
        if isinstance(names, (str, bytes, dict)) or not hasattr(names, "__iter__"):
            raise TypeError(
                "`names` must be a list of feature names or column indices: "
                f"got {type(names).__name__} {names!r:.60}"
            )
        tolist = getattr(names, "tolist", None)
        items = tolist() if callable(tolist) else list(names)
        if not isinstance(items, list):
            items = list(items)
        run.log_features(items)

    def log_parameter(self, key: str, value: Any) -> None:
        """Log a hyperparameter. Logging the same key again replaces its value.

        Values may be int, float, bool, str, None, or lists, tuples and dicts of
        those; numpy values are converted with ``tolist()``; any other object is
        stored as its ``str()``.
        """
        self._live("log_parameter").log_param(key, value)

    def log_parameters(self, parameters: Mapping[str, Any]) -> None:
        """Log every item of a dict (or any mapping) as a hyperparameter; all
        are checked before any is written."""
        self._live("log_parameters").log_params(parameters)

    # log_metric and log_metrics are ExperimentCore's (in Rust): they are the
    # calls training loops make most, and skipping a Python frame halves them.

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag on the run; the value is kept as text."""
        self._live("set_tag").set_tag(key, value)

    def log_tag(self, key: str, value: Any) -> None:
        """Set a tag on the run; the value is kept as text (the same as
        :meth:`set_tag`). After the run, ``lab tag`` and ``Run.tags`` change
        tags."""
        self._live("log_tag").set_tag(key, value)

    def log_note(self, markdown: str) -> None:
        """Set the run's note: Markdown text saying what the run is for. A
        later note replaces it; after the run, ``lab note`` and ``Run.note``
        change it."""
        if not isinstance(markdown, str):
            raise TypeError(f"`markdown` must be a string: got {type(markdown).__name__} {markdown!r}")
        self._live("log_note").log_note(markdown)

    def log_artifact(self, name: str, path: "os.PathLike[str] | str") -> None:
        """Log a file or a folder as an artifact.

        The path must exist now; its content is copied into the run when the run
        ends, however it ends (finished, failed or interrupted), so a folder may
        keep growing until then. The scalars of TensorBoard event files in it
        become metrics of the run (``train/epoch_loss``, ...).
        """
        run = self._live("log_artifact")
        try:
            fspath = os.fspath(path)
        except TypeError:
            raise TypeError(
                f"`path` must be a path (str or os.PathLike): got {type(path).__name__} {path!r:.60}"
            ) from None
        if isinstance(fspath, bytes):
            fspath = os.fsdecode(fspath)
        try:
            os.fsencode(fspath)
        except UnicodeEncodeError:
            raise ValueError(
                "`path` must be valid Unicode text (or bytes the file system decoded), "
                f"without lone surrogates: got {fspath!r}"
            ) from None
        run.log_artifact(name, fspath)

    log_artifacts = log_artifact

    def log_image(self, key: str, image: Any, step: Optional[int] = None) -> None:
        """Log an image under ``key``; the run page shows each key's images
        with a step slider.

        ``image`` is a numpy array of shape (height, width), (height, width, 1),
        (height, width, 3) or (height, width, 4) holding uint8 numbers (0 to
        255), floats from 0 to 1 or booleans; a Pillow image; a matplotlib
        figure; or the bytes of a PNG file. It is stored as a PNG in the
        run's folder, ``media/<key>/<step>.png``. ``step`` defaults to the
        key's next step (0, 1, 2, ...); logging a key and step again replaces
        the image. Bad input (another shape, NaN, values out of range, more
        than 16384 pixels a side) raises and the run goes on.
        """
        run = self._live("log_image")
        from lab._media import image_args

        _lab.check_name("key", key)
        how, args = image_args(image)
        if how == "png":
            run.log_png(key, args, step)
        else:
            data, height, width, channels, dtype = args
            run.log_image(key, data, height, width, channels, dtype, step)

    def log_figure(self, key: str, figure: Any, step: Optional[int] = None) -> None:
        """Log a matplotlib figure as an image under ``key``, drawn at the
        figure's size and dpi (see :meth:`log_image`)."""
        run = self._live("log_figure")
        from lab._media import figure_png

        _lab.check_name("key", key)
        run.log_png(key, figure_png(figure), step)

    def log_table(self, key: str, table: Any, step: Optional[int] = None) -> None:
        """Log a table under ``key``; the run page shows it as a sortable table.

        ``table`` is a pandas or polars DataFrame (a pandas index that is not
        the default 0, 1, 2, ... becomes the first column), a list of dicts
        (one a row; the columns are every key, in the order first seen) or a
        dict of columns of equal length. Cells are stored like parameter
        values (numbers, text, booleans, None; anything else as its text), as
        JSON in the run's folder, ``media/<key>/<step>.json``. At most
        1,000,000 cells.
        """
        run = self._live("log_table")
        from lab._media import table_args

        _lab.check_name("key", key)
        columns, rows = table_args(table)
        run.log_table(key, columns, rows, step)

    def log_model(self, name: str, model: Any) -> None:
        """Serialise ``model`` into the run now.

        Models of Keras, PyTorch, Transformers, XGBoost and LightGBM are
        stored in their library's own format (``.keras``, ``torch.save``,
        ``save_pretrained``, XGBoost JSON, LightGBM text); anything else with
        joblib when installed, else pickle. The file's format, the model's
        library and version, its size and SHA-256 are recorded;
        :func:`lab.load_model` loads it back. An object that cannot be
        serialised raises ``TypeError`` and the run goes on.

        ``log_model(model, "name")``, the order of the original Lab, is
        accepted too when exactly one of the two arguments is a string.
        """
        run = self._live("log_model")
        if not isinstance(name, str) and isinstance(model, str):
            name, model = model, name
        elif isinstance(name, str) and isinstance(model, str):
            raise TypeError(
                f"`log_model` cannot tell the name from the model: both are strings, "
                f"{name!r:.60} and {model!r:.60}\n\nhint: `log_model(name, model)` takes a model "
                "object; keep a string as a parameter or a tag"
            )
        elif not isinstance(name, str):
            raise TypeError(
                f"`name` must be a string: got {type(name).__name__} {name!r:.60} "
                f"(and the model, a {type(model).__name__}, is no string either: "
                "`log_model` takes `(name, model)`)"
            )
        _lab.check_name("name", name)
        from lab._models import serialise

        serialise(run, name, model)
