#!/usr/bin/env python
"""The kinetic model's energy scheme against ViennaRNA at every °C, and what it does to the capture.

For each random probe (80 nt; probe ``i`` drawn from ``--seed + i``) the targets are
``--per-fraction`` mutants of it at each of ``--fractions`` and ``--unrelated`` random sequences.
ViennaRNA (``primo.thermo.Simulator``'s defaults) is evaluated once for every pair at every
``--step`` °C from the end of the anneal to its start and at the node temperatures; the schemes
below are then served from those stored energies, so that each sees exactly what ViennaRNA gives
at the temperatures it asks for:

* ``new scheme``: :func:`primo.thermo.ramp.pair_thermodynamics` as
  ``primo.simulation.cascade.energy_settings(protocol, "kinetic")`` configures it, with each target
  weighted by the share of the pool it stands for, as the cascade does (a mutant: one document of
  ``--documents``; the unrelated targets: the rest of the pool, pooled, each ``pool / unrelated``)
  and the homodimer at ``ABUNDANCE_SAFETY`` times one document's strands;
* ``every node``: every pair at every one of the kinetic model's ``kinetic_nodes`` (13);
* ``previous scheme``: ``--previous-nodes`` nodes (12), pairs that can lock at every node, the
  others every third node while ``K > 0.01 / pool`` or ``K_AA > 1e6`` (``negligible_log_k``);
* ``anneal's 4 nodes``: every pair at the anneal's ``energy_nodes`` (4).

(a) Energy error against ViennaRNA on the every-``--step`` °C grid: the worst error where a pair may
lock (``lock_log_k - 1 < log K < locked_log_k + log(node spacing)``, K from ViennaRNA), the worst
and median error among pairs that can lock at the end of the anneal where ``K > 1e2``, the fast
pairs' hold (``log K <= lock_log_k - 2``: ``sum c_i |K_est - K_true|``, the free probe's partners,
its largest value over temperatures) and the evaluations above the end of the anneal.

(b) ``primo.simulation.kinetic.kinetic_capture`` (the model behind ``--capture kinetic``) on each
scheme's energies against every pair at every node and against every pair at every ``--step`` °C:
the largest difference of a bound amount as a share of the probe, over species above the bead
background (captured fraction >= 2e-4 under either), and the worst relative error of the species
above 1e-3 of the probe.

Each protocol is one ``--k-on`` x ``--probe-nm``. Tables are printed in markdown; a figure
"a / b" is one value per probe, "a–b" the range over probes and protocols.

    python experiments/kinetic_energy_scheme.py [--probes 2] [--seed 0] [-j 2]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from primo.parallel import get_mapper
from primo.simulation.capture import Protocol
from primo.simulation.cascade import ABUNDANCE_SAFETY, energy_settings
from primo.simulation.kinetic import kinetic_capture
from primo.thermo import Simulator, mutate
from primo.thermo.ramp import (GAS_CONSTANT, KELVIN, Thermo, binding_energies, node_temperatures,
                               pair_thermodynamics)

#: the beads' non-specific carry-over (primo.simulation.wetlab's default ``background``): species
#: captured below it do not count
BACKGROUND = 2e-4
#: the schemes, in the order of the tables
SCHEMES = ("new scheme", "every node", "previous scheme", "anneal's 4 nodes")


def key(t: float) -> float:
    return round(float(t), 6)


def probe_set(seed: int, length: int, fractions, per_fraction: int, unrelated: int):
    """A random probe, its mutants (``per_fraction`` at each fraction) and unrelated targets."""
    rng = np.random.default_rng(seed)
    q = "".join(rng.choice(list("ACGT"), length))
    targets = []
    for f in fractions:
        targets += [mutate(q, f, rng) for _ in range(per_fraction)]
    targets += ["".join(rng.choice(list("ACGT"), length)) for _ in range(unrelated)]
    return q, targets


def vienna(task):
    """ViennaRNA's free energies ``(n + 1, 5)`` of ``targets + [q]`` with ``q`` at one temperature."""
    t, q, targets = task
    seqs = list(targets) + [q]
    return Simulator(temperature=float(t)).free_energies(seqs, [q] * len(seqs))


class Stored:
    """A simulator that serves stored ViennaRNA free energies (one probe, its targets)."""

    def __init__(self, q, targets, table, temperature):
        self.q, self.table, self.temperature = q, table, float(temperature)
        self.row = {s: i for i, s in enumerate(targets)}
        self.row[q] = len(targets)

    def at_temperature(self, t):
        s = Stored.__new__(Stored)
        s.q, s.table, s.row, s.temperature = self.q, self.table, self.row, float(t)
        return s

    def free_energies(self, targets, queries, **_):
        assert all(x == self.q for x in queries)
        g = self.table[key(self.temperature)]   # KeyError: a temperature nobody evaluated
        return g[[self.row[s] for s in targets]]


