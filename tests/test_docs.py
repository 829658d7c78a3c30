"""The documentation: its code examples run, the site builds without a warning, the figures are reproducible, and
the code's citations of docs/algorithm.md name its sections.

Python examples are the ```python blocks of README.md and docs/**/*.md, run in order, one namespace per page,
in a temporary directory. A block right after ``<!-- not executed: REASON -->`` is skipped (it needs model
weights, or is a skeleton).
"""

import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
NOT_EXECUTED = re.compile(r"<!--\s*not executed:\s*(.+?)\s*-->\s*$")


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip_reason)`` of every ```python block of a Markdown file."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_EXECUTED.search(before)
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1), reason and reason.group(1)))
    return blocks


def run_blocks(path: Path, workdir: Path, monkeypatch) -> int:
    """Run the page's executable blocks in one namespace; returns how many ran."""
    monkeypatch.chdir(workdir)
    namespace: dict = {"__name__": f"docs_example_{path.stem}"}
    ran = 0
    for line, code, skip in python_blocks(path):
        if skip:
            continue
        try:
            exec(compile(code, f"{path.relative_to(ROOT)}:{line}", "exec"), namespace)  # noqa: S102 (the examples)
        except Exception as exc:
            raise AssertionError(f"the example at {path.relative_to(ROOT)} line {line} fails: {exc!r}") from exc
        ran += 1
    return ran


def test_readme_examples_run(tmp_path, monkeypatch, fresh_plugins):
    blocks = python_blocks(ROOT / "README.md")
    if not blocks:
        pytest.skip("README.md has no ```python example to run")
    assert run_blocks(ROOT / "README.md", tmp_path, monkeypatch) >= 1, "every README example is marked not executed"


DOC_PAGES = sorted(p for p in DOCS.rglob("*.md") if any(skip is None for _, _, skip in python_blocks(p)))


@pytest.mark.parametrize("page", DOC_PAGES, ids=[str(p.relative_to(DOCS)) for p in DOC_PAGES])
def test_docs_examples_run(page, tmp_path, monkeypatch, fresh_plugins):
    assert run_blocks(page, tmp_path, monkeypatch) >= 1


def test_not_executed_blocks_say_why():
    pages = [ROOT / "README.md", *DOCS.rglob("*.md")]
    skipped = [(page, line, reason) for page in pages for line, _, reason in python_blocks(page) if reason is not None]
    for page, line, reason in skipped:
        assert len(reason.split()) >= 2, f"{page}:{line}: say why the example is not executed"
    assert DOC_PAGES, "the docs have no runnable example"


def load_figure_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_figures_are_reproduced_by_their_script_and_used(tmp_path, monkeypatch):
    script = load_figure_script(monkeypatch)
    written = script.main(["--out", str(tmp_path)])
    committed = sorted(p.name for p in (DOCS / "figures").glob("*.png"))
    assert sorted(p.name for p in written) == committed
    pages = "".join(p.read_text() for p in DOCS.rglob("*.md"))
    for path in written:
        fresh, stored = Image.open(path), Image.open(DOCS / "figures" / path.name)
        assert fresh.size == stored.size, f"{path.name}: rerun python docs/make_figures.py"
        # The same drawing: palette quantisation and text rendering may move colours by a few levels, a
        # different flow or window moves them far.
        delta = np.abs(np.asarray(fresh.convert("RGB"), np.int16) - np.asarray(stored.convert("RGB"), np.int16))
        far = (delta.max(axis=-1) > 24).mean()
        assert far < 0.02, f"{path.name} differs from its script's output; rerun python docs/make_figures.py"
        assert (DOCS / "figures" / path.name).stat().st_size < 120_000, f"{path.name} is too large for the repo"
        assert f"figures/{path.name}" in pages, f"{path.name} is not shown on any page"


# Code and docs cite sections of the specification as ``docs/algorithm.md#dense-amf``, sometimes followed on the
# same line by short forms (``... and #windowed-amf``).
ALGORITHM = DOCS / "algorithm.md"
CITING = ("fastvmt/", "tests/", "benchmarks/", "docs/", "examples/", "README.md")
CITATION = re.compile(r"algorithm\.md#([\w-]+)")
SHORT_CITATION = re.compile(r"(?<![\w/.#-])#([a-z][\w-]*)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
EXPLICIT_ID = re.compile(r"\s*\{\s*#([\w-]+)\s*\}$")
FENCED = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)


def heading_anchors(markdown: str) -> set[str]:
    """Anchors of a page's headings: an ``{ #id }`` attribute, else the slug of Python-Markdown's toc."""
    anchors = set()
    for title in HEADING.findall(FENCED.sub("", markdown)):
        explicit = EXPLICIT_ID.search(title)
        if explicit:
            anchors.add(explicit.group(1))
        else:
            slug = re.sub(r"[^\w\s-]", "", title).strip().lower()
            anchors.add(re.sub(r"[-\s]+", "-", slug))
    return anchors


