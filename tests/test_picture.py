"""A run as a picture (inline SVG), as Markdown and as text: what a notebook, nbconvert and
a terminal show of a run."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, List

import pytest

from atlan_ext import Job, lineage_run
from atlan_ext.display import run_markdown, run_picture, run_text

SVG = "{http://www.w3.org/2000/svg}"
STATE_FILLS = {"COMPLETE": "#1a7f37", "FAIL": "#cf222e", "ABORT": "#9a6700"}


def svg_of(run: Any) -> ET.Element:
    """The run's picture, parsed: it must be well-formed XML."""
    return ET.fromstring(run_picture(run))


def texts(svg: ET.Element) -> List[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def ended(**options: Any) -> Any:
    """A run that completed, of ``options``' job (default ``ol-pic/load``) and datasets."""
    job = options.pop("job", Job("ol-pic", "load"))
    with lineage_run(job, client="local", **options) as run:
        pass
    return run


class TestPicture:
    @pytest.mark.parametrize("state", ["COMPLETE", "FAIL", "ABORT"])
    def test_job_box_is_coloured_by_state(self, state: str) -> None:
        """The job's box is filled with its state's colour and says the state."""
        runs: List[Any] = []
        job = Job("ol-pic", "load")
        try:
            with lineage_run(job, client="local", inputs=["s3://b/in"]) as run:
                runs.append(run)
                if state == "FAIL":
                    raise ValueError("bad")
                if state == "ABORT":
                    raise KeyboardInterrupt
        except (ValueError, KeyboardInterrupt):
            pass
        svg = svg_of(runs[0])
        fills = [r.get("fill") for r in svg.iter(f"{SVG}rect")]
        assert STATE_FILLS[state] in fills
        assert f"ol-pic \u00b7 {state}" in texts(svg)

    def test_every_dataset_named_with_its_namespace(self) -> None:
        """inputs -> job -> outputs: each dataset box holds its name and its namespace, and
        an arrow joins each to the job."""
        run = ended(
            inputs=["s3://raw/orders.csv", "postgres://db:5432/public.customers"],
            outputs=["snowflake://acct/DB.SCHEMA.DAILY"],
        )
        shown = texts(svg_of(run))
        for name, namespace in [
            ("orders.csv", "s3://raw"),
            ("public.customers", "postgres://db:5432"),
            ("DB.SCHEMA.DAILY", "snowflake://acct"),
        ]:
            assert name in shown
            assert namespace in shown
        assert len(list(svg_of(run).iter(f"{SVG}polygon"))) == 3  # three arrowheads

    def test_failure_message_under_the_job(self) -> None:
        """A FAIL shows its message (escaped) under the job box, and whole in the HTML."""
        runs: List[Any] = []
        with pytest.raises(ValueError):
            with lineage_run(Job("ol-pic", "load"), client="local") as run:
                runs.append(run)
                raise ValueError("bad row <7> & 'quoted'")
        page = runs[0]._repr_html_()
        assert "ValueError: bad row &lt;7&gt; &amp; &#x27;quoted&#x27;</pre>" in page
        note = " ".join(texts(svg_of(runs[0]))[2:])
        assert note == "FAIL: ValueError: bad row <7> & 'quoted'"

    def test_names_are_escaped_and_the_svg_is_sanitiser_safe(self) -> None:
        """Names with <, &, quotes stay text; the SVG is well-formed and has no script, style,
        event handler or marker (what notebook sanitisers strip) that it needs."""
        run = ended(
            job=Job('ol-"pic"', "<script>alert('x')</script>"),
            inputs=['s3://b/"><img src=x onerror=alert(1)>'],
        )
        picture = run_picture(run)
        svg = ET.fromstring(picture)
        assert any("<script>" in t for t in texts(svg))  # shown as text, not run
        assert "<script" not in picture
        assert "<img" not in picture
        for element in svg.iter():
            assert element.tag.split("}")[1] not in {"script", "style", "marker", "foreignObject"}
            assert not [a for a in element.attrib if a.startswith("on")]
            if element is not svg:  # the root's style only shrinks a wide picture
                assert "style" not in element.attrib

    def test_many_datasets_collapse(self) -> None:
        """Past 8 datasets a side, 7 show and one box says how many more, naming them in its
        tooltip."""
        run = ended(inputs=[f"s3://b/part-{n:02}.parquet" for n in range(44)], outputs=[])
        svg = svg_of(run)
        shown = texts(svg)
        assert "+ 37 more" in shown
        assert [t for t in shown if t.startswith("part-")] == [
            f"part-{n:02}.parquet" for n in range(7)
        ]
        tooltips = [t.text or "" for t in svg.iter(f"{SVG}title")]
        assert any("s3://b/part-43.parquet" in t for t in tooltips)

    def test_parents_are_shown_above_the_job(self) -> None:
        """A nested run shows its parent run, and its root when that is another run."""
        with lineage_run(Job("ol-pic", "dag"), client="local"):
            with lineage_run(Job("ol-pic", "task"), client="local"):
                with lineage_run(Job("ol-pic", "step"), client="local") as run:
                    pass
        shown = texts(svg_of(run))
        assert "task" in shown
        assert "parent run \u00b7 ol-pic" in shown
        assert "dag" in shown
        assert "root run \u00b7 ol-pic" in shown

    def test_long_names_are_shortened_on_screen_and_whole_in_the_tooltip(self) -> None:
        """A long name keeps its end on screen; the whole URI is in the tooltip."""
        uri = "s3://bucket/" + "/".join(["very-long-folder-name"] * 5) + "/file.csv"
        svg = svg_of(ended(inputs=[uri]))
        assert any(t.startswith("\u2026") and t.endswith("/file.csv") for t in texts(svg))
        assert any(uri in (t.text or "") for t in svg.iter(f"{SVG}title"))


class TestTextAndMarkdown:
    def test_text(self) -> None:
        """A terminal gets job, state, run id, inputs -> job -> outputs and the message."""
        runs: List[Any] = []
        with pytest.raises(ValueError):
            with lineage_run(Job("ol-pic", "load"), client="local", inputs=["s3://b/in"]) as run:
                runs.append(run)
                raise ValueError("bad row 7\nmore lines")
        text = run_text(runs[0])
        assert re.match(r"ol-pic/load: FAIL in [0-9.]+ s \(run [0-9a-f-]{36}\)", text)
        assert "  s3://b/in -> [job] -> none" in text
        assert text.endswith("  ValueError: bad row 7")

    def test_markdown_escapes(self) -> None:
        """Markdown keeps names literal: emphasis characters, pipes, HTML and backticks."""
        run = ended(job=Job("ol_pic", "*load* <b>|x|"), inputs=["s3://b/in`with`ticks"])
        markdown = run_markdown(run)
        assert "**ol\\_pic / \\*load\\* &lt;b&gt;\\|x\\|**" in markdown
        assert "``s3://b/in`with`ticks``" in markdown
        assert "<b>" not in markdown
