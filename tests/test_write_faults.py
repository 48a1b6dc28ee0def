"""Writes under real faults, the destination lock, and cleaning what killed writers leave.

Faults are real, in child processes: a file-size limit (``RLIMIT_FSIZE`` with
``SIGXFSZ`` ignored, so writes past it get ``EFBIG``), and, where this machine allows a
private mount namespace (``unshare -m``), a small tmpfs that fills up (``ENOSPC``) or is
read-only (``EROFS``). Writers are slowed by a hook in the child (a function that
signals and sleeps once the data is written) and killed with ``SIGKILL``, so the
leftovers cleaned are those a real killed writer leaves.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.cli import main as cli_main
from voxray.writers import clean as clean_mod
from voxray.writers.clean import classify, clean_stale, find_leftovers, parse_age
from voxray.writers.lock import DestinationLock, is_held, lock_path

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="rlimits, flock, mounts")

SHAPE = (64, 64, 64)  # float32: 1 MiB, random so compression keeps it large
LIMIT = 256 * 1024

PRELUDE = """
import json, os, resource, signal, sys, time
import numpy as np
import nibabel as nib
import voxray as vx
import voxray.writers.atomic, voxray.formats.zarr.writer

def limit(n):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))

def attempt(fn):
    try:
        fn()
    except BaseException as e:
        return {"cls": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                "msg": str(e), "errno": getattr(e, "errno", None)}
    return None

def snapshot(d):
    import hashlib
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, d)
            digest = None if os.path.isdir(p) else hashlib.sha256(open(p, "rb").read())
            out[rel] = digest and digest.hexdigest()
    return out

def stall(owner, name, ready, after=True):
    # Replace owner.name by a version that signals `ready` and sleeps (to be SIGKILLed).
    fn = getattr(owner, name)
    def stalled(*a, **k):
        r = fn(*a, **k) if after else None
        open(ready, "w").close()
        time.sleep(120)
        return r
    setattr(owner, name, stalled)

def report(**kw):
    print("RESULT " + json.dumps(kw), flush=True)
"""


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / f"child-{time.monotonic_ns()}.py"
    # under a main guard: a dask cluster's spawned workers import this script again
    main = textwrap.indent(textwrap.dedent(body), "    ")
    path.write_text(f'{PRELUDE}\nif __name__ == "__main__":\n    pass\n{main}\n')
    return path


def run_child(tmp_path: Path, body: str, wrap: list[str] | None = None, **kw) -> dict:
    """Run ``body`` in a fresh python; return what it reported (and its rc, stderr)."""
    script = _script(tmp_path, body)
    cmd = [*(wrap or []), sys.executable, str(script), *kw.pop("args", [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"child reported nothing: rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(lines[-1][len("RESULT ") :])
    out["_rc"], out["_stderr"] = proc.returncode, proc.stderr
    return out


def _wait_stalled(proc: subprocess.Popen, ready: Path) -> None:
    for _ in range(15000):  # polls for the child, no assertion on the time it takes
        if ready.exists():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"writer exited ({proc.returncode}) before stalling: {err!r}")
        time.sleep(0.02)
    raise AssertionError("writer never stalled")


def start_child(tmp_path: Path, body: str, ready: Path) -> subprocess.Popen:
    """Start ``body`` (which stalls, creating ``ready``); return once it is stalled."""
    return start_children(tmp_path, [(body, ready)])[0]


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def snapshot(d: Path) -> dict:
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, d)
            out[rel] = (
                None if os.path.isdir(p) else hashlib.sha256(Path(p).read_bytes()).hexdigest()
            )
    return out


def random_data(shape=SHAPE, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.fixture
def src(tmp_path) -> Path:
    """A 1 MiB random float32 image, outside the destination directory."""
    path = tmp_path / "src" / "big.nii"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(random_data(), np.eye(4)), path)
    return path


def old_image() -> vx.Nifti1Image:
    return vx.Image(np.arange(4 * 4 * 4, dtype=np.float32).reshape(4, 4, 4), np.eye(4))


def assert_write_failed(err: dict, dest: str, code: int) -> None:
    assert err is not None, "the write did not fail"
    assert err["cls"] == "WriteFailedError", err
    assert "StorageError" in err["mro"] and "OSError" in err["mro"]
    assert "ValueError" not in err["mro"]
    assert err["errno"] == code, err
    assert dest in err["msg"], err
    assert os.strerror(code) in err["msg"], err


# -- faults: a file-size limit (EFBIG) -------------------------------------------------

SAVES = {
    "nii": ("out.nii", "vx.save(img, dest)"),
    "nii.gz": ("out.nii.gz", "vx.save(img, dest)"),
    "pair": ("out.img", "img.to_filename(dest)"),
    "pair.gz via nib.save": ("out.img.gz", "nib.save(img, dest)"),
    "mgz": ("out.mgz", "vx.save(img, dest)"),
    "mgh": ("out.mgh", "vx.save(img, dest)"),
    "computed nii.gz (dask tasks)": (
        "out.nii.gz",
        "vx.save(vx.Image(img.to_dask() * 2 + 1, img.affine), dest)",
    ),
    "zarr": ("out.nii.zarr", "vx.to_zarr(img, dest, overwrite=True)"),
}


def _write_cases(root: Path, cases: dict) -> str:
    """Child code: each case writes into its own directory under ``root`` (holding an
    old destination), reporting the error and the directory before and after."""
    lines = ["results = {}"]
    for i, (case, (name, call)) in enumerate(cases.items()):
        d = str(root / f"case{i}")
        dest = os.path.join(d, name)
        lines.append(
            f"""
