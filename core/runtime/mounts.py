"""Mounts: which one holds a local path (from the kernel's mount table),
and whether its file locks hold on one machine only (a FUSE bucket, 9p)."""

import os
import re
from typing import Optional, Tuple


# File systems whose POSIX locks hold on one machine only (each host's
# kernel or FUSE daemon keeps its own) and where a bucket's rename is a copy:
# FUSE (gcsfuse, also GKE's CSI driver's plain `fuse`; s3fs, sshfs, ...) and
# 9p (VM shares, WSL2's drives). Not `fuseblk` (a local disk), nor NFS, whose
# locks (NFSv4's own, NFSv3's lockd) span the cluster, nor the FUSE clients
# of cluster file systems that lock cluster-wide.
_PER_HOST_LOCKS = re.compile(r"fuse|fuse\..+|9p")
_CLUSTER_LOCKS = ("fuse.glusterfs", "fuse.ceph-fuse", "fuse.juicefs")


def mount_table() -> str:
  """This process's mount table (`/proc/self/mountinfo`, see proc(5));
  "" where there is none (not Linux)."""
  try:
    with open("/proc/self/mountinfo", encoding="utf-8",
              errors="surrogateescape") as f:
      return f.read()
  except OSError:
    return ""


def mount_of(path: str, table: str) -> Optional[Tuple[str, str]]:
  """(mount point, file system type) of the mount holding the local `path`
  in `table` (`mount_table`'s format); None if no mount holds it. The
  deepest mount point wins; of two on one point, the later (on top)."""
  target = os.path.realpath(path)
  found = None
  for line in table.splitlines():
    fields = line.split(" ")
    try:  # id parent dev root point options [optional...] - type source
      point, kind = fields[4], fields[fields.index("-", 6) + 1]
    except (ValueError, IndexError):
      continue
    point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                   point)  # a space is written \040
    inside = target == point or target.startswith(point.rstrip("/") + "/")
    if inside and (found is None or len(point) >= len(found[0])):
      found = (point, kind)
  return found


def per_host_lock_mount(
    path: str, table: Optional[str] = None) -> Optional[Tuple[str, str]]:
  """(mount point, file system type) if the local `path` is on a mount
  whose POSIX locks hold on one machine only (a FUSE-mounted bucket, 9p),
  else None.

  Args:
    path: A local path.
    table: The mount table (tests); this process's when None.
  """
  mount = mount_of(path, mount_table() if table is None else table)
  if (mount and _PER_HOST_LOCKS.fullmatch(mount[1])
      and mount[1] not in _CLUSTER_LOCKS):
    return mount
  return None
