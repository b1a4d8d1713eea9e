"""Bad input that used to slip through: each case is refused at once, before anything is sent,
with a typed error that names the value and the fix (Python), or one line and status 2 with
no traceback (the command line)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from test_cli import cli

import atlan_ext.exceptions as exceptions
from atlan_ext import (
    AtlanExtError,
    Dataset,
    InvalidDatasetError,
    InvalidJobError,
    InvalidOptionError,
    InvalidRunIdError,
    InvalidTimeError,
    Job,
    RunId,
    lineage_run,
    start_run,
)
from atlan_ext.testing import capture_lineage

JOB = Job("ol-spark", "nightly_orders_load")
README = Path(__file__).resolve().parent.parent / "README.md"

OPTIONS: List[Any] = [
    ({"outputs": None}, InvalidDatasetError, "outputs=[] for none"),
    ({"inputs": 5}, InvalidDatasetError, "got 5"),
    ({"inputs": {"s3://b/k": 1}}, InvalidDatasetError, "must be a list of datasets"),
    ({"bogus": 1}, InvalidOptionError, "'bogus' is not an option"),
    ({"stirct": True}, InvalidOptionError, "did you mean strict?"),
    ({"background": "yes"}, InvalidOptionError, "background must be True or False, got 'yes'"),
    ({"strict": 1}, InvalidOptionError, "strict must be True or False, got 1"),
    (
        {"include_stack_trace": "no"},
        InvalidOptionError,
        "include_stack_trace must be True or False, got 'no'",
    ),
    ({"outputs": ["orders.csv"]}, InvalidDatasetError, "for a local file, file:///"),
]


class TestRunOptions:
    @pytest.mark.parametrize(("options", "error", "shown"), OPTIONS, ids=repr)
    @pytest.mark.parametrize("entry", ["lineage_run", "start_run"])
    def test_refused_before_anything_is_sent(
        self, entry: str, options: Dict[str, Any], error: type, shown: str
    ) -> None:
        """lineage_run and start_run refuse the option with a typed error naming it."""
        make: Callable[..., Any] = lineage_run if entry == "lineage_run" else start_run
        with capture_lineage() as events, pytest.raises(error) as caught:
            make(JOB, client="local", **options)
        assert events == []
        assert shown in str(caught.value)
        assert isinstance(caught.value, ValueError)

    def test_local_path_suggests_its_uri(self, tmp_path: Path, monkeypatch: Any) -> None:
        """A bare file name is refused with the file:// URI of its absolute path."""
        monkeypatch.chdir(tmp_path)
        with pytest.raises(InvalidDatasetError, match=re.escape(f"file://{tmp_path}/orders.csv")):
            Dataset.parse("orders.csv")


CONTROL = ["a\x00b", "a\nb", "line\r", "\x1b[31mred", "tab\there", "del\x7f"]


class TestControlCharacters:
    @pytest.mark.parametrize("name", CONTROL, ids=repr)
    @pytest.mark.parametrize(
        ("make", "error"),
        [
            (lambda n: Job("ol-spark", n), InvalidJobError),
            (lambda n: Job(n, "load"), InvalidJobError),
            (lambda n: Dataset("s3://b", n), InvalidDatasetError),
            (lambda n: Dataset(n, "orders"), InvalidDatasetError),
            (lambda n: Dataset.parse(f"s3://b/{n}/part-0"), InvalidDatasetError),
        ],
        ids=["job name", "job connection", "dataset name", "dataset namespace", "dataset URI"],
    )
    def test_refused_naming_the_character(
        self, make: Callable[[str], Any], error: type, name: str
    ) -> None:
        """NUL and other control characters in names are refused, naming the character."""
        with pytest.raises(error, match="control character"):
            make(name)

    def test_unicode_names_are_fine(self) -> None:
        """Only control characters are refused: other Unicode is a name as any other."""
        assert Job("ol-spark", "Zürich ∑ load").name == "Zürich ∑ load"