dest = {dest!r}
before = snapshot({d!r})
err = attempt(lambda: {call})
results[{case!r}] = dict(dest=dest, err=err, before=before, after=snapshot({d!r}),
                         again=np.asarray(vx.load(dest).get_fdata()).tolist())
"""
        )
    return "\n".join(lines)


def _old_destinations(root: Path, cases: dict, here: bool = True) -> str:
    """Write each case's old destination (here, or as child code when not ``here``)."""
    code = []
    for i, (name, _) in enumerate(cases.values()):
        d = root / f"case{i}"
        dest = str(d / name)
        if here:
            d.mkdir(parents=True)
            if name.endswith(".zarr"):
                vx.to_zarr(old_image(), dest)
            else:
                vx.save(old_image(), dest)
        else:
            write = "vx.to_zarr" if name.endswith(".zarr") else "vx.save"
            code.append(f"os.makedirs({str(d)!r}); {write}(old, {dest!r})")
    return "\n".join(code)


def _check_cases(results: dict, code: int) -> None:
    old = old_image().get_fdata().tolist()
    for case, r in results.items():
        assert_write_failed(r["err"], r["dest"], code)
        # no temporary, no lock file, no partial store; old files byte-identical
        assert r["after"] == r["before"], case
        assert r["again"] == old, case  # and the old destination reads as it was


@pytest.mark.slow
def test_file_size_limit_is_a_write_failed_error(tmp_path, src):
    """RLIMIT_FSIZE (EFBIG) during every kind of write: a WriteFailedError naming the
    destination, nothing left behind, the old destination unchanged."""
    root = tmp_path / "out"
    _old_destinations(root, SAVES)
    (root / "convert").mkdir()
    res = run_child(
        tmp_path,
        f"""
img = vx.load({str(src)!r})
limit({LIMIT})
{_write_cases(root, SAVES)}
from voxray.cli import main
rc = main(["convert", "-q", {str(src)!r}, {str(root / "convert" / "c.nii.gz")!r}])
report(results=results, rc=rc)
""",
    )
    assert set(res["results"]) == set(SAVES)
    _check_cases(res["results"], errno.EFBIG)
    # voxray convert: exit status 2, the error on stderr, nothing left behind
    assert res["rc"] == 2
    assert "voxray convert: error: [Errno 27] writing" in res["_stderr"]
    assert "c.nii.gz" in res["_stderr"]
    assert os.listdir(root / "convert") == []


