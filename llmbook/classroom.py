"""The classroom edition of the book: ``llmbook classroom student | check | grade`` (hand-written).

A teacher's copy of the book marks, inside the chapters' exported cells, the code a student
should write, with nbgrader's own markers (so ``nbgrader generate_assignment`` works on the same
notebooks) and one ``# TASK:`` line that says, in one line, what to write::

    def causal_mask(n_queries, n_keys=None, device=None):
        \"\"\"...\"\"\"
        n_queries = check_int(n_queries, "n_queries")
        ### BEGIN SOLUTION
        # TASK: the (n_queries, n_keys) boolean mask, True on and below the shifted diagonal
        ...the book's code...
        ### END SOLUTION

Each region lies inside one function or method (one region per function) and is listed in
``TASKS`` with the tests that cover it. ``tools/export.py`` leaves the marker lines out, so the
package never sees them.

    llmbook classroom student OUT_DIR   # student copy: regions -> raise NotImplementedError(...)
    llmbook classroom check 04          # in the student's copy: one line per task of chapter 04
    llmbook classroom grade FOLDER      # FOLDER/<student>/<NN_topic>.ipynb -> grades.csv

How a task is checked: the student's notebook is exported as ``tools/export.py`` does; for each
task, a copy of the installed package gets that chapter's module with the student's version of
the task and the book's version of every other task (so a mistake costs only its own task), and
the task's tests run in a ``pytest`` subprocess with a time limit, no network (sockets refused)
and capped output files. A task whose body still starts with its stub is reported "not written
yet" without running anything; tasks the student left as the book has them share one run.
"""

from __future__ import annotations

import argparse
import ast
import csv
import fnmatch
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TASKS",
    "Result",
    "Task",
    "add_parser",
    "check",
    "grade",
    "student_notebook",
    "write_student_copy",
]

BEGIN, END, TASK = "### BEGIN SOLUTION", "### END SOLUTION", "# TASK:"
STUB = 'raise NotImplementedError("task {id} ({name}): {text}")'
STUB_RE = re.compile(r"^task (\d\d\.\d+) \(")
PASSED, FAILED, NOT_WRITTEN, TIMED_OUT, ERROR = (
    "passed",
    "failed",
    "not written yet",
    "timed out",
    "error",
)
OUTPUT_LIMIT = 64 * 2**20  # bytes a checked submission may write to any one file


@dataclass(frozen=True)
class Task:
    """A function or method body a student writes: ``chapter`` ("04"), ``name`` (the exported
    function, or ``Class.method``), and ``tests``: patterns (fnmatch) of the test functions in
    ``tests/test_<module>.py`` that cover it."""

    chapter: str
    name: str
    tests: tuple[str, ...]

    @property
    def id(self) -> str:
        """``"04.2"``: the chapter and the task's place among the chapter's tasks."""
        same = [t for t in TASKS if t.chapter == self.chapter]
        return f"{self.chapter}.{same.index(self) + 1}"

    @property
    def label(self) -> str:
        return f"{self.id} {self.name}"