class TestRunIdFromKey:
    @pytest.mark.parametrize(
        ("parts", "error", "shown"),
        [
            ((None,), InvalidRunIdError, "key part 1 is None"),
            (("",), InvalidRunIdError, "key part 1 is ''"),
            (("job", "  "), InvalidRunIdError, "key part 2 is '  '"),
            (("job", "2026-13-45"), InvalidTimeError, "'2026-13-45' is shaped as a date"),
            (("job", "2026-12-02T00:00:00"), InvalidTimeError, "without a zone"),
            ((), InvalidRunIdError, "at least one key part"),
        ],
        ids=repr,
    )
    def test_refused(self, parts: Any, error: type, shown: str) -> None:
        """A key that cannot mean one run on every host is refused, naming the part."""
        with pytest.raises(error) as caught:
            RunId.from_key(*parts)
        assert shown in str(caught.value)

    @pytest.mark.parametrize("day", ["2026-12-02", dt.date(2026, 12, 2), " 2026-12-02 "], ids=repr)
    def test_a_date_is_midnight_utc(self, day: Any) -> None:
        """A date part ($(date +%F), a datetime.date) puts midnight UTC in the time bits."""
        run_id = RunId.from_key("nightly", day)
        millis = int(run_id.replace("-", "")[:12], 16)
        assert millis == int(dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc).timestamp() * 1000)
        assert run_id == RunId.from_key("nightly", day)

    def test_same_for_a_date_and_its_text(self) -> None:
        """A datetime.date and its ISO text are the same key."""
        assert RunId.from_key("j", dt.date(2026, 12, 2)) == RunId.from_key("j", "2026-12-02")


class TestCommandLine:
    @pytest.mark.parametrize(
        ("args", "shown"),
        [
            (["run-id", "--key", ""], "key part 1 is ''"),
            (["run-id", "--key", "job", ""], "key part 2 is ''"),
            (["start", "--connection", "c", "--job", "a\nb"], "control character '\\n'"),
            (["start", "--connection", "c", "--job", "j", "--input", "orders.csv"], "file:///"),
            (["start", "--connection", "c", "--job", "j", "--conector", "x"], "--connector?"),
            (["start", "--connection", "c", "--job", "j", "--job-t", "DAG"], "--job-type?"),
            (["status", "--limt", "3"], "did you mean --limit?"),
        ],
        ids=repr,
    )
    def test_one_line_and_status_2(self, args: List[str], shown: str, tmp_path: Path) -> None:
        """Bad input on the command line: status 2, one clear line, no traceback."""
        done = cli(*args, home=tmp_path)
        assert done.returncode == 2, done.stderr
        assert shown in done.stderr
        assert "Traceback" not in done.stderr

    def test_date_key_is_not_1970(self, tmp_path: Path) -> None:
        """run-id --key job 2026-12-02 prints the same id as Python, dated that day."""
        done = cli("run-id", "--key", "job", "2026-12-02", home=tmp_path)
        assert done.stdout.strip() == RunId.from_key("job", "2026-12-02")
        assert not done.stdout.startswith("00000000")


# The README's table of which typed errors are also which built-in error.
_ROW = re.compile(r"^\| `(\w+)`: [^|]*\| (.*) \|$", re.MULTILINE)
BUILTINS = {"ValueError": ValueError, "TypeError": TypeError, "RuntimeError": RuntimeError}


class TestErrorKinds:
    def test_readme_and_classes_agree(self) -> None:
        """Each typed error the README lists under a built-in error derives from it, and
        every error of exceptions.__all__ that derives from one of them is listed."""
        listed: Dict[str, type] = {}
        for builtin, names in _ROW.findall(README.read_text(encoding="utf-8")):
            for name in re.findall(r"`(\w+)`", names):
                listed[name] = BUILTINS[builtin]
        assert set(listed.values()) == set(BUILTINS.values())
        for name, builtin in listed.items():
            assert issubclass(getattr(exceptions, name), (AtlanExtError, builtin)), name
            assert issubclass(getattr(exceptions, name), builtin), name
        derived = {
            name
            for name in exceptions.__all__
            if issubclass(getattr(exceptions, name), tuple(BUILTINS.values()))
        }
        assert derived == set(listed)