def test_index_writes_under_a_file_size_limit(tmp_path, monkeypatch):
    """The index cache is an optimisation: a read whose index cannot be stored works and
    warns. ``voxray index`` (cache or ``--sidecar``) reports the failure, exit status 2.
    Either way no ``.tmp-*.gzi`` is left and an index stored before is unchanged."""
    data = np.random.default_rng(1).integers(0, 50, (64, 64, 64, 4)).astype(np.int16)
    d = tmp_path / "data"
    d.mkdir()
    path = d / "nib.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)  # one gzip stream: needs an index
    unindexed = d / "unindexed.nii.gz"  # read with no index stored anywhere
    shutil.copyfile(path, unindexed)
    read_cache, cache = tmp_path / "read-cache", tmp_path / "cache"
    monkeypatch.setenv("VOXRAY_CACHE_DIR", str(cache))
    for flags in ([], ["--sidecar"]):  # indexes stored before, to be left as they are
        assert cli_main(["index", *flags, "-q", str(path)]) == 0
    before = snapshot(tmp_path)
    res = run_child(
        tmp_path,
        f"""
import hashlib, warnings
from voxray.cli import main
from voxray.cli.index import build
from voxray.sources.gzip import flush_index_writes
warnings.simplefilter("always")
limit(4096)  # the index is ~140 kB
os.environ["VOXRAY_CACHE_DIR"] = {str(read_cache)!r}
values = np.asarray(vx.load({str(unindexed)!r}).dataobj)
flush_index_writes()
read = dict(sha=hashlib.sha256(values.tobytes()).hexdigest(),
            cache=sorted(os.listdir({str(read_cache)!r})))
os.environ["VOXRAY_CACHE_DIR"] = {str(cache)!r}
out = {{}}
for sidecar in (False, True):
    flags = ["--sidecar"] if sidecar else []
    rc = main(["index", *flags, "--force", "-q", {str(path)!r}])
    err = attempt(lambda: build({str(path)!r}, sidecar=sidecar, force=True, progress=False))
    out[str(sidecar)] = dict(rc=rc, err=err)
report(read=read, index=out)
""",
    )
    assert res["_rc"] == 0
    # the read: nibabel's values, a warning, nothing left in the cache
    assert res["read"]["sha"] == hashlib.sha256(data.tobytes()).hexdigest()
    assert "could not store the gzip index" in res["_stderr"]
    assert "RuntimeWarning" in res["_stderr"]
    assert res["read"]["cache"] == []
    # voxray index: exit status 2 and a WriteFailedError naming the index file
    for sidecar, target in (("False", str(cache)), ("True", str(path) + ".gzi")):
        r = res["index"][sidecar]
        assert r["rc"] == 2
        assert r["err"]["cls"] == "WriteFailedError" and r["err"]["errno"] == errno.EFBIG
        assert target in r["err"]["msg"]
    errors = [ln for ln in res["_stderr"].splitlines() if ln.startswith("voxray index: error:")]
    assert len(errors) == 2 and all("writing the gzip index" in ln for ln in errors)
    after = snapshot(tmp_path)
    for key in list(after):
        if key.startswith(("read-cache", "child-")):
            del after[key]
    assert after == before  # old indexes byte-identical, no .tmp-*.gzi left


# -- faults: a full (or read-only) file system, in a private mount namespace -----------


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(
    not (sys.platform == "linux" and _can_mount()),
    reason="needs a private mount namespace (unshare -m) to mount a small tmpfs",
)

FULL = {
    "nii (pipeline threads)": ("out.nii", "vx.save(img, dest)"),
    "nii computed (dask tasks)": (
        "out.nii",
        "vx.save(vx.Image(img.to_dask() + 1, img.affine), dest)",
    ),
    "nii.gz": ("out.nii.gz", "vx.save(img, dest)"),
    "pair": ("out.hdr", "vx.save(img, dest)"),
    "mgh": ("out.mgh", "vx.save(img, dest)"),
    "zarr": ("out.nii.zarr", "vx.to_zarr(img, dest, overwrite=True)"),
}


CLUSTER = {
    "nii on a process cluster (slabs written by the workers)": ("out.nii", "vx.save(img, dest)"),
    "zarr on a process cluster": ("out.nii.zarr", "vx.to_zarr(img, dest, overwrite=True)"),
}


@needs_mount
@pytest.mark.slow
def test_full_and_read_only_file_systems_are_write_failed_errors(tmp_path, src):
    """A 512 KiB tmpfs (private to the child) fills up: ENOSPC in pipeline threads, dask
    tasks, worker processes of a dask cluster, gzip and Zarr writes; the space is given
    back. Then read-only: EROFS."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    ro = {"read-only nii.gz": ("out.nii.gz", "vx.save(img, dest)")}
    rodir, cdir = mnt / "ro", mnt / "cluster"
    body = f"""
