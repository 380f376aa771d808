"""A small C program for the executable-simulator tests, compiled with the system compiler.

``peak INPUT OUTPUT`` reads ``class centre width`` lines (the ``table`` input format) and
writes one line of :data:`POINTS` values per sample: ``centre * k + width + class``. It notes
``OMP_NUM_THREADS`` in ``omp.txt`` and its pid in ``pid-<rank>.txt``; under an MPI launcher
(``PMI_RANK`` set) only rank 0 writes the output. With ``PEAK_FAULTS`` set it hangs on a
centre above :data:`HANG_ABOVE` and exits with status 3 on a centre below :data:`CRASH_BELOW`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

POINTS = 16
HANG_ABOVE = 0.75
CRASH_BELOW = 0.25

SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: peak INPUT OUTPUT\n"); return 2; }
    const char *rank = getenv("PMI_RANK");
    char name[64];
    snprintf(name, sizeof name, "pid-%s.txt", rank ? rank : "0");
    FILE *p = fopen(name, "w"); fprintf(p, "%d\n", (int)getpid()); fclose(p);
    const char *omp = getenv("OMP_NUM_THREADS");
    FILE *e = fopen("omp.txt", "w"); fprintf(e, "%s\n", omp ? omp : ""); fclose(e);
    int faults = getenv("PEAK_FAULTS") != NULL;
    int writer = rank == NULL || strcmp(rank, "0") == 0;
    FILE *in = fopen(argv[1], "r");
    if (!in) { fprintf(stderr, "cannot open %s\n", argv[1]); return 4; }
    FILE *out = writer ? fopen(argv[2], "w") : NULL;
    int cls; double centre, width;
    while (fscanf(in, "%d %lf %lf", &cls, &centre, &width) == 3) {
        if (faults && centre > HANG_ABOVE) {
            fprintf(stderr, "hanging on centre %g\n", centre); fflush(stderr);
            for (;;) pause();
        }
        if (faults && centre < CRASH_BELOW) {
            fprintf(stderr, "step 1 ok\ncannot handle centre %g\n", centre);
            return 3;
        }
        if (out) {
            for (int k = 0; k < POINTS; k++) fprintf(out, "%.17g ", centre * k + width + cls);
            fprintf(out, "\n");
        }
    }
    if (out) fclose(out);
    return 0;
}
"""


def compile_peak(directory: Path) -> Path:
    """Compile the program into ``directory`` (skip the test if there is no C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) on this machine")
    src, exe = directory / "peak.c", directory / "peak"
    src.write_text(SOURCE)
    subprocess.run(
        [
            cc,
            "-O1",
            "-ffp-contract=off",  # the same double arithmetic as numpy's
            f"-DPOINTS={POINTS}",
            f"-DHANG_ABOVE={HANG_ABOVE}",
            f"-DCRASH_BELOW={CRASH_BELOW}",
            "-o",
            str(exe),
            str(src),
        ],
        check=True,
    )
    return exe


def reference(classes: np.ndarray, params: np.ndarray) -> np.ndarray:
    """What the program computes, in numpy."""
    k = np.arange(POINTS)
    out = params[:, :1] * k + params[:, 1:2] + classes[:, None]
    return out.astype(np.float32)


#: The space of ``tests.helpers.peaks_space`` as ``executable`` simulator options.
SPACE = {
    "classes": [
        {"name": "narrow", "bounds": {"centre": [0.2, 0.8]}, "tied": {"width": 0.02}},
        {"name": "wide", "bounds": {"centre": [0.2, 0.8], "width": [0.05, 0.1]}},
    ]
}
