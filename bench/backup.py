#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup benchmark (docs/benchmarks.md, "Backups"; issue 14): restic on a mail store of a few GB.

    python bench/backup.py [--mailboxes 2000] [--messages 30000] [--image localhost/sonla-debian:trixie]

Needs podman and the image of scripts/build-image.sh. In one throwaway container (``sonla-bak-bench``,
removed at the end) with Debian's restic:

1. a mail store is generated in ``/var/vmail/sonla.gov.vn/<local part>/sdbox`` as Dovecot lays it out
   (one ``u.<uid>`` file per message, ``dovecot.index*`` per folder, three folders per mailbox). Message
   sizes are drawn so that the store looks like an office's: most messages are a few kB of text, one in
   four carries a base64 attachment of 20-600 kB of incompressible bytes (PDF, JPEG, DOCX are compressed
   already);
2. ``tar`` of the store to a file in the container, plain and with zstd, as the reference;
3. the first restic backup, with the arguments ``sonla-mail-backup run`` gives restic
   (``_backup.backup_args``: tag, host, the restore folder excluded); restic's own compression (auto);
4. 1 % of the mailboxes change (five new messages each and their indexes rewritten, as new mail and
   flags do), then the incremental backup;
5. one mailbox of median size and the largest one restored with ``restic restore --include``, the step
   ``sonla-mail-backup restore-mailbox`` spends its time in (Dovecot's import after it reads local files);
6. the repository's size next to the store's.

Every timed step is the wall time of the command inside the container (``/usr/bin/time``-free: a
``date +%s.%N`` on each side, so no ``podman exec`` start-up is counted). The page cache is dropped
before each read-heavy step when the host allows it (``/proc/sys/vm/drop_caches``, as root), so the
reads hit the disk as a nightly run's would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import generate
import podman
from podman import sh

generate._import_collection()
from ansible_collections.sonla.mail.plugins.module_utils import _backup

CONTAINER = "sonla-bak-bench"
MAIL_ROOT = "/var/vmail"
DOMAIN = "sonla.gov.vn"
REPOSITORY = "/srv/restic"
PASSWORD_FILE = "/root/bench.pass"
PASSPHRASE = "bench-only-passphrase-not-secret"  # the throwaway container's repository

# Runs inside the container: writes the store; prints the local parts and their sizes as JSON.
_GENERATE = r"""
import json, os, random, sys, base64
root, domain = sys.argv[1], sys.argv[2]
mailboxes, messages, seed, first_uid = (int(value) for value in sys.argv[3:7])
only = json.loads(sys.argv[7]) if len(sys.argv) > 7 else None
rng = random.Random(seed)
words = ("công văn quyết định báo cáo kế hoạch sở ban ngành ủy ban nhân dân tỉnh sơn la huyện xã phòng "
         "triển khai thực hiện đề nghị gửi kèm theo đính kèm hội nghị lịch họp thông báo kết quả tài liệu").split()
folders = ["INBOX", "Sent", "Archive"]
names = only or [f"u{n:05d}" for n in range(mailboxes)]
sizes = {}
for index in range(messages):
    name = names[index % len(names)] if only else names[rng.randrange(len(names))]
    folder = folders[0] if only else rng.choice(folders)
    base = os.path.join(root, domain, name, "sdbox", "mailboxes", folder, "dbox-Mails")
    os.makedirs(base, exist_ok=True)
    text = " ".join(rng.choice(words) for _ in range(int(rng.lognormvariate(6.3, 0.8))))
    parts = [f"From: <vanthu@{domain}>\r\nTo: <{name}@{domain}>\r\nSubject: {rng.choice(words)} {index}\r\n"
             f"Message-ID: <{seed}.{index}@bench>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
             + text + "\r\n"]
    if rng.random() < 0.25:
        blob = base64.encodebytes(os.urandom(int(rng.uniform(20, 600) * 1024))).decode().replace("\n", "\r\n")
        parts.append("--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + blob)
    parts.append("--b--\r\n")
    body = "".join(parts).encode()
    uid = first_uid + index
    with open(os.path.join(base, f"u.{uid}"), "wb") as stream:
        stream.write(body)
    sizes[name] = sizes.get(name, 0) + len(body)
# Dovecot's index files, rewritten as new mail and flag changes rewrite them.
for name in (only or names):
    for folder in folders:
        base = os.path.join(root, domain, name, "sdbox", "mailboxes", folder, "dbox-Mails")
        os.makedirs(base, exist_ok=True)
        with open(os.path.join(base, "dovecot.index"), "wb") as stream:
            stream.write(os.urandom(2048 + 64 * len(os.listdir(base))))
        with open(os.path.join(base, "dovecot.index.log"), "ab") as stream:
            stream.write(os.urandom(1024))
print(json.dumps(sizes))
"""

# Runs inside the container: the command's wall time in seconds, then its stdout.
_TIMED = ('start=$(date +%s.%N); {command} > /tmp/bench.out 2>/tmp/bench.err; rc=$?; end=$(date +%s.%N); '
          'echo "$start $end $rc"; cat /tmp/bench.out')


def inside(script: str, check: bool = True) -> str:
    return podman.inside(CONTAINER, script, check=check)


def drop_caches() -> None:
    """Reads from disk, as the nightly run's (root only; otherwise the figures are from the page cache)."""
    try:
        subprocess.run(["sync"], check=False)
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as stream:
            stream.write("3\n")
    except OSError:
        pass


def timed(command: str) -> tuple[float, str]:
    drop_caches()
    out = inside(_TIMED.format(command=command))
    first, _, rest = out.partition("\n")
    start, end, code = first.split()
    if code != "0":
        raise RuntimeError(f"{command}: exit {code}: {inside('tail -5 /tmp/bench.err', check=False)}")
    return float(end) - float(start), rest


def restic(args: list[str]) -> str:
    environment = f"RESTIC_REPOSITORY={REPOSITORY} RESTIC_PASSWORD_FILE={PASSWORD_FILE}"
    return f"env {environment} restic " + " ".join(f"'{arg}'" for arg in args)


def snapshot_summary(output: str) -> dict:
    lines = [json.loads(line) for line in output.splitlines() if '"message_type":"summary"' in line.replace(" ", "")]
    return lines[-1]


def size_of(path: str) -> int:
    return int(inside(f"du -sb {path}").split()[0])


def generate_store(mailboxes: int, messages: int, seed: int, first_uid: int, only: list[str] | None = None) -> dict:
    args = [MAIL_ROOT, DOMAIN, str(mailboxes), str(messages), str(seed), str(first_uid)]
    if only:
        args.append(json.dumps(only))
    return json.loads(sh("podman", "exec", "-i", CONTAINER, "python3", "-c", _GENERATE, *args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--image", default="localhost/sonla-debian:trixie")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    podman.start(CONTAINER, args.image)
    try:
        inside("export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && "
               "apt-get install -y -q --no-install-recommends restic zstd >/dev/null")
        inside(f"printf %s '{PASSPHRASE}' > {PASSWORD_FILE} && chmod 600 {PASSWORD_FILE} && mkdir -p /srv/tar")
        version = inside("restic version").split()[1]
        print(f"restic {version}: generating {args.messages} messages in {args.mailboxes} mailboxes", flush=True)
        sizes = generate_store(args.mailboxes, args.messages, 14, 1)
        data = size_of(MAIL_ROOT)
        files = int(inside(f"find {MAIL_ROOT} -type f | wc -l"))
        figures = {"restic": version, "mailboxes": len(sizes), "messages": args.messages, "files": files,
                   "data_bytes": data, "cpus": os.cpu_count(), "machine": platform.machine()}
        print(f"store: {data / 1e9:.2f} GB, {files} files", flush=True)

        figures["tar_s"], _ = timed(f"tar -cf /srv/tar/mail.tar {MAIL_ROOT}")
        figures["tar_bytes"] = size_of("/srv/tar/mail.tar")
        inside("rm -f /srv/tar/mail.tar")
        figures["tar_zstd_s"], _ = timed(f"tar --zstd -cf /srv/tar/mail.tar.zst {MAIL_ROOT}")
        figures["tar_zstd_bytes"] = size_of("/srv/tar/mail.tar.zst")
        inside("rm -f /srv/tar/mail.tar.zst")
        print(f"tar: {figures['tar_s']:.1f} s, tar --zstd: {figures['tar_zstd_s']:.1f} s", flush=True)

        inside(restic(["init"]))
        config = _backup.Config(repository=REPOSITORY, password_file=PASSWORD_FILE, mail_root=MAIL_ROOT)
        backup = restic(_backup.backup_args(config, [MAIL_ROOT]))
        figures["first_s"], out = timed(backup)
        first = snapshot_summary(out)
        figures["first_added_bytes"] = first["data_added"]
        figures["repository_bytes"] = size_of(REPOSITORY)
        print(f"first backup: {figures['first_s']:.1f} s, repository {figures['repository_bytes'] / 1e9:.2f} GB",
              flush=True)

        figures["unchanged_s"], _ = timed(backup)
        changed = sorted(sizes)[::100]  # 1 % of the mailboxes
        added = generate_store(0, 5 * len(changed), 15, 10**6, only=changed)
        figures["changed_mailboxes"] = len(changed)
        figures["changed_new_bytes"] = sum(added.values())
        figures["incremental_s"], out = timed(backup)
        incremental = snapshot_summary(out)
        figures["incremental_added_bytes"] = incremental["data_added"]
        figures["incremental_files"] = incremental["files_new"] + incremental["files_changed"]
        figures["repository_after_bytes"] = size_of(REPOSITORY)
        print(f"incremental: {figures['incremental_s']:.1f} s, {incremental['data_added'] / 1e6:.1f} MB added",
              flush=True)

        by_size = sorted(sizes, key=sizes.get)
        for label, name in (("median", by_size[len(by_size) // 2]), ("largest", by_size[-1])):
            folder = _backup.mail_dir(MAIL_ROOT, f"{name}@{DOMAIN}")
            inside("rm -rf /srv/restore")
            seconds, _ = timed(restic(["restore", "latest", "--target", "/srv/restore", "--include", folder]))
            restored = size_of("/srv/restore")
            same = inside(f"diff -r {folder} /srv/restore{folder} >/dev/null && echo same || echo differ").strip()
            figures[f"restore_{label}"] = {"mailbox": name, "bytes": restored, "seconds": seconds, "check": same}
            print(f"restore {label} mailbox {name}: {seconds:.1f} s, {restored / 1e6:.1f} MB, {same}", flush=True)
        figures["check_s"], _ = timed(restic(["check"]))
    finally:
        sh("podman", "rm", "-f", CONTAINER, check=False)

    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(figures, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