import subprocess
from dask.distributed import Client, LocalCluster
img = vx.load({str(src)!r})
old = vx.Image(np.arange(64, dtype=np.float32).reshape(4, 4, 4), np.eye(4))
{_old_destinations(mnt, FULL, here=False)}
{_write_cases(mnt, FULL)}
full = results
{_old_destinations(cdir, CLUSTER, here=False)}
with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                  dashboard_address=None) as cluster, Client(cluster):
    exec({_write_cases(cdir, CLUSTER)!r})
full.update(results)
free = os.statvfs({str(mnt)!r})
free = free.f_bavail * free.f_frsize
{_old_destinations(rodir, ro, here=False)}
subprocess.run(["mount", "-o", "remount,ro", {str(mnt)!r}], check=True)
{_write_cases(rodir, ro)}
report(full=full, free=free, ro=results)
"""
    wrap = ["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o size=512k tmpfs {mnt} && exec "$@"']
    res = run_child(tmp_path, body, wrap=[*wrap, "sh"])
    assert set(res["full"]) == set(FULL) | set(CLUSTER)
    _check_cases(res["full"], errno.ENOSPC)
    assert res["free"] > 256 * 1024  # the partial outputs' space was given back
    _check_cases(res["ro"], errno.EROFS)


# -- the lock --------------------------------------------------------------------------


STALLS = {
    # after all data is written, before the rename
    "sync": "stall(voxray.writers.atomic.AtomicFile, 'sync', READY)",
    # a Zarr level-0 job done (in a pipeline thread): the partial store exists
    "zarr": "stall(voxray.formats.zarr.writer, '_copy_region', READY)",
    # replacing a store: the old one moved aside, about to be removed
    "aside": (
        "import types, shutil\n"
        "voxray.writers.atomic.shutil = types.SimpleNamespace(rmtree=shutil.rmtree)\n"
        "stall(voxray.writers.atomic.shutil, 'rmtree', READY, after=False)"
    ),
}


def _stalled_save(src: Path, dest: str, ready: Path, where: str = "sync") -> str:
    """Child code: write ``src`` to ``dest``, stalling (to be killed) at ``where``."""
    call = (
        "vx.to_zarr(img, dest, overwrite=True)" if dest.endswith(".zarr") else "vx.save(img, dest)"
    )
    return f"""