def grid(table, temps):
    """Every pair at ``temps`` from the stored energies, as a Thermo."""
    g = np.stack([table[key(t)] for t in temps], axis=1)            # (n + 1, k, 5)
    ab, aa, bb = (x.reshape(g.shape[:2]) for x in binding_energies(g.reshape(-1, 5)))
    return Thermo(np.asarray(temps, dtype=np.float64), ab[:-1], aa[:-1], bb[-1])


def schemes_for(q, targets, table, proto, conc, homodimer_conc, previous_nodes):
    """``{name: (Thermo, evaluations above the end of the anneal)}`` under one protocol."""
    n = len(targets)
    sim = Stored(q, targets, table, proto.anneal_to)
    es = energy_settings(proto, "kinetic")
    th, ev = pair_thermodynamics(sim, targets, q, **{**es, "target_conc": conc,
                                                     "homodimer_conc": homodimer_conc},
                                 return_evaluated=True)
    out = {"new scheme": (th, int(ev[:, 1:].sum()))}
    kn = es["nodes"]
    out["every node"] = (grid(table, kn), n * (len(kn) - 1))
    if previous_nodes:
        pn = node_temperatures(proto.anneal_to, proto.anneal_from, previous_nodes)
        th, ev = pair_thermodynamics(sim, targets, q, nodes=pn, lock_log_k=proto.lock_log_k,
                                     negligible_log_k=math.log(0.01 / proto.pool_m),
                                     negligible_log_k_aa=math.log(1e6), return_evaluated=True)
        out["previous scheme"] = (th, int(ev[:, 1:].sum()))
    an = node_temperatures(proto.anneal_to, proto.anneal_from, proto.energy_nodes)
    out["anneal's 4 nodes"] = (grid(table, an), n * (len(an) - 1))
    return out


def energy_errors(th, ref, proto, es, conc):
    """The energy figures of one scheme against the reference grid (see the module docstring)."""
    T = ref.nodes
    true = ref.dg_ab
    est = np.stack([th.dg(t)[0] for t in T], axis=1)
    rt = GAS_CONSTANT * (T + KELVIN)
    lk = -true / rt
    with np.errstate(invalid="ignore"):
        err = np.abs(est - true)
    spacing = (proto.anneal_from - proto.anneal_to) / (len(es["nodes"]) - 1)
    band = (lk > proto.lock_log_k - 1) & (lk < es["locked_log_k"] + math.log(spacing))
    lockable = lk[:, 0] >= proto.lock_log_k
    binds = (lk > math.log(1e2)) & lockable[:, None]
    le = -est / rt
    fast = (lk <= proto.lock_log_k - 2) & (le <= proto.lock_log_k - 2)
    with np.errstate(over="ignore", invalid="ignore"):
        diff = np.where(fast, np.abs(np.exp(np.minimum(le, 700)) - np.exp(np.minimum(lk, 700))),
                        0.0)
    hold = float((conc[:, None] * diff).sum(axis=0).max())
    nan = float("nan")
    return {"band": float(err[band].max()) if band.any() else nan,
            "worst": float(err[binds].max()) if binds.any() else nan,
            "median": float(np.median(err[binds])) if binds.any() else nan,
            "hold": hold}


def capture_error(r, ref, proto):
    """Largest bound difference (share of the probe) and worst relative error above 1e-3."""
    above = (ref.fraction >= BACKGROUND) | (r.fraction >= BACKGROUND)
    if not above.any():
        return 0.0, float("nan")
    d = np.abs(r.bound - ref.bound)
    big = above & (ref.bound > 1e-3 * proto.probe_m)
    rel = float((d / np.maximum(ref.bound, 1e-300))[big].max()) if big.any() else float("nan")
    return float(d[above].max() / proto.probe_m), rel