# In the order the regions appear in each chapter (a test checks it).
TASKS = [
    Task(
        "01",
        "pair_counts",
        ("test_pair_counts_and_merge_pair", "test_incremental_training_equals_naive_*"),
    ),
    Task(
        "01",
        "merge_pair",
        (
            "test_pair_counts_and_merge_pair",
            "test_classic_example_aaabdaaabac",
            "test_incremental_training_equals_naive_*",
            "test_tie_break_takes_the_smallest_pair",
            "test_layers_agree",
        ),
    ),
    Task(
        "01",
        "RegexBPE.encode_ordinary",
        (
            "test_classic_example_aaabdaaabac",
            "test_decode_encode_round_trip_any_unicode",
            "test_from_tiktoken_gives_identical_ids",
            "test_lone_surrogates_encode_as_in_tiktoken",
            "test_layers_agree",
        ),
    ),
    Task(
        "01",
        "_split_specials",
        (
            "test_training_layout_and_specials",
            "test_round_trip_with_special_tokens_allowed",
            "test_special_token_handling",
            "test_specials_outside_the_allowed_set_*",
            "test_from_tiktoken_gives_identical_ids",
        ),
    ),
    Task(
        "02",
        "SlidingWindowDataset.__getitem__",
        (
            "test_windows_are_slices_shifted_by_one",
            "test_every_token_is_covered_*",
            "test_indexing",
            "test_numpy_and_memmap_ids_*",
            "test_dataloader_shapes_and_shift",
            "test_token_file_windows_match_in_memory",
        ),
    ),
    Task("02", "random_batch", ("test_random_batch_*",)),
    Task(
        "03",
        "_position_ids",
        (
            "test_learned_positions_by_length_*",
            "test_learned_positions_broadcast_*",
            "test_too_long_*",
        ),
    ),
    Task(
        "03",
        "sinusoidal_positions",
        (
            "test_sinusoidal_matches_*",
            "test_sinusoidal_float32_*",
            "test_sinusoidal_first_row_*",
            "test_relative_offset_*",
            "test_offset_matrix_*",
            "test_dot_product_depends_*",
            "test_sinusoidal_dtype_device_and_empty",
        ),
    ),
    Task("04", "causal_mask", ("test_causal_mask_*",)),
    Task(
        "04",
        "scaled_dot_product_attention",
        (
            "test_matches_torch_*",
            "test_is_causal_follows_*",
            "test_more_keys_than_queries_*",
            "test_additive_minus_inf_*",
            "test_leading_shapes",
            "test_batch_axes_broadcast",
            "test_fully_masked_row_*",
            "test_weights_*",
            "test_dropout_zero*",
            "test_dropout_zeroes_*",
            "test_dropout_is_reproducible*",
            "test_empty_queries_*",
            "test_check_false_*",
        ),
    ),
    Task(
        "04",
        "CausalSelfAttention.forward",
        (
            "test_causal_self_attention_*",
            "test_without_the_mask_*",
            "test_prefix_gives_*",
            "test_module_matches_*",
            "test_module_accepts_*",
            "test_module_dropout_*",
            "test_module_works_*",
        ),
    ),
    Task(
        "05",
        "repeat_kv",
        (
            "test_repeat_kv_maps_query_head_to_its_group",
            "test_fused_equals_naive_path",
            "test_fused_path_shares_kv_heads_with_enable_gqa",
        ),
    ),
    Task(
        "05",
        "rotate_pairs",
        (
            "test_rotate_pairs_is_a_quarter_turn",
            "test_rope_preserves_norms",
            "test_rope_scores_depend_only_on_the_offset",
            "test_interleaved_layout_equals_complex_multiplication",
            "test_rope_equals_hugging_face_llama",
        ),
    ),
    Task(
        "05",
        "apply_rope",
        (
            "test_apply_rope_shapes_and_errors",
            "test_rope_preserves_norms",
            "test_rope_scores_depend_only_on_the_offset",
            "test_rope_at_position_zero_*",
            "test_interleaved_layout_equals_complex_multiplication",
            "test_rope_equals_hugging_face_llama",
            "test_positions_per_sequence",
            "test_bfloat16_matches_hugging_face_llama_attention",
        ),
    ),
    Task(
        "05",
        "MultiHeadProjections.project",
        (
            "test_naive_equals_efficient",
            "test_gqa_equals_mha_with_repeated_kv_projections",
            "test_plain_mha_matches_a_manual_computation",
            "test_mqa_matches_a_manual_computation",
            "test_equals_torch_multihead_attention",
            "test_attention_equals_hugging_face_llama_attention",
        ),
    ),
    Task("06", "FeedForward.forward", ("test_feed_forward_*", "test_activations_are_told_apart")),
    Task("06", "swiglu_hidden_size", ("test_swiglu_hidden_size*",)),
    Task("06", "SwiGLU.forward", ("test_swiglu_matches_*", "test_swiglu_formula_*")),
    Task("06", "RMSNorm.forward", ("test_rms_norm_*",)),
    Task(
        "07",
        "Decoder.forward",
        (
            "test_forward_shapes_and_loss",
            "test_causal",
            "test_explicit_positions",
            "test_untrained_loss_near_ln_vocab",
            "test_tied_weights_are_shared",
            "test_compile_fullgraph",
        ),
    ),
    Task(
        "07",
        "init_weights",
        ("test_init_std", "test_init_weights_reinitialises", "test_untrained_loss_near_ln_vocab"),
    ),
    Task("07", "greedy_generate", ("test_greedy_*",)),
    Task("08", "cross_entropy", ("test_cross_entropy_*",)),
    Task("08", "AdamW.step", ("test_adamw_matches_torch",)),
    Task("08", "lr_schedule", ("test_lr_schedule_shape",)),
    Task("08", "clip_grad_norm", ("test_clip_grad_norm_matches_torch",)),
    Task("09", "top_k_filter", ("test_top_k_keeps_exactly_k_as_hf", "test_chain_order_as_hf_*")),
    Task("09", "top_p_filter", ("test_top_p_keeps_the_smallest_set_*", "test_chain_order_as_hf_*")),
    Task(
        "09",
        "sample_next",
        (
            "test_generate_cached_equals_uncached",
            "test_greedy_is_argmax_*",
            "test_temperature_to_zero_approaches_greedy",
            "test_same_seed_same_output",
            "test_chain_order_as_hf_*",
        ),
    ),
    Task(
        "09",
        "KVCache.update",
        (
            "test_cached_logits_equal_recomputed",
            "test_rope_offsets_are_the_cache_length",
            "test_generate_cached_equals_uncached",
            "test_left_padded_batch_equals_each_prompt_alone",
            "test_kv_cache_memory_and_overflow",
        ),
    ),
]


