"""A small discrete-event engine: pools of workers, tasks that occupy them, processes that wait.

Processes are generators that yield an :class:`Event` (a :class:`Task`, :meth:`Engine.all_of`,
:meth:`Engine.any_of`, :meth:`Engine.spawn`, :meth:`Engine.signal`) and are resumed with its
value, as a coroutine is resumed by ``await``. A task waits in its pool's FIFO queue until
``dispatch_s`` after its submission and until ``width`` workers are free, then runs its
``work`` (seconds at full speed) at a rate the ``slowdown`` callback sets from what else runs;
its process learns of its end ``return_s`` later. A worker is free again ``release_s`` after its
task ended.

Example::

    engine = Engine({"sim": 2, "train": 1})

    def flow():
        chunks = [engine.submit("sim", f"c{i}", "S0", "sim", work=1.0) for i in range(4)]
        yield engine.all_of(chunks)
        yield engine.submit("train", "T0", "T0", "train", work=3.0)

    engine.spawn(flow())
    records = engine.run()  # TaskRecords; the last one ends at 5.0
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamal.runtime.timeline import TaskRecord

#: ``slowdown(kind, busy)``: factor ≥ 1 on a task's time given ``busy`` — the fraction of each
#: pool's workers running a task of each kind (``{"sim": 0.5, "train": 1.0, ...}``).
Slowdown = Callable[[str, Mapping[str, float]], float]
#: ``warmup(pool, kind)``: extra seconds of work of the first task of ``kind`` on a worker.
Warmup = Callable[[str, str], float]
EPS = 1e-9


class Event:
    """Something a process can wait for; carries a value once done."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.done = False
        self.value: Any = None
        self._callbacks: list[Callable[[Event], None]] = []

    def on_done(self, fn: Callable[[Event], None]) -> None:
        if self.done:
            self.engine._soon.append((fn, self))
        else:
            self._callbacks.append(fn)

    def fire(self, value: Any = None) -> None:
        """Mark done (once) and schedule everything waiting on it."""
        if self.done:
            return
        self.done, self.value = True, value
        self.engine._soon.extend((fn, self) for fn in self._callbacks)
        self._callbacks = []


@dataclass(eq=False)
class Task(Event):
    """One task of the replay; its value, once done, is itself."""

    engine: Engine
    id: int
    name: str
    pool: str
    stage: str
    kind: str
    width: int
    work: float
    submitted: float
    info: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    workers: tuple[int, ...] = ()
    remaining: float = 0.0

    def __post_init__(self) -> None:
        Event.__init__(self, self.engine)

    def record(self, return_s: float) -> TaskRecord:
        return TaskRecord(
            id=self.id,
            name=self.name,
            pool=self.pool,
            stage=self.stage,
            attempt=1,
            submitted=self.submitted,
            started=self.started,
            ended=self.ended,
            returned=(self.ended or 0.0) + return_s,
            status="done",
            worker_cores=list(self.workers),
            host="replay",
            info={"kind": self.kind, **self.info},
        )


