"""The order a program's instructions run in, from its token flags alone (the engines never
change which queue may step): four queues of instructions in program order, a token FIFO per
ordered pair of queues, and each step one ready head runs (docs/simulator.md, "Queues and
tokens"). Without a seed the ready head earliest in the program runs (a Numba loop); with a
seed a ready queue picked by ``random.Random(seed).choice``, as the machine always did."""

from __future__ import annotations

import random

import numba
import numpy as np

QUEUE_COUNT = 4


@numba.njit(cache=True, nogil=True)
def _earliest(queue, dpdon, dpdby, heads, order, fifo, passed):
    """Fill ``order`` with the program order of execution; returns how many ran. ``heads``:
    per queue its instructions in program order, ``-1`` padded (rows of the 4 queues)."""
    nq, cap = heads.shape
    pos = np.zeros(nq, np.int64)
    done = 0
    while True:
        best, best_q = -1, -1
        live = False
        for q in range(nq):
            if pos[q] >= cap or heads[q, pos[q]] < 0:
                continue
            live = True
            ins = heads[q, pos[q]]
            ok = True
            for src in range(nq):
                if dpdon[ins] >> src & 1 and fifo[src, q] == 0:
                    ok = False
            if ok and (best < 0 or ins < best):
                best, best_q = ins, q
        if not live or best < 0:
            return done
        for src in range(nq):
            if dpdon[best] >> src & 1:
                fifo[src, best_q] -= 1
        for dst in range(nq):
            if dpdby[best] >> dst & 1:
                fifo[best_q, dst] += 1
                passed[best_q, dst] += 1
        pos[best_q] += 1
        order[done] = best
        done += 1


def _seeded(queue, dpdon, dpdby, heads, order, fifo, passed, seed):
    """As :func:`_earliest`, a ready queue chosen by ``random.Random(seed)`` (Python)."""
    rng = random.Random(seed)
    lists = [[i for i in row if i >= 0] for row in heads.tolist()]
    pos = [0] * len(lists)
    dpdon, dpdby = dpdon.tolist(), dpdby.tolist()
    counts = [[0] * QUEUE_COUNT for _ in range(QUEUE_COUNT)]
    done = 0
    while True:
        live = [q for q in range(len(lists)) if pos[q] < len(lists[q])]
        if not live:
            break
        ready = [q for q in live if all(not (dpdon[lists[q][pos[q]]] >> s & 1) or counts[s][q]
                                        for s in range(QUEUE_COUNT))]
        if not ready:
            break
        q = rng.choice(ready)
        ins = lists[q][pos[q]]
        for s in range(QUEUE_COUNT):
            if dpdon[ins] >> s & 1:
                counts[s][q] -= 1
            if dpdby[ins] >> s & 1:
                counts[q][s] += 1
                passed[q, s] += 1
        pos[q] += 1
        order[done] = ins
        done += 1
    fifo[...] = counts
    return done


def schedule(queue: np.ndarray, dpdon: np.ndarray, dpdby: np.ndarray, seed=None):
    """``(order, fifo, passed)``: the instructions (indices; END and the like, queue -1, left
    out) in the order they run until all ran or none can, the FIFO token counts left
    (``fifo[src, dst]``) and the tokens passed per FIFO. ``len(order)`` short of the queued
    instructions means a deadlock."""
    queued = np.flatnonzero(queue >= 0)
    per_queue = [queued[queue[queued] == q] for q in range(QUEUE_COUNT)]
    cap = max([len(p) for p in per_queue] + [1])
    heads = np.full((QUEUE_COUNT, cap), -1, np.int64)
    for q, p in enumerate(per_queue):
        heads[q, :len(p)] = p
    order = np.empty(len(queued), np.int64)
    fifo = np.zeros((QUEUE_COUNT, QUEUE_COUNT), np.int64)
    passed = np.zeros((QUEUE_COUNT, QUEUE_COUNT), np.int64)
    args = (queue, np.ascontiguousarray(dpdon), np.ascontiguousarray(dpdby), heads, order, fifo,
            passed)
    done = _earliest(*args) if seed is None else _seeded(*args, seed)
    return order[:done], fifo, passed
