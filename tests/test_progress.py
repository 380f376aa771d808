"""What a person watching a run sees: task groups with planned totals, epochs, ETAs, and plain
timestamped lines when there is no terminal (a batch job's log)."""

import io
import json
import re
import time

from rich.console import Console

from streamal.runtime.progress import FAILURES_SHOWN, RunProgress
from streamal.runtime.progress.groups import GroupBook
from streamal.runtime.progress.lines import duration
from streamal.runtime.timeline import TIMEOUT, TaskRecord
from streamal.train.epoch_notes import note_epoch

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def record(task_id, stage, status="running", pool="sim", samples=10, **info):
    now = time.time()
    return TaskRecord(
        id=task_id,
        name=f"{stage}/{task_id}",
        pool=pool,
        stage=stage,
        attempt=1,
        submitted=now,
        started=now,
        ended=now,
        returned=now,
        status=status,
        error="Traceback ...\nValueError: bad sample" if status != "done" else None,
        info={"samples": samples, **info},
    )


def log_progress(tmp_path, interval_s=30.0):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    progress = RunProgress(
        ("sim", "train"), run_dir=tmp_path, interval_s=interval_s, console=console
    )
    return progress, out


def test_planned_totals_do_not_move_backwards():
    book = GroupBook()
    book.plan("sim", "S1", tasks=4, samples=40)
    seen = []
    for i in range(4):
        g = book.submitted(record(i, "S1"))
        seen.append((g.total_tasks, g.planned_samples, g.fraction()))
    for i in range(4):
        g, over = book.finished(record(i, "S1", "done"))
        seen.append((g.total_tasks, g.planned_samples, g.fraction()))
    assert {s[:2] for s in seen} == {(4, 40)}  # the totals were known before the first task
    fractions = [s[2] for s in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert over and not g.active and g.eta(time.time()) == 0.0


def test_a_retry_is_not_a_finished_task_and_a_split_chunk_adds_tasks():
    book = GroupBook()
    book.plan("sim", "S0", tasks=1, samples=8)
    book.submitted(record(0, "S0", samples=8))
    g, over = book.finished(record(0, "S0", "retried", samples=8))
    assert not over and g.ended == 0 and g.retried == 1
    g, over = book.finished(record(0, "S0", "failed", samples=8))  # then split in two pieces
    assert over is False or g.total_tasks == 1
    for i in (1, 2):
        book.submitted(record(i, "S0", samples=4))
    for i in (1, 2):
        g, over = book.finished(record(i, "S0", "done", samples=4))
    assert over and g.total_tasks == 3 and g.samples_done == 8 and g.failed == 1


def test_eta_from_the_measured_rate():
    book = GroupBook()
    g = book.plan("sim", "S1", tasks=10, samples=100)
    g.created = time.time() - 20.0  # 20 s in, 25 samples done: 60 s left
    for i in range(10):
        book.submitted(record(i, "S1"))
    g.samples_done, g.ended = 25, 2
    assert abs(g.eta(time.time()) - 60.0) < 1.0
    assert duration(61) == "1 min 01 s" and duration(None) == "?"


def test_a_training_is_followed_epoch_by_epoch(tmp_path):
    book = GroupBook(tmp_path)
    folder = tmp_path / "checkpoints" / "T1"
    folder.mkdir(parents=True)
    g = book.submitted(
        record(0, "T1", pool="train", checkpoints="checkpoints/T1", epochs=30, samples=900)
    )
    assert g.training and g.epoch_summary() == "starting, 30 epochs" and g.eta(0) is None
    note_epoch(
        folder,
        {
            "epoch": 11,
            "epoch_s": 2.0,
            "train_loss": 0.4123,
            "val_score": 0.5,
            "val_accuracy": 0.875,
        },
        30,
    )
    assert book.poll(g) and not book.poll(g)  # a new epoch once
    assert g.epoch_summary() == "epoch 12/30, loss 0.4123, val score 0.5, val accuracy 0.875"
    assert g.fraction() == 12 / 30 and g.eta(0) == 36.0  # 18 epochs of 2 s


def test_without_a_terminal_the_log_tells_the_story(tmp_path):
    progress, out = log_progress(tmp_path, interval_s=0.5)
    assert progress.mode == "log"
    folder = tmp_path / "checkpoints" / "T0"
    folder.mkdir(parents=True)
    progress.start()
    try:
        progress.plan("sim", "S0", tasks=2, samples=20)
        for i in range(2):
            progress.submitted(record(i, "S0"))
        progress.finished(record(0, "S0", "done"))
        progress.finished(record(1, "S0", "done"))
        progress.submitted(
            record(2, "T0", pool="train", checkpoints="checkpoints/T0", epochs=5, samples=20)
        )
        note_epoch(folder, {"epoch": 2, "epoch_s": 0.5, "train_loss": 1.25, "val_score": 0.75}, 5)
        time.sleep(2.0)  # the ticker reads the epoch and prints a status line
        progress.finished(record(2, "T0", "done", pool="train"))
    finally:
        progress.stop()
    text = out.getvalue()
    lines = text.splitlines()
    assert all(STAMP.match(line) for line in lines), text
    assert "sim   S0: started, 20 samples in 2 tasks" in text
    assert "sim   S0: ended, 20/20 samples" in text
    assert "train T0: training started, 5 epochs" in text
    assert "T0: epoch 3/5, loss 1.25, val score 0.75, 0.5 s/epoch, ETA 1 s" in text
    assert "train T0: training ended" in text
    assert "\x1b[" not in text  # no colour codes in a log file


def test_failures_are_shown_at_once_then_only_counted(tmp_path):
    progress, out = log_progress(tmp_path)
    progress.plan("sim", "S1", tasks=20, samples=200)
    for i in range(20):
        progress.submitted(record(i, "S1"))
    for i in range(FAILURES_SHOWN + 3):
        progress.finished(record(i, "S1", "failed" if i % 2 else TIMEOUT))
    text = out.getvalue()
    assert text.count("ValueError: bad sample") == FAILURES_SHOWN
    assert "later ones are counted" in text
    assert "S1: task S1/0 attempt 1 timeout: ValueError: bad sample" in text


def test_a_terminal_gets_live_rows(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = RunProgress(("sim", "train"), run_dir=tmp_path, console=console, title="demo")
    assert progress.mode == "live"
    progress.plan("sim", "S1", tasks=4, samples=40)
    progress.submitted(record(0, "S1"))
    progress.finished(record(0, "S1", "done"))
    console.print(progress._render())
    frame = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert "demo running for" in frame
    assert "S1" in frame and "10/40 samples" in frame and "ETA" in frame
    assert "train waiting" in frame


def test_disabled_progress_says_nothing(tmp_path):
    out = io.StringIO()
    progress = RunProgress(("sim",), enabled=False, console=Console(file=out, force_terminal=True))
    progress.start()
    progress.submitted(record(0, "S0"))
    progress.finished(record(0, "S0", "failed"))
    progress.stop()
    assert out.getvalue() == ""


def test_epoch_notes_survive_a_missing_or_torn_file(tmp_path):
    from streamal.train.epoch_notes import latest_epoch

    assert latest_epoch(tmp_path) is None
    (tmp_path / "epoch.json").write_text('{"epoch": 3')
    assert latest_epoch(tmp_path) is None
    note_epoch(tmp_path, {"epoch": 4}, 9)
    assert json.loads((tmp_path / "epoch.json").read_text()) == {"epoch": 4, "epochs": 9}