class Engine:
    """Pools of ``capacity`` workers each; see the module docstring."""

    def __init__(
        self,
        capacity: Mapping[str, int],
        *,
        slowdown: Slowdown | None = None,
        warmup: Warmup | None = None,
        dispatch_s: float = 0.0,
        return_s: float = 0.0,
        release_s: float = 0.0,
    ) -> None:
        self.capacity = dict(capacity)
        self.slowdown = slowdown or (lambda kind, busy: 1.0)
        self.warmup = warmup or (lambda pool, kind: 0.0)
        self.dispatch_s, self.return_s, self.release_s = dispatch_s, return_s, release_s
        self.now = 0.0
        self.tasks: list[Task] = []
        self._ids = itertools.count(1)
        self._soon: deque[tuple[Callable[[Event], None], Event]] = deque()
        self._queues: dict[str, deque[Task]] = {p: deque() for p in self.capacity}
        self._free_at: dict[str, list[float]] = {p: [0.0] * n for p, n in self.capacity.items()}
        self._busy: dict[str, list[bool]] = {p: [False] * n for p, n in self.capacity.items()}
        self._warm: set[tuple[str, int, str]] = set()
        self._running: list[Task] = []
        self._notices: list[tuple[float, int, Task]] = []

    # -- what processes use ------------------------------------------------------------------
    def submit(
        self,
        pool: str,
        name: str,
        stage: str,
        kind: str,
        work: float,
        *,
        width: int = 1,
        info: dict[str, Any] | None = None,
    ) -> Task:
        """Queue a task on ``pool`` occupying ``width`` workers for ``work`` seconds."""
        if pool not in self.capacity:
            raise ValueError(f"no pool {pool!r} (pools: {sorted(self.capacity)})")
        width = max(1, min(width, self.capacity[pool]))
        task = Task(self, next(self._ids), name, pool, stage, kind, width, max(work, 0.0), self.now)
        task.info = dict(info or {})
        self.tasks.append(task)
        self._queues[pool].append(task)
        return task

    def spawn(self, process: Generator[Event, Any, Any]) -> Event:
        """Start a process (on the next step, as ``ensure_future``); done when it returns."""
        finished = Event(self)

        def step(event: Event | None) -> None:
            try:
                waited = process.send(None if event is None else event.value)
            except StopIteration as stop:
                finished.fire(stop.value)
                return
            waited.on_done(step)

        self._soon.append((lambda _: step(None), finished))
        return finished

    def all_of(self, events: Iterable[Event]) -> Event:
        """Done when every event is done; value: their values."""
        events = list(events)
        joined = Event(self)
        left = [len(events)]

        def one(_: Event) -> None:
            left[0] -= 1
            if left[0] == 0:
                joined.fire([e.value for e in events])

        if not events:
            joined.fire([])
        for e in events:
            e.on_done(one)
        return joined

    def any_of(self, events: Iterable[Event]) -> Event:
        """Done when the first event is done; value: that event."""
        first = Event(self)
        for e in events:
            e.on_done(first.fire)
        return first

    def stop(self, task: Task, left: float) -> None:
        """Ask ``task`` to end after at most ``left`` more seconds of work (a training's stop
        file: it ends after its current epoch); nothing if it has ended."""
        if task.ended is not None:
            return
        if task.started is None:
            task.work = min(task.work, max(left, 0.0))
        else:
            task.remaining = min(task.remaining, max(left, 0.0))

    def signal(self) -> Event:
        """A bare event a process fires (``asyncio.Event`` for one wait)."""
        return Event(self)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> list[TaskRecord]:
        """Run until nothing is left to happen; the records of every task, by id."""
        while True:
            while self._soon:
                fn, event = self._soon.popleft()
                fn(event)
            self._dispatch()
            if self._soon:
                continue
            nxt = self._next_time()
            if nxt is None:
                break
            self._advance(nxt)
        stuck = [t for t in self.tasks if t.ended is None]
        if stuck:
            raise RuntimeError(f"replay: {len(stuck)} task(s) never ran, e.g. {stuck[0].name}")
        return [t.record(self.return_s) for t in self.tasks]

    def _dispatch(self) -> None:
        for pool, queue in self._queues.items():
            while queue:
                task = queue[0]
                if task.submitted + self.dispatch_s > self.now + EPS:
                    break
                free = [
                    i
                    for i, (busy, at) in enumerate(
                        zip(self._busy[pool], self._free_at[pool], strict=True)
                    )
                    if not busy and at <= self.now + EPS
                ]
                if len(free) < task.width:
                    break
                queue.popleft()
                self._start(task, tuple(free[: task.width]))

    def _start(self, task: Task, workers: tuple[int, ...]) -> None:
        task.started, task.workers, task.remaining = self.now, workers, task.work
        cold = [(task.pool, w, task.kind) not in self._warm for w in workers]
        if any(cold):
            task.remaining += self.warmup(task.pool, task.kind)
        for w in workers:
            self._busy[task.pool][w] = True
            self._warm.add((task.pool, w, task.kind))
        self._running.append(task)

    def _rates(self) -> dict[int, float]:
        busy: dict[str, float] = {}
        for t in self._running:
            busy[t.kind] = busy.get(t.kind, 0.0) + t.width / self.capacity[t.pool]
        return {t.id: 1.0 / self.slowdown(t.kind, busy) for t in self._running}

    def _next_time(self) -> float | None:
        times = [n[0] for n in self._notices[:1]]
        rates = self._rates()
        times += [self.now + t.remaining / rates[t.id] for t in self._running]
        for pool, queue in self._queues.items():
            if queue:
                ready = queue[0].submitted + self.dispatch_s
                pairs = zip(self._free_at[pool], self._busy[pool], strict=True)
                free = sorted(a for a, busy in pairs if not busy)
                later = [a for a in free if a > self.now + EPS]
                if ready > self.now + EPS:
                    times.append(ready)
                elif later:
                    times.append(later[0])
        return min(times) if times else None

    def _advance(self, until: float) -> None:
        rates = self._rates()
        dt = until - self.now
        self.now = until
        still = []
        for t in self._running:
            t.remaining -= rates[t.id] * dt
            if t.remaining <= EPS * max(1.0, t.work):
                t.ended = self.now
                for w in t.workers:
                    self._busy[t.pool][w] = False
                    self._free_at[t.pool][w] = self.now + self.release_s
                heapq.heappush(self._notices, (self.now + self.return_s, t.id, t))
            else:
                still.append(t)
        self._running = still
        while self._notices and self._notices[0][0] <= self.now + EPS:
            _, _, t = heapq.heappop(self._notices)
            t.fire(t)