def fmt(x, spec):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def span(xs, spec):
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return "—"
    lo, hi = min(xs), max(xs)
    return fmt(lo, spec) if format(lo, spec) == format(hi, spec) else \
        f"{fmt(lo, spec)}–{fmt(hi, spec)}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--probes", type=int, default=2, help="random probes (default 2)")
    ap.add_argument("--seed", type=int, default=0,
                    help="probe i is drawn from seed + i (default 0)")
    ap.add_argument("--fractions", type=float, nargs="+",
                    default=[0.20, 0.25, 0.30, 0.35, 0.40, 0.45],
                    help="mutation fractions of the probe's mutants (default 0.20 … 0.45)")
    ap.add_argument("--per-fraction", type=int, default=2,
                    help="mutants at each fraction (default 2)")
    ap.add_argument("--unrelated", type=int, default=4,
                    help="unrelated random targets per probe (default 4)")
    ap.add_argument("--length", type=int, default=80, help="sequence length in nt (default 80)")
    ap.add_argument("--step", type=float, default=1.0,
                    help="spacing of the reference grid in °C (default 1: every °C)")
    ap.add_argument("--documents", type=int, default=60_000,
                    help="documents in the pool; a mutant stands for one of them (default 60000)")
    ap.add_argument("--k-on", type=float, nargs="+", default=[1e6, 1e7],
                    help="association rate constants, 1/(M s) (default 1e6 1e7)")
    ap.add_argument("--probe-nm", type=float, nargs="+", default=[0.5, 0.005],
                    help="probe concentrations in nM (default 0.5 0.005)")
    ap.add_argument("--kinetic-nodes", type=int, default=None,
                    help="the kinetic model's nodes (default: the Protocol's, 13)")
    ap.add_argument("--previous-nodes", type=int, default=12,
                    help="nodes of the previous scheme (default 12; 0 leaves it out)")
    ap.add_argument("-j", "--processes", type=int, default=1,
                    help="worker processes for ViennaRNA (default 1)")
    args = ap.parse_args(argv)
    if args.probes < 1 or args.step <= 0 or args.per_fraction < 0 or args.unrelated < 0:
        ap.error("--probes must be >= 1, --step > 0, --per-fraction and --unrelated >= 0")
    if args.per_fraction * len(args.fractions) + args.unrelated < 1:
        ap.error("no targets: give --per-fraction or --unrelated")

    extra = {} if args.kinetic_nodes is None else {"kinetic_nodes": args.kinetic_nodes}
    protocols = [Protocol(k_on=k, probe_nm=p, **extra) for k in args.k_on for p in args.probe_nm]
    p0 = protocols[0]
    ref_t = np.arange(p0.anneal_to, p0.anneal_from + 1e-9, args.step)
    if abs(ref_t[-1] - p0.anneal_from) > 1e-9:
        ref_t = np.append(ref_t, p0.anneal_from)
    temps = {key(t) for t in ref_t}
    temps |= {key(t) for t in energy_settings(p0, "kinetic")["nodes"]}
    temps |= {key(t) for t in node_temperatures(p0.anneal_to, p0.anneal_from, p0.energy_nodes)}
    if args.previous_nodes:
        temps |= {key(t) for t in node_temperatures(p0.anneal_to, p0.anneal_from,
                                                   args.previous_nodes)}
    temps = sorted(temps)

    sets = [probe_set(args.seed + i, args.length, args.fractions, args.per_fraction,
                      args.unrelated) for i in range(args.probes)]
    n = len(sets[0][1])
    print(f"# {args.probes} probe(s) x {n} targets, ViennaRNA at {len(temps)} temperatures "
          f"({len(ref_t)} on the {args.step:g} °C grid), -j {args.processes}", file=sys.stderr)
    t0 = time.time()
    tasks = [(t, q, targets) for q, targets in sets for t in temps]
    with get_mapper(processes=args.processes) as mapper:
        gs = list(mapper.imap(vienna, tasks))
    tables = [{t: np.asarray(gs[i * len(temps) + j], dtype=np.float64)
               for j, t in enumerate(temps)} for i in range(args.probes)]
    print(f"# ViennaRNA: {len(tasks) * (n + 1)} evaluations in {time.time() - t0:.0f} s",
          file=sys.stderr)
    tabulate(sets, tables, protocols, ref_t, args)


