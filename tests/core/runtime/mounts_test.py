"""Which mount holds a local path, read from a mount table, and whether
its file locks hold on one machine only."""

from absl.testing import parameterized
import tensorflow as tf

from core.runtime import mounts


class MountsTest(parameterized.TestCase):

  @parameterized.parameters(
      ("/mnt/bucket/runs/a", ("/mnt/bucket", "fuse.gcsfuse"), True),
      ("/mnt/bucket", ("/mnt/bucket", "fuse.gcsfuse"), True),
      ("/mnt/bucket2/run", ("/", "ext4"), False),  # a prefix, not a parent
      ("/mnt/s3/run", ("/mnt/s3", "fuse.s3fs"), True),
      ("/mnt/nfs/run", ("/mnt/nfs", "nfs4"), False),  # NFS locks span hosts
      ("/mnt/nfs/scratch/run", ("/mnt/nfs/scratch", "fuse"), True),  # nested
      ("/mnt/my runs/run", ("/mnt/my runs", "9p"), True),  # written \040
      ("/media/usb/run", ("/media/usb", "fuseblk"), False),  # a local disk
      ("/mnt/gluster/run", ("/mnt/gluster", "fuse.glusterfs"), False),
      ("/home/me/run", ("/", "ext4"), False))
  def test_the_mount_of_a_path_and_whether_its_locks_are_per_host(
      self, path, mount, per_host):
    table = "\n".join([
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
        "23 22 0:21 / /proc rw,nosuid,nodev,noexec - proc proc rw",
        "30 22 0:40 / /mnt/bucket rw,nosuid,nodev shared:5 - fuse.gcsfuse "
        "my-bucket rw,user_id=0,group_id=0",
        "31 22 0:41 / /mnt/s3 rw,relatime - fuse.s3fs s3fs rw,user_id=0",
        "32 22 0:42 / /mnt/nfs rw,relatime shared:7 master:2 - nfs4 "
        "server:/export rw,vers=4.2",
        "33 32 0:43 / /mnt/nfs/scratch rw - fuse /dev/fuse rw,user_id=0",
        "34 22 0:44 / /mnt/my\\040runs rw - 9p drvfs rw,aname=drvfs",
        "35 22 8:17 / /media/usb rw - fuseblk /dev/sdb1 rw,user_id=0",
        "36 22 0:45 / /mnt/gluster rw - fuse.glusterfs server:/vol rw"])
    self.assertEqual(mounts.mount_of(path, table), mount)
    self.assertEqual(mounts.per_host_lock_mount(path, table) is not None,
                     per_host)

  def test_of_two_mounts_on_one_point_the_later_is_seen(self):
    table = ("1 0 0:1 / / rw - overlay overlay rw,lowerdir=/l\n"
             "2 1 0:2 / /data rw - fuse.gcsfuse b rw\n"
             "3 1 8:3 / /data rw - ext4 /dev/sdc rw\n")
    self.assertEqual(mounts.mount_of("/data/run", table), ("/data", "ext4"))
    self.assertIsNone(mounts.per_host_lock_mount("/data/run", table))
    self.assertEqual(mounts.mount_of("/run", table), ("/", "overlay"))
    self.assertIsNone(mounts.mount_of("/run", ""))  # no table: not Linux


if __name__ == "__main__":
  tf.test.main()
