# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fill the old server's test mailbox (tests/test_directory.py imports it): a few hundred messages in several
folders, Vietnamese text, 8-bit and base64 bodies, CRLF line ends as IMAP serves them. Deterministic."""

import base64
import os
import sys

home, count = sys.argv[1], int(sys.argv[2])


def mutf7(name: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 5.1.3), as Dovecot names Maildir++ folders on disk."""
    out, pending = "", ""
    for character in name + "\0":
        if character != "\0" and not 0x20 <= ord(character) <= 0x7E:
            pending += character
            continue
        if pending:
            out += "&" + base64.b64encode(pending.encode("utf-16-be")).decode().rstrip("=").replace("/", ",") + "-"
            pending = ""
        if character != "\0":
            out += "&-" if character == "&" else character
    return out


FOLDERS = ["INBOX", "Sent", "Archive.2024", "Lưu trữ"]
for index in range(count):
    folder = FOLDERS[index % 7 % len(FOLDERS)]
    maildir = os.path.join(home, "Maildir") if folder == "INBOX" else os.path.join(home, "Maildir", "." + mutf7(folder))
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    lines = [
        f"From: =?utf-8?b?{base64.b64encode('Lò Văn Cũ'.encode()).decode()}?= <cu{index % 5}@old.sonla.gov.vn>",
        "To: em.dang@old.sonla.gov.vn",
        f"Subject: =?utf-8?b?{base64.b64encode(f'Công văn cũ số {index}'.encode()).decode()}?=",
        f"Date: Mon, {1 + index % 28:02d} Jan 2024 {index % 24:02d}:{index % 60:02d}:00 +0700",
        f"Message-ID: <legacy-{index}@old.sonla.gov.vn>",
        "MIME-Version: 1.0",
    ]
    if index % 10 == 0:  # an attachment, base64
        lines += ['Content-Type: multipart/mixed; boundary="b"', "", "--b",
                  "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
                  f"Tệp đính kèm số {index}.", "--b",
                  'Content-Type: application/octet-stream; name="tailieu.bin"', "Content-Transfer-Encoding: base64", "",
                  *[base64.b64encode(bytes((index + i) % 256 for i in range(57 * line, 57 * line + 57))).decode()
                    for line in range(20)],
                  "--b--"]
    else:
        lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
                  f"Nội dung thư cũ số {index}: kính gửi các đồng chí.", "-- ", "Văn phòng"]
    name = f"1700000000.M{index}P1.legacy:2,{'S' if index % 3 else ''}"
    with open(os.path.join(maildir, "cur", name), "wb") as stream:
        stream.write(("\r\n".join(lines) + "\r\n").encode())
