"""The object store: one read, both hashes, write-once, read-only, stored once."""

import errno
import hashlib
import io
import os
import stat
from pathlib import Path

import blake3
import pytest

from conftest import mounted_tmpfs
from store.objects import CHUNK, ObjectStore, hash_stream


def test_hashes_match_hashlib_and_blake3_across_chunk_boundaries():
    data = os.urandom(CHUNK * 2 + 12345)
    digest = hash_stream(io.BytesIO(data))
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.blake3 == blake3.blake3(data).hexdigest()
    assert digest.size == len(data)


def test_empty_stream_has_the_well_known_hashes():
    digest = hash_stream(io.BytesIO(b""))
    assert digest.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert digest.blake3 == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert digest.size == 0


def test_put_stores_read_only_content_addressed(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    digest, new, head = store.put(io.BytesIO(b"hello\n"), durable=True)
    assert head == b"hello\n"
    assert new is True
    path = store.path(digest.blake3)
    assert path == tmp_path / "objects" / digest.blake3[:2] / digest.blake3
    assert path.read_bytes() == b"hello\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert digest.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"


def test_same_bytes_twice_are_stored_once(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    first, new_first, _ = store.put(io.BytesIO(b"same"))
    second, new_second, _ = store.put(io.BytesIO(b"same"))
    assert first == second and (new_first, new_second) == (True, False)
    assert list(store.all_objects()) == [first.blake3]
    assert store.temp_files() == []


@pytest.mark.parametrize("size", [100, 3 << 20], ids=["small", "large"])
def test_an_object_found_in_place_is_synced_again_before_anything_names_it(tmp_path, size):
    """A killed run (or the storing process) may have named it and never synced it."""
    data = os.urandom(size)
    killed = ObjectStore(tmp_path / "objects")
    killed.put(io.BytesIO(data))                         # named, not synced: then the run was killed
    store = ObjectStore(tmp_path / "objects")
    digest, new, _ = store.put(io.BytesIO(data))
    assert not new and store.take_unsynced() == [store.path(digest.blake3)]


def test_a_short_object_left_by_a_power_cut_is_replaced(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(io.BytesIO(b"complete content"), durable=True).digest
    path = store.path(digest.blake3)
    os.chmod(path, 0o644)
    path.write_bytes(b"compl")          # what an unsynced rename can leave after a power cut
    os.chmod(path, 0o444)
    new = store.put(io.BytesIO(b"complete content"), durable=True).new
    assert new is True
    assert path.read_bytes() == b"complete content"


@pytest.mark.parametrize("good_bytes", [1000, 3 * 1024 * 1024])
def test_a_failed_read_leaves_no_temp_file(tmp_path, good_bytes):
    """Small inputs fail before anything is written; large ones after a temp file exists."""
    class BreaksPartWay(io.RawIOBase):
        served = 0

        def readinto(self, buffer):
            if self.served >= good_bytes:
                raise OSError("device went away")
            count = min(len(buffer), good_bytes - self.served)
            buffer[:count] = b"x" * count
            self.served += count
            return count

    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(OSError, match="device went away"):
        store.put(BreaksPartWay())
    assert store.temp_files() == []
    assert list(store.all_objects()) == []


def test_large_and_small_puts_give_the_same_digest_as_hashing(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    for size in (0, 1, 1024 * 1024, 1024 * 1024 + 1, 9 * 1024 * 1024 + 7):
        data = os.urandom(size)
        digest, new, head = store.put(io.BytesIO(data))
        assert (digest.sha256, digest.size, new, head) == (hashlib.sha256(data).hexdigest(), size, True, data[:8192])
        assert store.path(digest.blake3).read_bytes() == data
    store.sync()
    assert store.temp_files() == []


def test_a_short_write_is_continued_not_ignored(tmp_path, monkeypatch):
    """The OS may write fewer bytes than asked (a nearly full disk, a signal): the rest follows."""
    real_write = os.write
    monkeypatch.setattr("store.objects.os.write", lambda fd, data: real_write(fd, bytes(data)[:1000]))
    store = ObjectStore(tmp_path / "objects")
    for size in (3000, 3_000_000, 6 * 1024 * 1024):
        data = os.urandom(size)
        digest = store.put(io.BytesIO(data)).digest
        assert store.path(digest.blake3).read_bytes() == data


@pytest.mark.parametrize("size", [3000, 3_000_000])
@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:len(data) * 2 // 3], r"the stored copy has \d+ bytes, the original "),
    (lambda data: b"\x00" + data[1:], "the stored copy does not read back as the bytes written"),
])
def test_a_write_that_claims_more_than_it_wrote_is_never_named(tmp_path, monkeypatch, size, damage, message):
    """A write that reports every byte but keeps two thirds, or changes one: the read-back check refuses it."""
    real_write = os.write

    def lying_write(fd, data):
        real_write(fd, damage(bytes(data)))
        return len(data)

    monkeypatch.setattr("store.objects.os.write", lying_write)
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(OSError, match=message):
        store.put(io.BytesIO(os.urandom(size)))
    assert store.temp_files() == []
    assert list(store.all_objects()) == []


def test_an_object_of_the_right_size_but_wrong_bytes_is_replaced(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(io.BytesIO(b"complete content"), durable=True).digest
    path = store.path(digest.blake3)
    os.chmod(path, 0o644)
    path.write_bytes(b"c\x00mplete content")          # same size, one byte lost by the disk
    os.chmod(path, 0o444)
    assert store.put(io.BytesIO(b"complete content"), durable=True).new is True
    assert path.read_bytes() == b"complete content"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 4 MiB tmpfs."""
    yield from mounted_tmpfs(tmp_path / "tiny", "4m")


def test_a_full_disk_raises_and_leaves_nothing_named(tiny_disk):
    (tiny_disk / "filler").write_bytes(b"f" * (2 * 1024 * 1024))
    store = ObjectStore(tiny_disk / "objects")
    data = os.urandom(3_000_000)
    with pytest.raises(OSError) as caught:
        store.put(io.BytesIO(data))
    assert caught.value.errno == errno.ENOSPC
    assert store.temp_files() == [] and list(store.all_objects()) == []
    (tiny_disk / "filler").unlink()                  # space comes back: the same put now works
    digest = store.put(io.BytesIO(data), durable=True).digest
    assert store.path(digest.blake3).read_bytes() == data


def test_two_threads_storing_while_a_third_syncs_lose_nothing(tmp_path):
    """The pipeline stores on a second thread while the main one stores children and syncs:
    temp names never collide and every object named before a sync is synced by it or the next."""
    import threading

    store = ObjectStore(tmp_path / "objects")
    synced: set[str] = set()
    take = store._take

    def taken_by_a_sync():
        taken = take()      # the names (BLAKE3) of the objects named since the last sync
        synced.update(Path(item).name for item in taken)
        return taken

    store._take = taken_by_a_sync

    def put_many(tag: bytes, out: list):
        for number in range(300):
            out.append(store.put(io.BytesIO(tag + number.to_bytes(4, "big") * 200)).digest.blake3)

    first, second = [], []
    workers = [threading.Thread(target=put_many, args=(b"a", first)),
               threading.Thread(target=put_many, args=(b"b", second))]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        store.sync()
    store.sync()
    assert len(set(first)) == len(set(second)) == 300 and not set(first) & set(second)
    assert synced == set(first) | set(second)
    assert store.temp_files() == []
    for number, digest in enumerate(first):
        assert blake3.blake3(store.path(digest).read_bytes()).hexdigest() == digest


# --- local files copied by the kernel (copy_file_range) --------------------------------------------

def _local(path):
    from ingest.kit.localfiles import WatchedRead
    return WatchedRead(str(path), os.stat(path))


@pytest.fixture
def kernel_copies(monkeypatch):
    """Counts the bytes copy_file_range moved for the files source."""
    import ingest.kit.localfiles as localfiles
    real = os.copy_file_range
    moved = []

    def counted(*args):
        count = real(*args)
        moved.append(count)
        return count

    monkeypatch.setattr(localfiles.os, "copy_file_range", counted)
    return moved


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 2 * 16 * 1024 * 1024 + 4099])
def test_a_large_local_file_is_copied_by_the_kernel_and_hashed_from_the_copy(tmp_path, kernel_copies, size):
    data = os.urandom(size)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    store = ObjectStore(tmp_path / "objects")
    digest, new, head = store.put(_local(source))
    assert (digest.sha256, digest.blake3, digest.size) == (
        hashlib.sha256(data).hexdigest(), blake3.blake3(data).hexdigest(), size)
    assert new is True and head == data[:8192]
    assert sum(kernel_copies) == size - 1024 * 1024      # all but the first MiB, read to tell what it is
    assert store.path(digest.blake3).read_bytes() == data
    assert stat.S_IMODE(store.path(digest.blake3).stat().st_mode) == 0o444
    store.sync()
    assert store.temp_files() == []
    assert source.read_bytes() == data


def test_a_file_the_kernel_cannot_copy_is_read_instead(tmp_path, monkeypatch):
    """Another filesystem (EXDEV) or one without the call: the ordinary copy, same object."""
    import ingest.kit.localfiles as localfiles

    def unable(*args):
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(localfiles.os, "copy_file_range", unable)
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(_local(tmp_path / "big.bin")).digest
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert store.path(digest.blake3).read_bytes() == data


def test_a_copy_the_kernel_cuts_short_is_never_named(tmp_path, monkeypatch):
    """The kernel says the file ended early (it was cut while copied): changed, nothing kept."""
    import ingest.kit.localfiles as localfiles
    from ingest.model.errors import OriginalChanged
    real = os.copy_file_range
    calls = []

    def ends_early(src, dst, count, *offsets):
        calls.append(count)
        return real(src, dst, count, *offsets) if len(calls) == 1 else 0

    monkeypatch.setattr(localfiles.os, "copy_file_range", ends_early)
    (tmp_path / "big.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(OriginalChanged):
        store.put(_local(tmp_path / "big.bin"))
    assert len(calls) == 2
    assert store.temp_files() == [] and list(store.all_objects()) == []


def test_a_copy_that_reads_back_short_is_never_named(tmp_path, monkeypatch):
    """The temp file holds fewer bytes than the kernel said it copied: refused, not named."""
    real = os.preadv
    monkeypatch.setattr("store.objects.os.preadv",
                        lambda fd, buffers, offset: 0 if offset > 20 * 1024 * 1024 else real(fd, buffers, offset))
    (tmp_path / "big.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(OSError, match="the stored copy reads back 22020096 of the 34603008 bytes copied"):
        store.put(_local(tmp_path / "big.bin"))
    assert store.temp_files() == [] and list(store.all_objects()) == []


def test_a_full_disk_during_a_kernel_copy_raises_and_leaves_nothing_named(tiny_disk, kernel_copies):
    """Source and case on one small disk: the kernel's copy runs out of space part way."""
    data = os.urandom(1_600_000)
    source = tiny_disk / "big.bin"
    source.write_bytes(data)
    (tiny_disk / "filler").write_bytes(b"f" * 2_300_000)       # ~0.3 MB left: less than the copy needs
    store = ObjectStore(tiny_disk / "objects")
    with pytest.raises(OSError) as caught:
        store.put(_local(source))
    assert caught.value.errno == errno.ENOSPC
    assert sum(kernel_copies) < len(data) - 1024 * 1024          # it was the kernel's copy that ran out
    assert store.temp_files() == [] and list(store.all_objects()) == []
    (tiny_disk / "filler").unlink()
    kernel_copies.clear()
    digest = store.put(_local(source), durable=True).digest
    assert store.path(digest.blake3).read_bytes() == data and sum(kernel_copies) == len(data) - 1024 * 1024


def test_a_file_on_another_filesystem_is_read_the_ordinary_way(tiny_disk, tmp_path, kernel_copies):
    """A real EXDEV: the source on a tmpfs, the case on the test's own disk."""
    data = os.urandom(3_000_000)
    (tiny_disk / "big.bin").write_bytes(data)
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(_local(tiny_disk / "big.bin")).digest
    assert (digest.sha256, kernel_copies) == (hashlib.sha256(data).hexdigest(), [])
    assert store.path(digest.blake3).read_bytes() == data


def test_an_object_another_process_named_is_synced_by_its_own_path(tmp_path, monkeypatch):
    """The storing process hands over only an object's name (ingest/storing.py): a small batch is
    fsynced file by file, so that name must become the object's path, then its folder's."""
    import store.objects as objects_module

    elsewhere = ObjectStore(tmp_path / "objects")       # as the storing process keeps it
    digest = elsewhere.put(io.BytesIO(b"named in another process" * 40)).digest
    elsewhere.take_unsynced()                           # that process never syncs
    here = ObjectStore(tmp_path / "objects")
    here.sync_later(digest.blake3)
    synced: list[Path] = []
    monkeypatch.setattr(objects_module, "_fsync_path", synced.append)
    here.sync()
    final = tmp_path / "objects" / digest.blake3[:2] / digest.blake3
    assert synced == [final, final.parent]
    here.sync()
    assert synced == [final, final.parent]              # once: nothing is left to sync
