"""The classroom edition of the book (hand-written; the exercises of chapters 01-09).

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

The command line is ``llmbook classroom`` (``llmbook/cli/classroom.py``):

    llmbook classroom student OUT_DIR   # student copy: regions -> raise NotImplementedError(...)
    llmbook classroom check 04          # in the student's copy: one line per task of chapter 04
    llmbook classroom grade FOLDER      # FOLDER/<student>/<NN_topic>.ipynb -> grades.csv

How a task is checked: the student's notebook is exported as ``tools/export.py`` does; for each
task, a copy of the installed package gets that chapter's module with the student's version of
the task and the book's version of every other task (so a mistake costs only its own task), and
the task's tests run in a ``pytest`` subprocess with a time limit, no network (sockets refused)
and capped output files. A task whose body still starts with its stub is reported "not written
yet" without running anything; tasks the student left as the book has them share one run.

``tasks.py``: the table of tasks. ``notebooks.py``: the markers, the export of a notebook and
the student notebook. ``student.py``: the student copy (its README, tests and settings).
``checker.py``: checking a chapter's tasks, a result per task; ``report.py``: the pytest plugin
that tells the checker what failed, where and by how much. ``grader.py``: checking a folder of
submissions, students in parallel, into a CSV of statuses and reasons.
"""

from llmbook.classroom.checker import ERROR, FAILED, NOT_WRITTEN, PASSED, TIMED_OUT, Result, check
from llmbook.classroom.grader import grade
from llmbook.classroom.notebooks import student_notebook
from llmbook.classroom.student import write_student_copy
from llmbook.classroom.tasks import TASKS, Task

__all__ = [
    "ERROR",
    "FAILED",
    "NOT_WRITTEN",
    "PASSED",
    "TASKS",
    "TIMED_OUT",
    "Result",
    "Task",
    "check",
    "grade",
    "student_notebook",
    "write_student_copy",
]
