"""How fast is cnnderive, next to PyTorch float64 and the naive SymPy way? One command, one table.

    python benchmarks/run.py                 # the full table (about 5 minutes on 2 cores)
    python benchmarks/run.py --quick         # 1 run each, naive SymPy capped at 10 s
    python benchmarks/run.py --repeat 7 --limit 120 --only lenet5

For the seed networks (configs/seed*.yaml), two_conv_28, two_conv_56 and lenet5 it measures, as
whole processes (start-up and imports included), the wall time (median of --repeat runs) and the
peak memory (max RSS from wait4) of

- `cnnderive grad NET --json`
- `cnnderive explain NET` and `cnnderive explain NET --param P` (P: the first conv weight,
  [0,0,2,2] when the kernel allows, else [0,0,0,0]), when the installed cnnderive has `explain`
- benchmarks/torch_grad.py NET  (PyTorch float64, one forward + backward), when torch is installed
- benchmarks/naive_sympy.py NET (the whole loss as one SymPy expression, diff, subs), under
  --limit seconds: "> limit" when it runs out

each as a ratio to `cnnderive grad --json` on the same network in the same run, and checks that
the PyTorch and naive gradients agree with cnnderive's (relative 1e-9). Then `cnnderive --help`
and `python -c "import sympy"`, and the targets of issue 6, each met or missed by how much.
The jobs of one network are interleaved round by round, so that a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = ROOT / "configs"
NAIVE_MEMORY = 3 * 2**30  # address-space cap for the naive SymPy script, so it cannot take the machine


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mb: float
    code: int
    timed_out: bool
    stdout: str
    stderr: str


@dataclass
class Job:
    label: str
    command: list[str]
    limit: float
    memory_cap: int | None = None
    slow: float = 20.0  # a run longer than this is not repeated
    runs: list[Run] = field(default_factory=list)
    done: bool = False  # no more runs: it timed out, failed, or is too slow to repeat

    @property
    def timed_out(self) -> bool:
        return any(r.timed_out for r in self.runs)

    @property
    def failed(self) -> bool:
        return any(r.code != 0 and not r.timed_out for r in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)


GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def measure(command: list[str], limit: float, env: dict, memory_cap: int | None = None) -> Run:
    """Run one process to its end (or kill its process group at `limit`): wall time, cpu, max RSS.

    The peak memory comes from GNU time (`/usr/bin/time -f %M`) when it is there: a process
    forked from this Python and exec'ed keeps this Python's RSS as its high-water mark (Linux
    carries it over exec), which would add some 40 MB to every figure; GNU time's own child is
    forked from a small process. Without GNU time, wait4's max RSS is used as it is.
    """

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as report:
        wrapped = [GNU_TIME, "-o", report.name, "-f", "%M", *command] if GNU_TIME else command
        start = time.perf_counter()
        process = subprocess.Popen(
            wrapped,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        if memory_cap and hasattr(os, "fork"):  # cap the command (GNU time passes its limits on)
            import resource

            resource.prlimit(process.pid, resource.RLIMIT_AS, (memory_cap, memory_cap))
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(limit, kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)  # cpu: the process and the children it waited for
        wall = time.perf_counter() - start
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        peak_kb = usage.ru_maxrss
        if GNU_TIME:
            lines = [line for line in report.read().splitlines() if line.strip().isdigit()]
            peak_kb = int(lines[-1]) if lines else peak_kb
        out.seek(0)
        err.seek(0)
        return Run(
            wall,
            usage.ru_utime + usage.ru_stime,
            peak_kb / 1024,
            process.returncode,
            killed.is_set(),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def rounds(jobs: list[Job], repeat: int, env: dict) -> None:
    """Run every job `repeat` times, round-robin; a job stops once it times out, fails or is slow."""
    for _ in range(repeat):
        for job in jobs:
            if job.done:
                continue
            run = measure(job.command, job.limit, env, job.memory_cap)
            job.runs.append(run)
            if run.timed_out or run.code != 0 or run.wall > job.slow:
                job.done = True


# --- comparing gradient documents (as shared/acceptance/compare_json.py: rel 1e-9, abs 1e-12)


def _flat(value) -> list[float]:
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [float(value)]


def agree(reference: str, other: str) -> bool | None:
    try:
        a, b = json.loads(reference), json.loads(other)
    except ValueError:
        return None
    if set(a["gradients"]) != set(b["gradients"]):
        return False
    pairs = [(a["loss"], b["loss"])] + list(zip(_flat(a["output"]), _flat(b["output"])))
    for name in a["gradients"]:
        x, y = _flat(a["gradients"][name]), _flat(b["gradients"][name])
        if len(x) != len(y):
            return False
        pairs += list(zip(x, y))
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in pairs)


def _dims(value) -> list[int]:
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        value = value[0]
    return dims


def early_parameter(document: dict) -> str:
    """The first conv weight at [0,0,2,2] (or [0,0,0,0] for a small kernel), else the first parameter."""
    for name, grad in document["gradients"].items():
        dims = _dims(grad)
        if name.endswith(".weight") and len(dims) == 4:
            index = [0, 0, 2, 2] if dims[2] > 2 and dims[3] > 2 else [0, 0, 0, 0]
            return f"{name}[{','.join(map(str, index))}]"
    name, grad = next(iter(document["gradients"].items()))
    return f"{name}[{','.join('0' * len(_dims(grad)))}]"


# --- formatting


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def cell(job: Job | None, base: Job | None = None, check: bool | None = None) -> str:
    if job is None:
        return "n/a"
    if job.timed_out:
        text = f"> {job.limit:g} s"
        if base is not None and base.runs and not base.failed:
            text += f" (> {job.limit / base.wall:.0f}x)"
        return text
    if job.failed:
        return "failed: " + (job.runs[-1].stderr.strip().splitlines() or ["?"])[-1][:60]
    text = f"{seconds(job.wall)} (cpu {job.cpu:.2f}), {job.peak_mb:.0f} MB"
    if base is not None and base.runs and not base.failed:
        text += f" ({job.wall / base.wall:.1f}x)"
    if check is False:
        text += " **differs**"
    if len(job.runs) == 1 and job.done:
        text += " (1 run)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command; the median is shown (default 5)")
    parser.add_argument(
        "--limit", type=float, default=60, help="seconds before a naive SymPy run is stopped (default 60)"
    )
    parser.add_argument("--quick", action="store_true", help="one run each, naive SymPy limit 10 s")
    parser.add_argument("--only", action="append", help="only networks whose file name contains this (repeatable)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive SymPy script")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.limit = 1, min(args.limit, 10)

    env = dict(os.environ)
    env.setdefault("COLUMNS", "100")
    python = sys.executable
    installed = Path(python).parent / "cnnderive"
    if installed.exists():
        cnnderive = [str(installed)]
    elif shutil.which("cnnderive"):
        cnnderive = [shutil.which("cnnderive")]
    else:  # a fresh checkout without installing: run the package from the source tree
        cnnderive = [python, "-m", "cnnderive"]
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    limit_all = max(args.limit, 120)
    has_explain = measure([*cnnderive, "explain", "--help"], 60, env).code == 0
    has_torch = measure([python, "-c", "import torch"], 120, env).code == 0

    configs = sorted(CONFIGS.glob("seed*.yaml")) + [
        CONFIGS / f
        for f in (
            "two_conv_28.yaml",
            "two_conv_56.yaml",
            "lenet5.yaml",
            "batch/lenet5_batch8.yaml",
            "batch/lenet5_bn_batch8.yaml",
        )
    ]
    if args.only:
        configs = [c for c in configs if any(o in c.name for o in args.only)]

    nproc = os.cpu_count()
    try:
        nproc_text = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        nproc_text = str(nproc)
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {cpu}, nproc {nproc_text}, {platform.system()} {platform.release()}; "
        f"python --version: Python {platform.python_version()}; load average at start {load:.2f}"
    )
    print(f"command: python benchmarks/run.py {' '.join(sys.argv[1:])}".rstrip())
    print(
        f"median of {args.repeat} run(s) of each whole process (start-up and imports included): wall time "
        f"(cpu: user + system seconds of the process), peak RSS; (Nx) = wall time / cnnderive grad --json "
        f"on the same network, in the same run"
    )
    if not has_explain:
        print("cnnderive has no `explain` command here: those columns are n/a")
    if not has_torch:
        print("torch is not installed: the PyTorch column is n/a")
    print()

    rows = []
    for config in configs:
        relative = str(config.relative_to(ROOT))
        warm = measure([*cnnderive, "grad", relative, "--json"], limit_all, env)  # warms the disk cache too
        if warm.code != 0:
            rows.append((config, None, {}, {}))
            continue
        document = json.loads(warm.stdout)
        count = sum(len(_flat(g)) for g in document["gradients"].values())
        param = early_parameter(document)
        jobs = {"grad": Job("grad", [*cnnderive, "grad", relative, "--json"], limit_all)}
        if has_explain:
            jobs["explain"] = Job("explain", [*cnnderive, "explain", relative], limit_all)
            one = ["--example", "1"] if config.parent.name == "batch" else []  # --param: one example of a batch
            jobs["param"] = Job("param", [*cnnderive, "explain", relative, "--param", param, *one], limit_all)
        if has_torch:
            jobs["torch"] = Job("torch", [python, str(HERE / "torch_grad.py"), relative], limit_all)
        if not args.no_naive:
            jobs["naive"] = Job(
                "naive", [python, str(HERE / "naive_sympy.py"), relative], args.limit, NAIVE_MEMORY, slow=3
            )
        rounds(list(jobs.values()), args.repeat, env)
        checks = {}
        for key in ("torch", "naive"):
            job = jobs.get(key)
            if job and job.runs and not job.timed_out and not job.failed and jobs["grad"].runs:
                checks[key] = agree(jobs["grad"].runs[-1].stdout, job.runs[-1].stdout)
        rows.append((config, (count, param), jobs, checks))
        print(f"  measured {config.name}", file=sys.stderr, flush=True)

    print("| network | parameters | `grad --json` | `explain` | `explain --param` | PyTorch float64 | naive SymPy |")
    print("|---|---:|---|---|---|---|---|")
    for config, info, jobs, checks in rows:
        if info is None:
            print(f"| {config.stem} | | failed | | | | |")
            continue
        count, param = info
        base = jobs["grad"]
        print(
            f"| {config.stem} | {count:,} | {cell(base)} | {cell(jobs.get('explain'), base)} | "
            f"{cell(jobs.get('param'), base)}{f' `{param}`' if 'param' in jobs else ''} | {cell(jobs.get('torch'), base, checks.get('torch'))} | "
            f"{cell(jobs.get('naive'), base, checks.get('naive'))} |"
        )
    print()
    print("**differs**: the gradients disagree with cnnderive's beyond 1e-9 (naive SymPy: Max is differentiated")
    print("with Heaviside(0) = 1/2, which splits a max-pool tie; PyTorch: float64 can round a kink the other way).")
    print()

    help_job = Job("help", [*cnnderive, "--help"], 60)
    sympy_job = Job("sympy", [python, "-c", "import sympy"], 60)
    rounds([help_job, sympy_job], max(args.repeat, 3), env)
    show_help = "import sys; sys.argv = ['cnnderive', '--help']; from cnnderive.cli import main; main()"
    trace = measure([python, "-X", "importtime", "-c", show_help], 60, env)
    heavy = sorted(
        {
            line.split("|")[-1].strip().split(".")[0]
            for line in trace.stderr.splitlines()
            if line.startswith("import time:")
        }
        & {"sympy", "numpy", "pydantic"}
    )
    print("| command | time, peak memory |")
    print("|---|---|")
    print(f"| `cnnderive --help` | {cell(help_job)} |")
    print(f'| `python -c "import sympy"` | {cell(sympy_job)} |')
    print()

    print("Targets (issue 6):")

    def ok(flag: bool) -> str:
        return "met" if flag else "MISSED"

    print(
        f"- `cnnderive --help` {seconds(help_job.wall)} (target < 0.25 s): {ok(help_job.wall < 0.25)}; "
        f"heavy modules imported for it: {', '.join(heavy) or 'none'}"
    )
    by_name = {config.stem: (info, jobs) for config, info, jobs, _ in rows}
    seed000 = by_name.get("seed000_maxpool_flatten")
    if seed000 and "explain" in seed000[1] and seed000[1]["explain"].runs:
        explain = seed000[1]["explain"]
        ratio = explain.wall / sympy_job.wall
        print(
            f"- `explain` on seed000: {seconds(explain.wall)} = {ratio:.2f}x `import sympy` (target <= 1.5x): {ok(ratio <= 1.5 and not explain.failed)}"
        )
    lenet = by_name.get("lenet5")
    if lenet and lenet[0] is not None:
        grad = lenet[1]["grad"]
        torch_job = lenet[1].get("torch")
        if torch_job and torch_job.runs and not torch_job.failed:
            ratio = grad.wall / torch_job.wall
            print(
                f"- `grad --json` on LeNet-5: {seconds(grad.wall)} vs PyTorch {seconds(torch_job.wall)}: "
                f"{ratio:.2f}x its time (target <= 1x): {ok(ratio <= 1)}"
            )
        print(
            f"- peak memory of `grad --json` on LeNet-5: {grad.peak_mb:.0f} MB (target < 500 MB): {ok(grad.peak_mb < 500)}"
        )
        param_job = lenet[1].get("param")
        if param_job and param_job.runs:
            good = not param_job.failed and not param_job.timed_out and param_job.wall < 3
            print(f"- `explain --param {lenet[0][1]}` on LeNet-5: {cell(param_job)} (target < 3 s): {ok(good)}")
    for key, what in (("lenet5_batch8", "a batch of 8"), ("lenet5_bn_batch8", "a batch of 8 and batch norm")):
        batch = by_name.get(key)
        if not batch or batch[0] is None:
            continue
        grad, torch_job = batch[1]["grad"], batch[1].get("torch")
        if torch_job and torch_job.runs and not torch_job.failed:
            ratio = grad.wall / torch_job.wall
            print(
                f"- `grad --json` on LeNet-5 with {what}: {seconds(grad.wall)} vs PyTorch {seconds(torch_job.wall)}: "
                f"{ratio:.2f}x its time (target <= 1x): {ok(ratio <= 1)}"
            )
    small, big = by_name.get("two_conv_28"), by_name.get("two_conv_56")
    if small and big and small[0] and big[0]:
        for key, job in small[1].items():
            other = big[1].get(key)
            if key == "naive" or not job.runs or not other or not other.runs or job.failed or other.failed:
                continue
            ratio = other.wall / job.wall
            print(
                f"- doubling the side (two_conv_56 / two_conv_28), {key}: {ratio:.2f}x (target <= ~4x): {ok(ratio <= 4.4)}"
            )


if __name__ == "__main__":
    main()