READY = {str(ready)!r}
img = vx.load({str(src)!r})
dest = {dest!r}
{STALLS[where]}
{call}
report(done=True)
"""


def start_children(tmp_path: Path, jobs: list[tuple[str, Path]]) -> list[subprocess.Popen]:
    """Start several stalling children at once; return when all have stalled."""
    procs = []
    for body, _ in jobs:
        script = _script(tmp_path, body)
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    try:
        for proc, (_, ready) in zip(procs, jobs):
            _wait_stalled(proc, ready)
    except BaseException:
        for proc in procs:
            proc.kill()
            proc.wait()
        raise
    return procs


@pytest.mark.slow
def test_second_writer_is_refused_and_a_killed_holder_releases(tmp_path, src):
    out = tmp_path / "out"
    out.mkdir()
    dest = str(out / "x.nii.gz")
    vx.save(old_image(), dest)
    old_bytes = Path(dest).read_bytes()
    ready = tmp_path / "ready"
    holder = start_child(tmp_path, _stalled_save(src, dest, ready), ready)
    try:
        names = sorted(os.listdir(out))
        assert ".x.nii.gz.voxray-lock" in names
        assert any(classify(n) == ("temporary file", "x.nii.gz") for n in names)
        info = json.loads(Path(lock_path(dest)).read_text())
        assert info["pid"] == holder.pid and info["destination"] == dest
        # a second writer in another process: refused at once, naming the holder
        res = run_child(
            tmp_path,
            f"""
            err = attempt(lambda: vx.save(vx.load({str(src)!r}), {dest!r}))
            report(err=err)
            """,
        )
        err = res["err"]
        assert err["cls"] == "DestinationLockedError", err
        assert "StorageError" in err["mro"] and "BlockingIOError" in err["mro"]
        assert dest in err["msg"] and f"pid {holder.pid}" in err["msg"]
        # ... and in this one (the .nii name of the same file, a different writer)
        with pytest.raises(vx.DestinationLockedError, match=f"pid {holder.pid}"):
            vx.save(old_image(), dest)
        assert sorted(os.listdir(out)) == names  # the refused writers wrote nothing
        assert Path(dest).read_bytes() == old_bytes
    finally:
        kill(holder)
    # the kernel released the killed writer's lock: the next writer proceeds
    assert not is_held(lock_path(dest))
    vx.save(vx.load(src), dest)
    assert np.array_equal(nib.load(dest).get_fdata(), random_data())
    left = sorted(os.listdir(out))
    assert ".x.nii.gz.voxray-lock" not in left  # released and removed
    # the killed writer's temporary is fresh (< 1 h): kept until stale
    assert [n for n in left if classify(n)] and all(
        classify(n)[0] == "temporary file" for n in left if classify(n)
    )


def test_pair_is_locked_on_its_image_file(tmp_path, src):
    out = tmp_path / "out"
    out.mkdir()
    ready = tmp_path / "ready"
    holder = start_child(tmp_path, _stalled_save(src, str(out / "p.img"), ready), ready)
    try:
        with pytest.raises(vx.DestinationLockedError, match=r"p\.img"):
            vx.save(old_image(), out / "p.hdr")  # the same pair by its header's name
        assert not (out / "p.hdr").exists()
    finally:
        kill(holder)
    vx.save(old_image(), out / "p.hdr")
    assert np.array_equal(nib.load(out / "p.img").get_fdata(), old_image().get_fdata())


@pytest.mark.slow
def test_zarr_store_is_locked_and_a_killed_writers_store_is_resumed(tmp_path, src):
    out = tmp_path / "out"
    out.mkdir()
    dest = str(out / "s.nii.zarr")
    ready = tmp_path / "ready"
    holder = start_child(tmp_path, _stalled_save(src, dest, ready, "zarr"), ready)
    try:
        with pytest.raises(vx.DestinationLockedError, match=r"s\.nii\.zarr"):
            vx.to_zarr(old_image(), dest)
    finally:
        kill(holder)
    partial = out / ".s.nii.zarr.voxray-partial"
    assert partial.is_dir() and not Path(dest).exists()
    vx.to_zarr(vx.load(src), dest)  # resumes the partial store (not removed as stale)
    assert not partial.exists()
    assert np.array_equal(vx.load(dest).get_fdata(), random_data())


def test_lock_is_exclusive_in_one_process_and_removed_on_release(tmp_path):
    dest = str(tmp_path / "a.nii")
    first = DestinationLock(dest, [str(tmp_path / "a.hdr")]).acquire()
    try:
        with pytest.raises(vx.DestinationLockedError, match=f"pid {os.getpid()}"):
            DestinationLock(dest).acquire()
        assert is_held(lock_path(dest))
        assert json.loads(Path(lock_path(dest)).read_text())["files"] == sorted(
            [dest, str(tmp_path / "a.hdr")]
        )
    finally:
        first.release()
    assert not os.path.exists(lock_path(dest)) and not is_held(lock_path(dest))
    with DestinationLock(dest):  # free again
        pass


def test_lock_rechecks_the_inode_it_locked(tmp_path, monkeypatch):
    """A writer that opened the lock file just before its holder released (unlinked) it,
    and locked that unlinked inode after a third writer took the new file, must not
    believe it holds the destination: it sees the inode changed and tries again."""
    import fcntl

    from voxray.writers import lock as lock_mod

    dest = str(tmp_path / "r.nii")
    first = DestinationLock(dest).acquire()
    third = DestinationLock(dest)
    real = fcntl.flock
    raced = []

    def flock_after_a_race(fd, op):
        if not raced:  # between the late writer's open and its flock
            raced.append(os.fstat(fd).st_ino)
            first.release()
            third.acquire()
        return real(fd, op)

    monkeypatch.setattr(lock_mod.fcntl, "flock", flock_after_a_race)
    try:
        with pytest.raises(vx.DestinationLockedError):
            DestinationLock(dest).acquire()
        assert raced and os.stat(lock_path(dest)).st_ino != raced[0]
        assert is_held(lock_path(dest))  # the third writer's lock, untouched
    finally:
        third.release()


# -- cleaning --------------------------------------------------------------------------


def _leftovers(d: Path) -> list[str]:
    return sorted(n for n in os.listdir(d) if classify(n))


def _kill_writers(tmp_path: Path, src: Path, out: Path) -> subprocess.Popen:
    """Leave each kind of leftover by SIGKILLing a real writer mid-write; return a live
    (stalled) writer of ``live.nii``."""
    gz_src = out / "nib.nii.gz"
    nib.save(nib.Nifti1Image(random_data((32, 32, 32)), np.eye(4)), gz_src)
    vx.to_zarr(old_image(), out / "old.nii.zarr")
    jobs = [
        _stalled_save(src, str(out / "a.nii.gz"), tmp_path / "r1"),
        _stalled_save(src, str(out / "z.nii.zarr"), tmp_path / "r2", "zarr"),
        _stalled_save(src, str(out / "old.nii.zarr"), tmp_path / "r3", "aside"),
        f"""
        import voxray.sources.gzcache
        from voxray.cli import main
        stall(voxray.sources.gzcache.os, "replace", {str(tmp_path / "r4")!r}, after=False)
        main(["index", "--sidecar", "-q", {str(gz_src)!r}])
        """,
        _stalled_save(src, str(out / "live.nii"), tmp_path / "r5"),
    ]
    *killed, live = start_children(
        tmp_path, [(body, tmp_path / f"r{i}") for i, body in enumerate(jobs, 1)]
    )
    for proc in killed:
        kill(proc)
    return live


@pytest.mark.slow
def test_clean_removes_what_killed_writers_left(tmp_path, src, capsys):
    out = tmp_path / "out"
    out.mkdir()
    live = _kill_writers(tmp_path, src, out)  # and one alive, holding live.nii
    try:
        (out / "x.tmp").write_bytes(b"not voxray's")
        (out / ".other.voxray.tmp").write_bytes(b"nor this")
        live_names = {n for n in _leftovers(out) if "live.nii" in n}
        assert len(live_names) == 2  # its temporary and its lock file
        left = sorted(set(_leftovers(out)) - live_names)
        kinds = {classify(n)[0] for n in left}
        assert kinds == {
            "temporary file",
            "partial store",
            "aside store",
            "lock file",
            "index temporary",
        }, left
        everything = snapshot(out)

        assert cli_main(["clean", str(out), "--older-than", "0", "--dry-run"]) == 0
        printed = capsys.readouterr().out
        assert snapshot(out) == everything  # --dry-run removes nothing
        for n in left:
            assert f"would remove {out / n} (" in printed
        assert "live.nii" not in printed

        assert cli_main(["clean", str(out)]) == 0  # default 1h: all of them are fresh
        assert "removed 0 leftover(s)" in capsys.readouterr().out
        assert snapshot(out) == everything

        assert cli_main(["clean", str(out), "--older-than", "0", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert sorted(os.path.basename(r["path"]) for r in report["removed"]) == left
        assert report["bytes"] == sum(r["bytes"] for r in report["removed"]) > 1024**2
        assert set(_leftovers(out)) == live_names  # the live writer's are kept
        for kept in ("x.tmp", ".other.voxray.tmp", "old.nii.zarr", "nib.nii.gz"):
            assert (out / kept).exists(), kept
        # the aside store was the old one, moved aside: the destination is the new store
        assert np.array_equal(vx.load(out / "old.nii.zarr").get_fdata(), random_data())
    finally:
        kill(live)
    # once the holder is dead, its leftovers go too
    removed = clean_stale([out], older_than=0)
    assert {os.path.basename(r.path) for r in removed} == live_names
    assert _leftovers(out) == []


@pytest.mark.slow
def test_clean_keeps_leftovers_younger_than_the_threshold(tmp_path, src):
    out = tmp_path / "out"
    out.mkdir()
    kill(
        start_child(
            tmp_path, _stalled_save(src, str(out / "old.nii"), tmp_path / "r1"), tmp_path / "r1"
        )
    )
    time.sleep(1.0)  # ages the first writer's leftovers (the test asserts no time)
    kill(
        start_child(
            tmp_path, _stalled_save(src, str(out / "new.nii"), tmp_path / "r2"), tmp_path / "r2"
        )
    )
    old = [n for n in _leftovers(out) if "old.nii" in n]
    new = [n for n in _leftovers(out) if "new.nii" in n]
    assert len(old) == len(new) == 2
    now = time.time()
    age_old = min(now - os.lstat(out / n).st_mtime for n in old)
    age_new = max(now - os.lstat(out / n).st_mtime for n in new)
    assert age_old > age_new
    threshold = (age_old + age_new) / 2
    removed = clean_stale([out], older_than=threshold)
    assert sorted(os.path.basename(r.path) for r in removed) == sorted(old)
    assert _leftovers(out) == sorted(new)


def test_clean_skips_the_other_files_of_a_held_pair(tmp_path):
    """A pair's header temporary is kept while its image file's lock is held (the holder
    lists the header in its lock file)."""
    from voxray.writers.atomic import AtomicFile

    img, hdr = str(tmp_path / "p.img"), str(tmp_path / "p.hdr")
    lock = DestinationLock(img, [hdr]).acquire()
    try:
        temp = AtomicFile(hdr)  # a header being written under the pair's lock
        os.close(temp.fd)
        assert find_leftovers([tmp_path], older_than=0) == []
        assert clean_stale([tmp_path], older_than=0) == []
        assert os.path.exists(temp.path)
    finally:
        lock.release()
    removed = clean_stale([tmp_path], older_than=0)  # the holder is gone: stale now
    assert [r.path for r in removed] == [temp.path]
    assert os.listdir(tmp_path) == []


def test_clean_recursive_and_cache(tmp_path, src, monkeypatch):
    out = tmp_path / "out"
    sub = out / "sub"
    sub.mkdir(parents=True)
    kill(
        start_child(
            tmp_path, _stalled_save(src, str(sub / "a.mgz"), tmp_path / "r"), tmp_path / "r"
        )
    )
    assert len(_leftovers(sub)) == 2
    assert clean_stale([out], older_than=0) == []  # not recursive by default
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".tmp-abcd1234.gzi").write_bytes(b"x" * 10)
    monkeypatch.setenv("VOXRAY_CACHE_DIR", str(cache))
    names = sorted(os.listdir(sub))  # the killed writer's temporary and lock file
    removed = clean_stale([out], older_than=0, recursive=True, cache=True)
    assert sorted(os.path.basename(r.path) for r in removed) == sorted(
        [".tmp-abcd1234.gzi", *names]
    )
    assert os.listdir(sub) == [] and os.listdir(cache) == []


@pytest.mark.slow
def test_next_write_removes_its_own_stale_temporaries(tmp_path, src, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.nii", "b.nii"):  # a killed writer of each
        ready = tmp_path / f"r-{name}"
        kill(start_child(tmp_path, _stalled_save(src, str(out / name), ready), ready))
    zready = tmp_path / "rz"
    kill(
        start_child(
            tmp_path,
            _stalled_save(src, str(out / "z.nii.zarr"), zready, "zarr"),
            zready,
        )
    )
    monkeypatch.setattr(clean_mod, "STALE_AFTER", 0.0)
    vx.save(old_image(), out / "a.nii")
    left = _leftovers(out)
    assert not [n for n in left if n.startswith(".a.nii")]  # a's temporary and lock: gone
    assert len([n for n in left if n.startswith(".b.nii")]) == 2  # b's untouched
    assert (out / ".z.nii.zarr.voxray-partial").is_dir()
    vx.to_zarr(vx.load(src), out / "z.nii.zarr")  # resumed, not removed
    assert np.array_equal(vx.load(out / "z.nii.zarr").get_fdata(), random_data())


def test_parse_age_and_bad_arguments(tmp_path, capsys):
    assert parse_age("2d") == 172800.0
    with pytest.raises(vx.InputError, match="'soon'"):
        parse_age("soon")
    assert cli_main(["clean", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert find_leftovers([tmp_path], older_than=0) == []


@pytest.mark.parametrize("name", ["x.nii", "x.img", "x.mgz", "x.nii.zarr"])
def test_a_missing_directory_is_a_write_failed_error(tmp_path, name):
    dest = tmp_path / "no" / "such" / name
    write = vx.to_zarr if name.endswith(".zarr") else vx.save
    with pytest.raises(vx.WriteFailedError, match="does not exist") as info:
        write(old_image(), dest)
    assert info.value.errno == errno.ENOENT and str(dest) in str(info.value)
    assert not (tmp_path / "no").exists()