@dataclass
class Result:
    """The outcome of one task: ``status`` is one of passed, failed, not written yet, timed
    out, error; ``detail`` is one line (the failing test and its message, say)."""

    task: Task
    status: str
    detail: str = ""

    def line(self) -> str:
        if self.status == PASSED:
            return f"{self.task.label:<40} {self.status} ({self.detail})"
        return f"{self.task.label:<40} {self.status}" + (f": {self.detail}" if self.detail else "")


# ---------------------------------------------------------------------------- the notebooks


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def regions(lines: list[str], where: str) -> list[tuple[int, int, str]]:
    """``(begin, end, task_text)`` line indices of each marked region of a cell."""
    found, begin = [], None
    for index, line in enumerate(lines):
        text = line.strip()
        if text == BEGIN:
            if begin is not None:
                raise ValueError(f"{where}: {BEGIN!r} inside a task")
            nxt = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if not nxt.startswith(TASK):
                raise ValueError(f"{where}: {BEGIN!r} must be followed by a '{TASK} ...' line")
            begin = index
        elif text == END:
            if begin is None:
                raise ValueError(f"{where}: {END!r} outside a task")
            task_text = lines[begin + 1].strip()[len(TASK) :].strip()
            found.append((begin, index, task_text))
            begin = None
    if begin is not None:
        raise ValueError(f"{where}: {BEGIN!r} without {END!r}")
    return found


def without_markers(lines: list[str], where: str) -> list[str]:
    """A cell's lines less the marker lines (what tools/export.py does)."""
    drop = set()
    for begin, end, _ in regions(lines, where):
        drop |= {begin, begin + 1, end}
    return [line for index, line in enumerate(lines) if index not in drop]


def default_exp(cells: list[dict]) -> str | None:
    for cell in cells:
        for line in cell_source(cell).splitlines():
            match = re.match(r"^#\|\s*default_exp\s+([A-Za-z_]\w*)\s*$", line.strip())
            if cell.get("cell_type") == "code" and match:
                return match.group(1)
    return None


def export_notebook(notebook: dict, chapter: str) -> str:
    """The module text tools/export.py writes for a notebook (``chapter``: its path in the book)."""
    blocks = []
    for number, cell in enumerate(notebook["cells"]):
        lines = cell_source(cell).splitlines()
        if cell.get("cell_type") == "code" and lines and re.match(r"^#\|\s*export\s*$", lines[0]):
            kept = without_markers(lines[1:], f"{chapter} cell {number}")
            blocks.append("\n".join(kept).strip("\n"))
    body = "\n\n\n".join(blocks)
    names = []
    for node in ast.parse(body).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
    names = [n for n in names if not n.startswith("_")]
    all_line = "__all__ = [" + ", ".join(f'"{n}"' for n in names) + "]\n"
    if len(all_line) > 100:
        all_line = "__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]\n"
    header = f"# Generated from {chapter} by tools/export.py; do not edit, edit the chapter.\n"
    return header + "\n" + body + "\n\n\n" + all_line