def tabulate(sets, tables, protocols, ref_t, args):
    """Both tables from the stored energies (``tables[i]``: temperature -> free energies)."""
    p0 = protocols[0]
    n = len(sets[0][1])
    pool = p0.pool_m
    doc = pool / args.documents
    conc = np.full(n, doc)
    if args.unrelated:
        conc[n - args.unrelated:] = pool / args.unrelated
    names = [s for s in SCHEMES if args.previous_nodes or s != "previous scheme"]
    # res[name][probe] = list over protocols of dicts
    res = {s: [[] for _ in sets] for s in names}
    cap = {s: {} for s in names}
    cap_ref = {}
    for i, ((q, targets), table) in enumerate(zip(sets, tables)):
        ref = grid(table, ref_t)
        for proto in protocols:
            es = energy_settings(proto, "kinetic")
            sch = schemes_for(q, targets, table, proto, conc, ABUNDANCE_SAFETY * doc,
                              args.previous_nodes)
            r_ref = kinetic_capture(ref, conc, proto)
            r_node = kinetic_capture(sch["every node"][0], conc, proto)
            pk = (proto.k_on, proto.probe_nm)
            for name, (th, ev) in sch.items():
                e = energy_errors(th, ref, proto, es, conc)
                e["evals"] = ev
                res[name][i].append(e)
                r = kinetic_capture(th, conc, proto)
                dn, rn = capture_error(r, r_node, proto)
                dr, rr = capture_error(r, r_ref, proto)
                cap[name].setdefault(pk, []).append((dn, rn, dr, rr))
            cap_ref.setdefault(pk, []).append(capture_error(r_node, r_ref, proto))

    lockable = [int((-grid(t, ref_t[:1]).dg_ab[:, 0]
                     / (GAS_CONSTANT * (p0.anneal_to + KELVIN)) >= pr.lock_log_k).sum())
                for t in tables for pr in protocols]
    print(f"## Energy error: {args.probes} random probe(s) × {n} pairs ({args.per_fraction} each "
          f"{'/'.join(f'{100 * f:g}' for f in args.fractions)} % mutated, {args.unrelated} "
          f"unrelated), ViennaRNA every {args.step:g} °C {p0.anneal_to:g}–{p0.anneal_from:g} °C; "
          f"k_on {', '.join(f'{k:g}' for k in args.k_on)} / probe "
          f"{', '.join(f'{p:g}' for p in args.probe_nm)} nM; pairs that can lock at "
          f"{p0.anneal_to:g} °C: {span(lockable, 'd')}")
    print()
    print("| scheme | evaluations above %g °C | worst error where a pair may lock¹ (kcal/mol) | "
          "worst error, K > 1e2² (median) | fast pairs' hold error³ |" % p0.anneal_to)
    print("| --- | --- | --- | --- | --- |")
    label = {"new scheme": "**new scheme**",
             "every node": f"every pair at every one of {len(energy_settings(p0, 'kinetic')['nodes'])}"
                           " nodes",
             "previous scheme": f"previous scheme ({args.previous_nodes} nodes; weaker pairs "
                                "every third node)",
             "anneal's 4 nodes": f"the anneal's {p0.energy_nodes} nodes for every pair"}
    for name in names:
        per = res[name]
        ev = [e["evals"] for p in per for e in p]
        band = " / ".join(fmt(max(e["band"] for e in p), ".2f") for p in per)
        worst = " / ".join(fmt(max(e["worst"] for e in p), ".2f") for p in per)
        med = span([e["median"] for p in per for e in p], ".2f")
        hold = " / ".join(fmt(max(e["hold"] for e in p), ".2f") for p in per)
        print(f"| {label[name]} | {span(ev, 'd')} | {band} | {worst} ({med}) | "
              f"{hold} |")
    print()
    print("¹ `lock_log_k − 1 < log K < locked_log_k + log(node spacing)`, K from ViennaRNA; "
          "one figure per probe, worst over the protocols. ² Pairs that can lock at the end of "
          "the anneal. ³ Largest `Σ c_i |K_est − K_true|` over temperatures, pairs with "
          "`log K ≤ lock_log_k − 2`: the free probe's partners, as a multiple of the free probe.")
    print()
    print("## Capture error: `kinetic_capture` on each scheme's energies (bound amounts, species "
          f"captured ≥ {BACKGROUND:g} under either; mutants {doc * 1e12:.3g} pM each, the unrelated "
          f"pooled at {pool / max(args.unrelated, 1) * 1e9:.3g} nM each)")
    print()
    print("| scheme | k_on / probe | largest difference vs every node (share of the probe) | "
          "vs every %g °C | worst relative (species > 1e-3 of the probe), vs every node⁴ |"
          % args.step)
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        if name == "every node":
            continue
        for (kon, pnm), xs in cap[name].items():
            print(f"| {label[name]} | {kon:g} / {pnm:g} nM | {max(x[0] for x in xs):.1e} | "
                  f"{max(x[2] for x in xs):.1e} | "
                  f"{fmt(max(x[1] for x in xs), '.1%')} |")
    for (kon, pnm), xs in cap_ref.items():
        print(f"| every node (vs every {args.step:g} °C) | {kon:g} / {pnm:g} nM | — | "
              f"{max(x[0] for x in xs):.1e} | {fmt(max(x[1] for x in xs), '.1%')} |")
    print()
    print(f"⁴ The last rows: every node against every {args.step:g} °C.")
    allnew = [x for xs in cap["new scheme"].values() for x in xs]
    allref = [x for xs in cap_ref.values() for x in xs]
    print()
    print(f"new scheme, all protocols and probes: {max(x[0] for x in allnew):.1e} of the probe "
          f"against every node (every node vs every {args.step:g} °C: "
          f"{max(x[0] for x in allref):.1e})")


if __name__ == "__main__":
    main()
