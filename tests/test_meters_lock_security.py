"""The meter lock directory and files cannot be planted by another user: real symbolic
links, a real directory of another owner (as root), real modes."""

from __future__ import annotations

import os

import pytest

from gi_energy.errors import MeterError
from gi_energy.meters.locks import FileLock, default_lock_dir, private_dir

pytestmark = pytest.mark.reliability


def test_a_planted_symlink_as_lock_file_is_refused_and_not_followed(tmp_path):
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    target = tmp_path / "victim"
    (locks / "rapl.lock").symlink_to(target)
    lock = FileLock(locks, "rapl.lock")
    with pytest.raises(MeterError, match=r"rapl\.lock: it is a symbolic link, which gi-energy does not follow"):
        lock.acquire()
    assert not target.exists()


def test_a_symlinked_lock_directory_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "locks").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(MeterError, match=r"refusing the meter lock directory .*locks: it is a symbolic link"):
        FileLock(tmp_path / "locks", "rapl.lock").acquire()
    assert list(elsewhere.iterdir()) == []


def test_a_lock_directory_others_can_write_is_refused(tmp_path):
    locks = tmp_path / "locks"
    locks.mkdir()
    locks.chmod(0o777)
    with pytest.raises(MeterError, match="writable by other users"):
        private_dir(locks)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_lock_directory_of_another_user_is_refused(tmp_path):
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    os.chown(locks, 4242, -1)
    with pytest.raises(MeterError, match=r"owned by uid 4242, not by this user"):
        private_dir(locks)


def test_a_new_lock_directory_is_private_and_locks_work(tmp_path):
    lock = FileLock(tmp_path / "fresh" / "locks", "rapl.lock")
    lock.acquire()
    lock.release()
    lock.close()
    assert (tmp_path / "fresh" / "locks").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "fresh" / "locks" / "rapl.lock").stat().st_mode & 0o077 == 0


def test_default_lock_dir_uses_a_private_runtime_dir_only(tmp_path):
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    assert default_lock_dir({"XDG_RUNTIME_DIR": str(runtime)}) == runtime / "gi-energy-locks"
    runtime.chmod(0o755)  # not private: fall back to the temp dir
    assert default_lock_dir({"XDG_RUNTIME_DIR": str(runtime)}).name == f"gi-energy-locks-{os.getuid()}"
    assert default_lock_dir({"XDG_RUNTIME_DIR": "relative"}).name == f"gi-energy-locks-{os.getuid()}"
    assert default_lock_dir({}).name == f"gi-energy-locks-{os.getuid()}"