def definitions(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level functions and classes' methods by qualified name (``Class.method``)."""
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = item
    return found


def enclosing(tree: ast.Module, line: int) -> str | None:
    """The qualified name of the function or method around 1-based ``line``."""
    for name, node in definitions(tree).items():
        if node.lineno <= line <= node.end_lineno:
            return name
    return None


# ---------------------------------------------------------------------------- student


def chapter_of(path: Path) -> str:
    return path.name[:2]


def student_notebook(notebook: dict, chapter: str, where: str = "") -> dict:
    """A copy of a chapter notebook with every marked region replaced by its stub, outputs cleared."""
    notebook = json.loads(json.dumps(notebook))
    for number, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
        lines = cell_source(cell).split("\n")
        found = regions(lines, f"{where} cell {number}")
        if not found:
            continue
        tree = ast.parse(cell_source(cell))
        for begin, end, text in reversed(found):
            name = enclosing(tree, begin + 1)
            task = find_task(chapter, name, f"{where} cell {number} line {begin + 1}")
            indent = re.match(r"\s*", lines[begin]).group(0)
            stub = STUB.format(id=task.id, name=task.name, text=text.replace('"', "'"))
            lines[begin : end + 1] = [indent + stub]
        source = "\n".join(lines)
        cell["source"] = source.splitlines(keepends=True)
    return notebook


def find_task(chapter: str, name: str | None, where: str) -> Task:
    for task in TASKS:
        if task.chapter == chapter and task.name == name:
            return task
    raise ValueError(
        f"{where}: a marked region in {name or 'no function'!r} that TASKS does not list; "
        "add it to llmbook/classroom.py TASKS (a region lies inside a function or method)"
    )


def write_student_copy(book: Path, out: Path) -> list[Path]:
    """Write the student copy of ``book`` (a folder with chapters/ and tests/) to ``out``.

    Notebooks: regions replaced by stubs, outputs cleared. Left out: chapters/solutions/, the
    chapters' jupytext sources ``NN_topic.py`` (they hold the solutions) and checkpoints. Kept: tests/,
    README.md and every other file under chapters/. Returns the notebooks written."""
    from llmbook.files import atomic_write

    book, out = Path(book), Path(out)
    chapters = book / "chapters"
    if not chapters.is_dir():
        raise ValueError(f"book {str(book)!r} has no chapters/ folder; pass --book")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"OUT_DIR {str(out)!r} is not empty; choose a new folder")
    if out.resolve().is_relative_to(book.resolve()):
        raise ValueError(f"OUT_DIR {str(out)!r} lies inside the book; choose a folder outside it")
    written = []
    skip = {"solutions", ".ipynb_checkpoints", "__pycache__", ".hypothesis"}
    sources = [book / "README.md", *sorted(chapters.rglob("*")), *sorted(book.glob("tests/**/*"))]
    for path in sources:
        rel = path.relative_to(book)
        if not path.is_file() or skip & set(rel.parts):
            continue
        if rel.parts[0] == "chapters" and re.match(r"\d\d_.*\.py$", path.name):
            continue  # a chapter's jupytext source: it holds the solutions
        if rel.parts[0] == "chapters" and path.suffix == ".ipynb":
            notebook = json.loads(path.read_text(encoding="utf-8"))
            notebook = student_notebook(notebook, chapter_of(path), rel.as_posix())
            data = (json.dumps(notebook, indent=1, ensure_ascii=False) + "\n").encode()
            written.append(out / rel)
        else:
            data = path.read_bytes()
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / rel, "wb") as f:
            f.write(data)
    return written


# ---------------------------------------------------------------------------- check

SITECUSTOMIZE = '''\
"""No network while a submission is checked (written by llmbook.classroom)."""
import socket


def _refuse(*args, **kwargs):
    raise OSError("network access is switched off while llmbook classroom checks a submission")


socket.socket.connect = socket.socket.connect_ex = _refuse
socket.create_connection = socket.getaddrinfo = _refuse
'''


