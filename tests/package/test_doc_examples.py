"""Docs that run: every Python and shell example in README.md and docs/*.md runs here, against the real
neurosel, so an example that stops working fails CI instead of a reader.

Every fenced block tagged `python`/`py` (run with `exec`) or `bash`/`sh`/`shell`/`console` (run with
bash; in a `console` block only the `$ ` lines are commands, the rest is shown output) is one test,
its id `FILE:LINE` (the line of the opening fence). A reader follows a page from the top, so the
Python blocks of one file share one namespace and all blocks of one file share one working directory,
run in page order; a test picked alone (`-k 'fingerprints.md:11'`) first runs the blocks above it.
Each file's working directory is a fresh copy of a prepared workspace holding the inputs the docs
name (`WORKSPACE` lists them), built here from the shipped demo corpus with the model the docs
name, all-MiniLM-L6-v2 (the packaged real weights, offline): real stores, not stand-ins.

A block is labelled by HTML comment lines directly above its fence (invisible on the rendered page):

- `<!-- docs-test: skip REASON -->`: not run, reported as skipped with REASON (a GPU, a cluster
  address, cloud credentials: what this machine cannot give). Keep these few.
- `<!-- docs-test: xfail REASON -->`: the doc promises what the code does not do yet; run as a strict
  xfail, so the test fails (XPASS) once the code does it and the label must go.
- `<!-- docs-test: slow -->`: runs, marked with the project's `slow` marker (`make test-fast` leaves
  it out).
- `<!-- docs-test: signature -->`: a Python block that writes out call signatures (docs/api.md; their
  parameters are checked against the code by tests/package/test_docs.py): its imports run and each
  signature's callable must exist, but nothing is called.

Blocks that only show output are tagged `text` (or `json`, ...) and are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
LANGUAGES["console"] = "console"  # shell too, but only its `$ ` lines are commands
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)[^`]*$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<verb>\S+)\s*(?P<reason>.*?)\s*-->\s*$")
VERBS = {"skip": True, "xfail": True, "slow": False, "signature": False}  # verb: needs a reason
SIGNATURE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)\(", re.M)
SHELL_TIMEOUT = 300
# The inputs the docs name, prepared in every working directory (see `workspace`).
WORKSPACE = (
    "reviews.csv (text,label: 40 reviews of each demo-corpus domain) and reviews.zarr, its "
    "all-MiniLM-L6-v2 store with label statistics (`neurosel extract reviews.csv --model all-MiniLM-L6-v2 "
    "--out reviews.zarr`, `neurosel stats reviews.zarr`); ../shared/datasets with 20 + 20 Amazon reviews "
    "per domain in the Blitzer format, and books.zarr, dvd.zarr, kitchen.zarr extracted from them as "
    "docs/datasets.md does; docs/results (the repository's recorded results)"
)


def doc_files() -> list[Path]:
    """README.md and every docs/*.md, found anew on each run so a new page is covered at once."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    """One runnable fenced block: where it is, how to run it, and its labels."""

    doc: Path
    line: int  # 1-based line of the opening fence
    language: str  # "python", "shell" or "console"
    code: str
    labels: dict[str, str] = field(default_factory=dict)  # verb -> reason

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT).as_posix()}:{self.line}"


def parse(doc: Path) -> tuple[list[Block], list[str]]:
    """The runnable blocks of a markdown file in page order, and its labelling problems (an unknown
    verb, a skip or xfail without a reason, a label that stands above no runnable block)."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    rel = doc.relative_to(ROOT).as_posix()
    blocks: list[Block] = []
    problems: list[str] = []
    pending: dict[str, str] = {}
    pending_line = 0
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        opening = FENCE.match(lines[i])
        if marker:
            verb, reason = marker.group("verb"), marker.group("reason")
            if verb not in VERBS:
                problems.append(
                    f"{rel}:{i + 1}: unknown docs-test label {verb!r}; use one of {sorted(VERBS)}"
                )
            elif VERBS[verb] and not reason:
                problems.append(f"{rel}:{i + 1}: docs-test {verb} needs a reason")
            pending[verb] = reason
            pending_line = pending_line or i + 1
            i += 1
            continue
        if not opening:
            if pending:
                problems.append(f"{rel}:{pending_line}: docs-test label not directly above a fence")
                pending, pending_line = {}, 0
            i += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        end = i + 1
        while end < len(lines) and not re.match(rf"^ *{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        language = LANGUAGES.get(opening.group("info").lower())
        if language is None:
            if pending:
                problems.append(f"{rel}:{pending_line}: docs-test label above a block that is not run")
        else:
            body = [line[min(indent, len(line) - len(line.lstrip(" "))) :] for line in lines[i + 1 : end]]
            blocks.append(Block(doc, i + 1, language, "\n".join(body) + "\n", pending))
            if "signature" in pending and language != "python":
                problems.append(f"{rel}:{pending_line}: docs-test signature labels a Python block only")
        pending, pending_line = {}, 0
        i = end + 1
    return blocks, problems


PARSED: dict[Path, list[Block]] = {}


def blocks_of(doc: Path) -> list[Block]:
    """The page's blocks as parsed at collection, so that the ids pytest holds stay the ones run
    even when the file is edited during the session."""
    if doc not in PARSED:
        PARSED[doc] = parse(doc)[0]
    return PARSED[doc]


def collect() -> list:
    """One pytest param per runnable block, with its skip/xfail/slow marks."""
    params = []
    for doc in doc_files():
        for block in blocks_of(doc):
            marks = []
            if "skip" in block.labels:
                marks.append(pytest.mark.skip(reason=f"{block.id}: {block.labels['skip']}"))
            if "xfail" in block.labels:
                marks.append(pytest.mark.xfail(reason=f"{block.id}: {block.labels['xfail']}", strict=True))
            if "slow" in block.labels:
                marks.append(pytest.mark.slow)
            params.append(pytest.param(block, id=block.id, marks=marks))
    return params


# --- the workspace -----------------------------------------------------------------------------------


def amazon_review(title: str, text: str) -> str:
    """One review in the Blitzer et al. file format that `read_domain("amazon", ...)` parses."""
    return f"<review>\n<title>\n{title}\n</title>\n<review_text>\n{text}\n</review_text>\n</review>\n"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template working directory with the inputs the docs name (`WORKSPACE`), small enough to
    build in seconds; its parent holds `shared/datasets`, which the docs reach as ../shared/datasets.
    Returns the template; each doc file runs in its own copy beside it."""
    import csv

    import neurosel
    from neurosel.experiments import demo_corpus, read_domain

    base = tmp_path_factory.mktemp("docs")
    template = base / "template"
    template.mkdir()
    corpus = demo_corpus()
    with open(template / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for texts, labels in corpus.values():
            writer.writerows(zip(texts[:40], labels[:40], strict=True))
    reviews = neurosel.extract(
        template / "reviews.csv", "all-MiniLM-L6-v2", template / "reviews.zarr", progress=False
    )
    neurosel.neuron_stats(reviews, progress=False)
    # a few reviews per Amazon domain, in the real files' layout (the real 2,000 take minutes to extract)
    data = base / "shared" / "datasets"
    sources = {
        "books": ("movies", 0),
        "dvd": ("movies", 20),
        "electronics": ("electronics", 0),
        "kitchen": ("kitchen", 0),
    }
    for domain, (source, start) in sources.items():
        folder = data / "amazon_multidomain_blitzer2007" / domain
        folder.mkdir(parents=True)
        texts, labels = corpus[source]
        for polarity in ("positive", "negative"):
            chosen = [t for t, label in zip(texts, labels, strict=True) if label == polarity][
                start : start + 20
            ]
            body = "".join(amazon_review(f"{domain} review {j}", text) for j, text in enumerate(chosen))
            (folder / f"{polarity}.review").write_text(f"<reviews>\n{body}</reviews>\n", encoding="utf-8")
    for domain in ("books", "dvd", "kitchen"):
        read = read_domain("amazon", domain, data)
        neurosel.extract(
            read.texts, "all-MiniLM-L6-v2", template / f"{domain}.zarr", labels=read.labels, progress=False
        )
    (template / "docs").mkdir()
    (template / "docs" / "results").symlink_to(ROOT / "docs" / "results", target_is_directory=True)
    return template


@dataclass
class Page:
    """A doc file as a reader follows it: one working directory, one namespace, blocks run so far."""

    workdir: Path
    namespace: dict = field(default_factory=lambda: {"__name__": "__main__"})
    done: set = field(default_factory=set)


PAGES: dict[Path, Page] = {}


def page_for(doc: Path, template: Path) -> Page:
    if doc not in PAGES:
        workdir = template.parent / doc.relative_to(ROOT).as_posix().replace("/", "-")
        shutil.copytree(template, workdir, symlinks=True)
        PAGES[doc] = Page(workdir)
    return PAGES[doc]


# --- running a block ---------------------------------------------------------------------------------


def shell_env() -> dict[str, str]:
    """The environment of a shell block: this interpreter's folder (the venv's bin, with the `neurosel`
    console script) first on PATH, and no network for Hugging Face."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    return env


def console_commands(code: str) -> str:
    """The commands of a `console` block: its `$ ` lines with their `\\` continuations."""
    commands, continuing = [], False
    for line in code.splitlines():
        if continuing or line.startswith("$ "):
            commands.append(line if continuing else line[2:])
            continuing = line.rstrip().endswith("\\")
    return "\n".join(commands) + "\n"


def run_shell(block: Block, workdir: Path) -> None:
    script = console_commands(block.code) if block.language == "console" else block.code
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=workdir, env=shell_env(),
        capture_output=True, text=True, timeout=SHELL_TIMEOUT,
    )  # fmt: skip
    print(done.stdout, end="")
    print(done.stderr, end="", file=sys.stderr)
    assert done.returncode == 0, (
        f"{block.id}: exit code {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def check_signatures(block: Block, namespace: dict) -> None:
    """Run the block's imports, then look each written-out callable up as a reader would type it."""
    statements = [s.strip() for s in re.split(r"\n(?=[A-Za-z_])", block.code) if s.strip()]
    checked = 0
    for statement in statements:
        if statement.startswith(("import ", "from ")):
            exec(compile(statement, block.id, "exec"), namespace)
            continue
        m = SIGNATURE.match(statement)
        assert m, f"{block.id}: a signature block holds imports and `name(params)` lines only: {statement!r}"
        target = eval(m.group("name"), namespace)
        assert callable(target), f"{block.id}: {m.group('name')} is not callable"
        checked += 1
    assert checked, f"{block.id}: labelled signature but writes out no signature"


def run_python(block: Block, namespace: dict) -> None:
    if "signature" in block.labels:
        check_signatures(block, namespace)
        return
    exec(compile(block.code, block.id, "exec"), namespace)


def run_block(block: Block, page: Page) -> None:
    page.done.add(block.line)
    if block.language == "python":
        run_python(block, page.namespace)
    else:
        run_shell(block, page.workdir)


def catch_up(block: Block, page: Page) -> None:
    """Run the blocks above `block` on its page that have not run in this session (a test selected
    alone), skipping those labelled skip and tolerating those labelled xfail."""
    for earlier in blocks_of(block.doc):
        if earlier.line >= block.line:
            return
        if earlier.line in page.done or "skip" in earlier.labels:
            continue
        try:
            run_block(earlier, page)
        except Exception as error:
            if "xfail" not in earlier.labels:
                raise AssertionError(
                    f"{block.id}: the block above it, {earlier.id}, failed: {error}"
                ) from error


def test_every_label_is_well_formed():
    """Every docs-test label names a known verb, a skip or xfail gives its reason, and each stands
    directly above a runnable block: a stray or mistyped label would silently run or skip the wrong
    thing."""
    problems = [problem for doc in doc_files() for problem in parse(doc)[1]]
    assert not problems, "\n".join(problems)


def test_the_docs_have_examples_to_run():
    """The collector finds the README's example (a broken parser must not pass by running nothing)."""
    ids = [param.id for param in collect()]
    assert any(i.startswith("README.md:") for i in ids) and len(ids) > 10, ids


@pytest.mark.parametrize("block", collect())
def test_doc_example_runs(block: Block, workspace: Path, monkeypatch: pytest.MonkeyPatch):
    """Run one block where a reader would: in its page's working directory, after the blocks above it."""
    page = page_for(block.doc, workspace)
    monkeypatch.chdir(page.workdir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    catch_up(block, page)
    run_block(block, page)


def test_console_blocks_run_only_their_commands():
    """Output lines in a `console` block are not commands; continued commands stay whole."""
    shown = "$ neurosel --help\nusage: neurosel ...\n$ echo a \\\n  b\na b\n"
    assert console_commands(shown) == "neurosel --help\necho a \\\n  b\n"


def test_labels_and_blocks_are_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A label applies to the fence right below it only; indented fences (in lists) are found and
    dedented; untagged and `text` blocks are not run."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    doc = tmp_path / "page.md"
    doc.write_text(
        "<!-- docs-test: skip needs a GPU -->\n```python\nx = 1\n```\n\n```text\nout\n```\n"
        "- item\n\n  ```bash\n  echo hi\n  ```\n<!-- docs-test: skip -->\nprose\n",
        encoding="utf-8",
    )
    blocks, problems = parse(doc)
    assert [(b.line, b.language, b.code, b.labels) for b in blocks] == [
        (2, "python", "x = 1\n", {"skip": "needs a GPU"}),
        (11, "shell", "echo hi\n", {}),
    ]
    assert problems == [
        "page.md:14: docs-test skip needs a reason",
        "page.md:14: docs-test label not directly above a fence",
    ]