def algorithm_citations(text: str) -> list[str]:
    """Anchors cited as ``docs/algorithm.md#dense-amf``, and as ``#windowed-amf`` after one on the same line."""
    cited = []
    for line in text.splitlines():
        first = line.find("algorithm.md#")
        if first >= 0:
            cited += CITATION.findall(line) + SHORT_CITATION.findall(line[first:])
    return cited


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def test_heading_anchors_and_citations_are_parsed_as_mkdocs_would():
    page = "# Title\n## Dense AMF\n### AMF loss: sums\n## Where it differs { #differences }\n```text\n# x\n```\n"
    assert heading_anchors(page) == {"title", "dense-amf", "amf-loss-sums", "differences"}
    line = "docs/algorithm.md#dense-amf and #windowed-amf, (d) # noqa, see plugins.md#an-amf-backend"
    assert algorithm_citations(line) == ["dense-amf", "windowed-amf"]


def test_algorithm_citations_name_sections_of_the_specification():
    anchors = heading_anchors(ALGORITHM.read_text())
    cited = {}
    for path in tracked_files():
        name, content = str(path.relative_to(ROOT)), path.read_bytes()
        if name.startswith(CITING) and b"\0" not in content:  # text files
            for anchor in algorithm_citations(content.decode(errors="replace")):
                cited.setdefault(anchor, []).append(name)
    assert cited, "nothing cites docs/algorithm.md"
    broken = {anchor: files for anchor, files in cited.items() if anchor not in anchors}
    assert not broken, f"citations of docs/algorithm.md sections that do not exist: {broken}; its anchors: {anchors}"


def test_no_tracked_file_refers_to_an_uppercase_algorithm_file():
    """The specification is docs/algorithm.md; nothing may point at another document by that name."""
    needle = ("ALGORITHM" + ".md").encode()
    offenders = [str(path.relative_to(ROOT)) for path in tracked_files() if needle in path.read_bytes()]
    assert not offenders, f"{offenders} mention {needle.decode()}; cite docs/algorithm.md instead"


class _Links(HTMLParser):
    """``src`` of images and ``href`` of links in an HTML page."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))


def _cli_command_paths() -> dict[str, list[str]]:
    """Each command path of the ``fastvmt`` app and its option flags, from the app itself."""
    import typer.main

    from fastvmt.cli import app

    out: dict[str, list[str]] = {}

    def walk(command, context):
        params = command.get_params(context)
        out[context.command_path] = [flag for p in params for flag in p.opts if flag.startswith("--")]
        if hasattr(command, "list_commands"):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                walk(sub, sub.context_class(sub, info_name=name, parent=context))

    root = typer.main.get_command(app)
    walk(root, root.context_class(root, info_name="fastvmt"))
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for package in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(package.split(".")[0]) is None or importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install -e '.[dev]' installs the docs toolchain)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"
    return out


def _text(html_path: Path) -> str:
    return re.sub(r"<[^>]+>", " ", html_path.read_text())


def test_site_builds_strictly_with_every_image_present(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for src in parser.images:
            target = urlsplit(src)
            if target.scheme or target.netloc:
                continue
            assert (page.parent / unquote(target.path)).resolve().is_file(), f"{page.relative_to(site)}: missing {src}"


def test_algorithm_anchors_match_the_built_page(site):
    ids = set(re.findall(r'<h[1-6] id="([^"]+)"', (site / "algorithm" / "index.html").read_text()))
    assert heading_anchors(ALGORITHM.read_text()) == ids


def _nav_pages(entries) -> list[str]:
    pages = []
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_every_page_is_in_the_navigation(site):
    import yaml

    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages, "add new pages to the nav of mkdocs.yml (and remove deleted ones)"


def test_cli_reference_covers_every_command_and_option(site):
    text = _text(site / "cli" / "index.html")
    commands = _cli_command_paths()
    for path in ("fastvmt transfer", "fastvmt demo", "fastvmt flow", "fastvmt eval", "fastvmt bench cost",
                 "fastvmt plugins", "fastvmt strategies", "fastvmt backends"):  # fmt: skip
        assert path in commands, f"the CLI has no {path!r}"
    for path, flags in commands.items():
        assert path in text, f"{path} is missing from the CLI reference"
        for flag in flags:
            assert flag in text, f"{path} {flag} is missing from the CLI reference"


def test_api_reference_documents_every_public_name(site):
    import fastvmt

    html = (site / "api" / "index.html").read_text()
    anchors = set(re.findall(r'id="(fastvmt\.[\w.]+)"', html))
    documented = {anchor.rsplit(".", 1)[-1] for anchor in anchors}
    missing = [name for name in fastvmt.__all__ if name != "__version__" and name not in documented]
    assert not missing, f"public names without API docs: {missing}"
    assert not re.search(r":(class|func|meth|mod|data|attr|exc):", _text(site / "api" / "index.html"))