def book_notebook(book: Path, chapter: str) -> Path:
    """The book's notebook of ``chapter`` ("4", "04", "04_attention" or a module name)."""
    notebooks = sorted(Path(book, "chapters").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ValueError(f"book {str(book)!r} has no chapters/NN_topic.ipynb; pass --book")
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if chapter.zfill(2) == path.name[:2] or chapter in (path.stem, default_exp(cells)):
            return path
    names = ", ".join(sorted({t.chapter for t in TASKS}))
    raise ValueError(
        f"chapter {chapter!r} not found in {str(book)!r}; chapters with tasks: {names}"
    )


def test_ids(test_file: Path, task: Task) -> list[str]:
    """Node ids (``file::name`` or ``file::Class::name``) of the test functions of a task."""
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names += [f"{node.name}::{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)]
    chosen = [n for n in names if any(fnmatch.fnmatch(n.split("::")[-1], p) for p in task.tests)]
    return [f"{test_file.name}::{n}" for n in chosen]


def is_stub(node: ast.AST, task: Task) -> bool:
    """True when the function still raises its stub before it could return."""
    for statement in node.body:
        if isinstance(statement, ast.Raise) and isinstance(statement.exc, ast.Call):
            args = statement.exc.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                match = STUB_RE.match(args[0].value)
                if match and match.group(1) == task.id:
                    return True
        if any(isinstance(n, (ast.Return, ast.Yield)) for n in ast.walk(statement)):
            return False
    return False


def swapped(student: str, reference: str, names: list[str]) -> str:
    """The student's module with the functions ``names`` taken from the reference module."""
    lines = student.splitlines(keepends=True)
    mine, theirs = definitions(ast.parse(student)), definitions(ast.parse(reference))
    ref_lines = reference.splitlines(keepends=True)
    edits = []
    for name in names:
        node, ref = mine[name], theirs[name]
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        ref_start = min([ref.lineno] + [d.lineno for d in ref.decorator_list]) - 1
        text = textwrap.dedent("".join(ref_lines[ref_start : ref.end_lineno]))
        edits.append((start, node.end_lineno, textwrap.indent(text, " " * node.col_offset)))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    return "".join(lines)


def check(
    chapter: str,
    book: str | Path = ".",
    notebook: str | Path | None = None,
    timeout: float = 300.0,
    tasks: list[str] | None = None,
) -> list[Result]:
    """Check the tasks of ``chapter`` in ``notebook`` (default: the book's own notebook).

    ``book`` holds chapters/ and tests/ (the tests that are run); the book's version of each
    task comes from the installed ``llmbook`` package. ``timeout``: seconds per pytest run.
    ``tasks``: ids or names to check (default: all of the chapter's)."""
    import llmbook

    book = Path(book)
    book_nb = book_notebook(book, str(chapter))
    number, module = (
        chapter_of(book_nb),
        default_exp(json.loads(book_nb.read_text(encoding="utf-8"))["cells"]),
    )
    chosen = [t for t in TASKS if t.chapter == number]
    if not chosen:
        raise ValueError(
            f"chapter {number} has no tasks yet; chapters with tasks: "
            + ", ".join(sorted({t.chapter for t in TASKS}))
        )
    if tasks:
        unknown = set(tasks) - {t.id for t in chosen} - {t.name for t in chosen}
        if unknown:
            raise ValueError(
                f"tasks {sorted(unknown)} are not tasks of chapter {number}; "
                f"its tasks: {', '.join(t.label for t in chosen)}"
            )
        chosen = [t for t in chosen if t.id in tasks or t.name in tasks]
    test_file = book / "tests" / f"test_{module}.py"
    if not test_file.is_file():
        raise ValueError(f"{str(test_file)!r} not found: the book's tests/ are needed to check")
    package = Path(llmbook.__file__).parent
    reference = (package / f"{module}.py").read_text(encoding="utf-8")
    notebook = book_nb if notebook is None else Path(notebook)
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        student = export_notebook(nb, f"chapters/{book_nb.name}")
        mine, theirs = definitions(ast.parse(student)), definitions(ast.parse(reference))
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, RecursionError) as error:
        detail = one_line(f"cannot read the exported code of {notebook}: {error!r}")
        return [Result(t, ERROR, detail) for t in chosen]

    results: dict[Task, Result] = {}
    runs: list[list[Task]] = []
    same: list[Task] = []
    for task in chosen:
        node = mine.get(task.name)
        if task.name not in theirs:
            results[task] = Result(task, ERROR, f"the installed llmbook has no {task.name}")
        elif node is None:
            results[task] = Result(task, FAILED, f"{task.name} is missing from the exported cells")
        elif is_stub(node, task):
            results[task] = Result(task, NOT_WRITTEN)
        elif ast.dump(node) == ast.dump(theirs[task.name]):
            same.append(task)
        else:
            runs.append([task])
    if same:
        runs.append(same)
    others = [t.name for t in TASKS if t.chapter == number and t.name in mine and t.name in theirs]
    with tempfile.TemporaryDirectory(prefix="llmbook-check-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(book / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (tmp / "site").mkdir()
        (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        for index, group in enumerate(runs):
            own = [t.name for t in group]
            text = swapped(student, reference, [n for n in others if n not in own])
            run_dir = tmp / f"run{index}"
            shutil.copytree(
                package, run_dir / "llmbook", ignore=shutil.ignore_patterns("__pycache__")
            )
            (run_dir / "llmbook" / f"{module}.py").write_text(text, encoding="utf-8")
            ids = {t: test_ids(tmp / "tests" / test_file.name, t) for t in group}
            results.update(run_tests(tmp, run_dir, ids, timeout))
    return [results[t] for t in chosen]


def run_tests(tmp: Path, run_dir: Path, ids: dict[Task, list[str]], timeout: float) -> dict:
    """Run the tests of some tasks in one pytest subprocess; a Result per task."""
    xml = run_dir / "junit.xml"
    nodes = sorted({f"tests/{n}" for names in ids.values() for n in names})
    command = [sys.executable, "-m", "pytest", *nodes, "-q", "-s", "-p", "no:cacheprovider"]
    command += ["-p", "no:nbval", "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp)]
    command += ["--junitxml", str(xml), "-o", "junit_logging=no", "-W", "ignore"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(run_dir), str(tmp / "site")]),
        PYTHONDONTWRITEBYTECODE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TMPDIR=str(run_dir),
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    limits = {}
    if os.name == "posix":
        limits = {"start_new_session": True, "preexec_fn": limit_output}
    stderr_path = run_dir / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            **limits,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            return {t: Result(t, TIMED_OUT, f"its tests ran over {timeout:g} s") for t in ids}
    if not xml.exists():
        tail = stderr_path.read_bytes()[-2000:].decode(errors="replace").strip().splitlines()
        why = tail[-1] if tail else f"pytest exited with status {process.returncode}"
        return {t: Result(t, ERROR, one_line(f"the check crashed: {why}")) for t in ids}
    return read_junit(xml, ids)


def limit_output() -> None:  # runs in the child before pytest starts (POSIX)
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


def stop(process: subprocess.Popen) -> None:
    """Kill a timed-out check and everything it started (its own process group on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass
    process.wait()


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_junit(xml: Path, ids: dict[Task, list[str]]) -> dict:
    """A Result per task from pytest's JUnit XML report."""
    cases = ET.parse(xml).getroot().iter("testcase")
    outcomes: dict[str, list[tuple[str, str]]] = {}  # test function -> [(kind, message)]
    broken = None
    for case in cases:
        name = case.get("name", "").split("[")[0]
        problems = [(c.tag, c.get("message", "")) for c in case if c.tag in ("failure", "error")]
        if not case.get("classname"):  # a collection error: the module did not import
            lines = [ln.strip() for ln in (case.findtext("error") or "").splitlines()]
            errors = [ln[1:] for ln in lines if ln.startswith("E ")] or [ln for ln in lines if ln]
            broken = one_line("the module does not import: " + (errors or ["?"])[-1].strip())
            continue
        kind = "skipped" if case.find("skipped") is not None else "passed"
        for tag, message in problems:
            kind = tag
            outcomes.setdefault(name, []).append((kind, f"{case.get('name')}: {message}"))
        if not problems:
            outcomes.setdefault(name, []).append((kind, ""))
    results = {}
    for task, nodes in ids.items():
        seen = [o for n in nodes for o in outcomes.get(n.split("::")[-1], [])]
        failures = [m for kind, m in seen if kind in ("failure", "error")]
        passed = sum(kind == "passed" for kind, _ in seen)
        if broken is not None:
            results[task] = Result(task, ERROR, broken)
        elif any(f"NotImplementedError: task {task.id} " in m for m in failures):
            results[task] = Result(task, NOT_WRITTEN)
        elif failures:
            more = f" (and {len(failures) - 1} more failing)" if len(failures) > 1 else ""
            results[task] = Result(task, FAILED, one_line(failures[0].splitlines()[0]) + more)
        elif passed:
            results[task] = Result(task, PASSED, f"{passed} tests")
        else:
            results[task] = Result(task, ERROR, "none of its tests ran")
    return results


# ---------------------------------------------------------------------------- grade


def grade(
    folder: str | Path,
    book: str | Path = ".",
    out: str | Path | None = None,
    timeout: float = 300.0,
) -> list[dict]:
    """Check every ``FOLDER/<student>/<NN_topic>.ipynb``; write a CSV of student x task.

    Each cell is a status (passed, failed, not written yet, timed out, error, missing); the
    ``passed`` column counts passed tasks. Returns the rows (dicts). ``out`` default:
    ``FOLDER/grades.csv``."""
    from llmbook.files import atomic_write

    folder = Path(folder)
    students = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not students:
        raise ValueError(f"FOLDER {str(folder)!r} holds no <student>/ folders to grade")
    submitted = {
        s.name: {chapter_of(p): p for p in sorted(s.glob("[0-9][0-9]_*.ipynb"))} for s in students
    }
    chapters = sorted({c for subs in submitted.values() for c in subs} & {t.chapter for t in TASKS})
    if not chapters:
        raise ValueError(f"FOLDER {str(folder)!r} holds no notebook of a chapter with tasks")
    columns = [t.label for t in TASKS if t.chapter in chapters]
    rows = []
    for name, subs in submitted.items():
        row = {"student": name} | dict.fromkeys(columns, "missing")
        for chapter in chapters:
            if chapter not in subs:
                continue
            start = time.monotonic()
            results = check(chapter, book, subs[chapter], timeout)
            for result in results:
                row[result.task.label] = result.status
                print(f"{name} {result.line()}", flush=True)
            print(
                f"{name}: chapter {chapter} checked in {time.monotonic() - start:.1f} s", flush=True
            )
        row["passed"] = sum(row[c] == PASSED for c in columns)
        rows.append(row)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["student", *columns, "passed"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out = folder / "grades.csv" if out is None else Path(out)
    with atomic_write(out, "w", encoding="utf-8", newline="") as f:
        f.write(text.getvalue())
    return rows


# ---------------------------------------------------------------------------- command line


def add_parser(subparsers) -> None:
    """``llmbook classroom student | check | grade`` (called by llmbook/cli.py)."""
    p = subparsers.add_parser(
        "classroom",
        help="student copies, checks and grading of the book's exercises",
        description="Teach with the book: write a student copy with the marked code taken out, "
        "check a student's chapter against its tests, grade a folder of submissions.",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = sub.add_parser("student", help="write a student copy of the book")
    s.add_argument("out_dir", type=Path, help="new folder for the student copy")
    s.add_argument("--book", type=Path, default=Path("."), help="the book (with chapters/)")
    s.set_defaults(func=run_student)
    c = sub.add_parser("check", help="check your tasks of one chapter (run in your copy)")
    c.add_argument("chapter", help="chapter number (04) or name (04_attention, attention)")
    c.add_argument("--book", type=Path, default=Path("."), help="your copy (chapters/, tests/)")
    c.add_argument(
        "--notebook",
        type=Path,
        default=None,
        help="notebook to check (default: the chapter's notebook in --book)",
    )
    c.add_argument("--task", action="append", default=None, help="only this task (id or name)")
    c.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    c.set_defaults(func=run_check)
    g = sub.add_parser("grade", help="grade FOLDER/<student>/<NN_topic>.ipynb into a CSV")
    g.add_argument("folder", type=Path, help="one sub-folder per student")
    g.add_argument("--book", type=Path, default=Path("."), help="the book whose tests/ grade")
    g.add_argument("--out", type=Path, default=None, help="CSV to write (FOLDER/grades.csv)")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    g.set_defaults(func=run_grade)


def run_student(args: argparse.Namespace) -> int:
    written = write_student_copy(args.book, args.out_dir)
    n_tasks = len(
        {(t.chapter, t.name) for t in TASKS if any(p.name[:2] == t.chapter for p in written)}
    )
    print(f"wrote a student copy of {len(written)} notebooks ({n_tasks} tasks) to {args.out_dir}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    results = check(args.chapter, args.book, args.notebook, args.timeout, args.task)
    for result in results:
        print(result.line(), flush=True)
    counts = {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, NOT_WRITTEN)}
    print(f"{len(results)} tasks: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0 if counts[PASSED] == len(results) else 1


def run_grade(args: argparse.Namespace) -> int:
    rows = grade(args.folder, args.book, args.out, args.timeout)
    print(f"graded {len(rows)} students -> {args.out or Path(args.folder) / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="llmbook")
    add_parser(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args()
    sys.exit(arguments.func(arguments))
